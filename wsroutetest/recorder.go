package wsroutetest

import (
	"context"
	"sync"
	"time"

	"github.com/wsroute/wsroute"
)

// Recorder is an in-memory [wsroute.ConnectionManager] that records what is
// pushed to each connection instead of sending it. Give it to the handler
// under test in place of the router's manager, call the handler with
// [Events], and read [Recorder.Posted].
//
// Connections are known only after [Recorder.Open]: PostToConnection,
// GetConnection and DeleteConnection return [wsroute.ErrGone] for any other
// ID, and for a connection that was deleted or closed, as a router does.
// Recorder is safe for concurrent use; the zero value is ready to use.
type Recorder struct {
	// MaxPostSize bounds posted data, as Options.MaxPostSize does; 0 means
	// 128 KiB. Larger posts fail with [wsroute.ErrPayloadTooLarge].
	MaxPostSize int

	mu    sync.Mutex
	conns map[string]*recorded
}

type recorded struct {
	info        wsroute.Connection
	open        bool
	deleted     bool
	closeCode   int
	closeReason string
	posts       [][]byte
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// Open makes connectionID a known, open connection. Opening it again
// forgets what was posted to it.
func (r *Recorder) Open(connectionID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns == nil {
		r.conns = map[string]*recorded{}
	}
	now := time.Now()
	r.conns[connectionID] = &recorded{open: true, info: wsroute.Connection{
		ConnectionID: connectionID,
		ConnectedAt:  now,
		LastActiveAt: now,
		Identity:     wsroute.Identity{SourceIP: "127.0.0.1", UserAgent: "wsroutetest"},
	}}
}

// Context returns a copy of ctx that carries r as the ConnectionManager, so a
// handler that calls [wsroute.ConnectionsFromContext] posts to r when the test
// calls it directly.
func (r *Recorder) Context(ctx context.Context) context.Context {
	return wsroute.ContextWithConnections(ctx, r)
}

// Close marks connectionID closed, as if its client had left: later posts to
// it fail with ErrGone. What was posted before stays readable.
func (r *Recorder) Close(connectionID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.conns[connectionID]; c != nil {
		c.open = false
	}
}

func (r *Recorder) get(connectionID string) (*recorded, error) {
	c := r.conns[connectionID]
	if c == nil || !c.open {
		return nil, wsroute.ErrGone
	}
	return c, nil
}

// PostToConnection records data as sent to connectionID.
func (r *Recorder) PostToConnection(ctx context.Context, connectionID string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	max := r.MaxPostSize
	if max <= 0 {
		max = 128 << 10
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(connectionID)
	if err != nil {
		return err
	}
	if len(data) > max {
		return wsroute.ErrPayloadTooLarge
	}
	c.posts = append(c.posts, append([]byte(nil), data...))
	c.info.LastActiveAt = time.Now()
	return nil
}

// GetConnection describes connectionID.
func (r *Recorder) GetConnection(ctx context.Context, connectionID string) (*wsroute.Connection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(connectionID)
	if err != nil {
		return nil, err
	}
	info := c.info
	return &info, nil
}

// DeleteConnection marks connectionID closed and deleted (see
// [Recorder.Deleted]). It does not run any $disconnect handler: call it
// yourself with [Events.Disconnect](1000, "Connection Closed Normally") when
// the test needs it.
func (r *Recorder) DeleteConnection(ctx context.Context, connectionID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(connectionID)
	if err != nil {
		return err
	}
	c.open, c.deleted = false, true
	c.closeCode, c.closeReason = 1000, "Connection Closed Normally"
	return nil
}

// Posted returns, in order, the data posted to connectionID so far, as text.
func (r *Recorder) Posted(connectionID string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.conns[connectionID]
	if c == nil {
		return nil
	}
	out := make([]string, len(c.posts))
	for i, p := range c.posts {
		out[i] = string(p)
	}
	return out
}

// TakePosted returns what [Recorder.Posted] returns and forgets it, so the
// next call sees only newer posts.
func (r *Recorder) TakePosted(connectionID string) []string {
	out := r.Posted(connectionID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.conns[connectionID]; c != nil {
		c.posts = c.posts[len(out):]
	}
	return out
}

// Deleted reports whether DeleteConnection closed connectionID.
func (r *Recorder) Deleted(connectionID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.conns[connectionID]
	return c != nil && c.deleted
}

// CloseConnection marks connectionID closed with code and reason, as
// [wsroute.Router.CloseConnection] would (see [Recorder.CloseStatus]). It
// refuses what a router refuses: an invalid code or reason
// ([wsroute.ErrInvalidClose]), or a connection that is not open
// ([wsroute.ErrGone]). Like DeleteConnection, it runs no $disconnect handler.
func (r *Recorder) CloseConnection(ctx context.Context, connectionID string, code int, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := wsroute.CheckCloseStatus(code, reason); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(connectionID)
	if err != nil {
		return err
	}
	c.open, c.closeCode, c.closeReason = false, code, reason
	return nil
}

// CloseStatus returns the code and reason that CloseConnection (or
// DeleteConnection: 1000 "Connection Closed Normally") closed connectionID
// with, and ok=false when neither did.
func (r *Recorder) CloseStatus(connectionID string) (code int, reason string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.conns[connectionID]
	if c == nil || c.closeCode == 0 {
		return 0, "", false
	}
	return c.closeCode, c.closeReason, true
}

var (
	_ wsroute.ConnectionManager = (*Recorder)(nil)
	_ wsroute.ConnectionCloser  = (*Recorder)(nil)
)
