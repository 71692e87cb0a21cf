// Package wsnats is a [wsroute.Backplane] on NATS: several processes, each
// with its own router, serve one WebSocket API, and a PostToConnection,
// GetConnection or DeleteConnection made on any of them reaches the
// connection wherever it is held.
//
// Its import path is github.com/wsroute/wsroute/nats; the package is named
// wsnats so that it can be imported beside nats.go's package nats.
//
//	bp, err := wsnats.Connect("nats://127.0.0.1:4222", &wsnats.Options{API: "chat"})
//	if err != nil { … }
//	router, err := wsroute.New(&wsroute.Options{Backplane: bp})
//
// # How it works
//
// The router holding a connection subscribes to the subject
// wsroute.<API>.conn.<connectionId> for as long as it holds it: one NATS
// subscription per connection, delivered to a channel the Backplane shares
// among all its subscriptions, so that a connection costs no goroutine. A call
// for a connection another node holds is a NATS request on that subject,
// answered by the owner. A request nobody is subscribed to gets NATS's
// "no responders" at once: before answering [wsroute.ErrGone], the Backplane
// checks that every node it has heard from in the last DeadAfter answers a
// ping (and asks once more), so that a node cut off from NATS for a moment
// makes its connections answer [wsroute.ErrBackplaneUnavailable], never
// ErrGone. Nodes learn of each other by a heartbeat, one small message per
// node every HeartbeatInterval.
//
// A node that dies without a goodbye stops answering pings at once (NATS
// drops its subscriptions when its socket closes); its connections answer
// ErrBackplaneUnavailable until DeadAfter has passed since its last heartbeat,
// and [wsroute.ErrGone] from then on. With the defaults, within 3 seconds.
//
// # Groups
//
// The Backplane is a [wsroute.GroupBackplane]: the router's GroupManager
// spans the nodes. A node subscribes to wsroute.<API>.group.<name> (the
// name escaped into one subject token) while it has members of the group,
// once per group, and every node to wsroute.<API>.broadcast; a group post or
// a broadcast is one publish there, which each other node hands to its own
// router. Join and Leave of a connection another node holds are requests on
// its subject, like PostToConnection; Members asks every node it has heard
// from. The router's [wsroute.PostResult] counts the posting node's members
// only; delivery to the other nodes is at most once, in order per sender.
//
// Calls never wait in a reconnect buffer: while the Backplane's NATS
// connection is down, cross-node calls fail at once with
// ErrBackplaneUnavailable, and local connections keep working. nats.go
// reconnects by itself, forever unless an option says otherwise.
package wsnats

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wsroute/wsroute"
)

// Options configures [Connect]. A nil *Options, and every zero field, means
// the documented default.
type Options struct {
	// API names the API the routers serve: subjects start with
	// "wsroute.<API>.", so several APIs can share one NATS cluster. Every
	// node of one API must use the same name. It must be a NATS subject
	// token: no '.', '*', '>' or white space. Default "default".
	API string

	// HeartbeatInterval is how often the node tells the others it is alive.
	// Default 1 s.
	HeartbeatInterval time.Duration

	// DeadAfter is how long after its last heartbeat a node that no longer
	// answers is held dead, and its connections gone. Until then, calls for
	// IDs no node answers for return ErrBackplaneUnavailable. Default three
	// HeartbeatIntervals.
	DeadAfter time.Duration

	// RequestTimeout bounds a cross-node call whose ctx has no deadline.
	// Default 10 s.
	RequestTimeout time.Duration

	// Logger receives connection events of NATS and requests the node could
	// not answer. Default: nothing is logged.
	Logger *slog.Logger
}

const (
	defaultAPI            = "default"
	defaultHeartbeat      = time.Second
	defaultRequestTimeout = 10 * time.Second
	workers               = 4    // goroutines answering requests for local connections
	inboxSize             = 8192 // requests waiting for a worker before NATS drops them
	maxIDLength           = 128
	holdFlushTimeout      = 500 * time.Millisecond
)

// Request and reply codes: the first byte of a message.
const (
	opPost    = 'P'
	opGet     = 'G'
	opDelete  = 'D'
	opJoin    = 'J'
	opLeave   = 'L'
	opMembers = 'M'

	replyOK       = 'o'
	replyGone     = 'g'
	replyLimit    = 'l'
	replyTooLarge = 't'
	replyClosed   = 'c'
	replyError    = 'e'
	replyInvalid  = 'i'

	beatAlive = 'H'
	beatBye   = 'B'
)

// Backplane connects one router to the other nodes of its API through NATS.
// Create it with [Connect] and set it in [wsroute.Options.Backplane]; the
// router's Shutdown closes it. It is safe for concurrent use. See the package
// documentation for what it guarantees.
type Backplane struct {
	nc         *nats.Conn
	opts       Options
	log        *slog.Logger
	node       string // this node's ID
	prefix     string // wsroute.<API>.
	connPrefix string // wsroute.<API>.conn.

	mu       sync.Mutex
	local    wsroute.ConnectionManager // set by Attach
	closed   bool
	nodeSubs []*nats.Subscription

	subs    sync.Map // connection ID → *nats.Subscription
	graveMu sync.Mutex
	graves  []grave // released connections' subscriptions, kept for DeadAfter
	inbox   chan *nats.Msg
	done    chan struct{}
	wg      sync.WaitGroup
	members membership

	groupMu      sync.Mutex
	groupSubs    map[string]*groupSub // group → this node's subscription to its posts
	groupsClosed bool
	groupInbox   chan *nats.Msg
}

var _ wsroute.Backplane = (*Backplane)(nil)

// Connect dials NATS and returns a Backplane for one router. url is one
// server's URL or several separated by commas (nats.DefaultURL when empty);
// natsOpts are nats.go's own options, applied as nats.Connect applies them
// (credentials, TLS, name, reconnect settings, handlers, which the Backplane
// calls after its own). Two settings differ from nats.go's defaults:
// MaxReconnects is unlimited unless an option sets it, and the reconnect
// buffer is always disabled, so that no call is delivered late, after it
// has failed.
func Connect(url string, opts *Options, natsOpts ...nats.Option) (*Backplane, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.API == "" {
		o.API = defaultAPI
	}
	if !validToken(o.API) {
		return nil, fmt.Errorf("wsnats: API name %q is not a NATS subject token", o.API)
	}
	if o.HeartbeatInterval < 0 || o.DeadAfter < 0 || o.RequestTimeout < 0 {
		return nil, errors.New("wsnats: negative duration in Options")
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = defaultHeartbeat
	}
	if o.DeadAfter == 0 {
		o.DeadAfter = 3 * o.HeartbeatInterval
	}
	if o.DeadAfter < o.HeartbeatInterval {
		return nil, errors.New("wsnats: DeadAfter shorter than HeartbeatInterval")
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = defaultRequestTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Backplane{
		opts:       o,
		log:        o.Logger,
		node:       newNodeID(),
		prefix:     "wsroute." + o.API + ".",
		connPrefix: "wsroute." + o.API + ".conn.",
		inbox:      make(chan *nats.Msg, inboxSize),
		groupSubs:  make(map[string]*groupSub),
		groupInbox: make(chan *nats.Msg, groupInboxSize),
		done:       make(chan struct{}),
	}
	b.members.init(o.DeadAfter)

	no := nats.GetDefaultOptions()
	if url == "" {
		url = nats.DefaultURL
	}
	for u := range strings.SplitSeq(url, ",") {
		if u = strings.TrimSpace(u); u != "" {
			no.Servers = append(no.Servers, u)
		}
	}
	no.MaxReconnect = -1
	for _, opt := range natsOpts {
		if opt == nil {
			continue
		}
		if err := opt(&no); err != nil {
			return nil, err
		}
	}
	no.ReconnectBufSize = -1
	userDisconnected, userReconnected := no.DisconnectedErrCB, no.ReconnectedCB
	no.DisconnectedErrCB = func(nc *nats.Conn, err error) {
		b.members.disconnected()
		if !b.isClosed() {
			b.log.Warn("wsnats: disconnected from NATS", "err", err)
		}
		if userDisconnected != nil {
			userDisconnected(nc, err)
		}
	}
	no.ReconnectedCB = func(nc *nats.Conn) {
		b.members.connected(time.Now())
		b.log.Info("wsnats: reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		b.beat(beatAlive)
		if userReconnected != nil {
			userReconnected(nc)
		}
	}
	nc, err := no.Connect()
	if err != nil {
		return nil, fmt.Errorf("wsnats: %w", err)
	}
	b.nc = nc
	b.members.connected(time.Now())
	return b, nil
}

// Conn returns the Backplane's NATS connection, for its status and
// statistics. Do not close it: [Backplane.Close] does.
func (b *Backplane) Conn() *nats.Conn { return b.nc }

// NodeID returns the random ID this node has among the nodes of its API.
func (b *Backplane) NodeID() string { return b.node }

// Attach starts serving the requests of other nodes for local's
// connections. The router calls it; it fails when called twice.
func (b *Backplane) Attach(local wsroute.ConnectionManager) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return wsroute.ErrRouterClosed
	case b.local != nil:
		return errors.New("wsnats: Backplane already attached to a router: each router needs its own")
	}
	ping, err := b.nc.Subscribe(b.prefix+"node."+b.node, b.serveNode)
	if err != nil {
		return fmt.Errorf("wsnats: %w", err)
	}
	beats, err := b.nc.Subscribe(b.prefix+"nodes", b.heard)
	if err != nil {
		_ = ping.Unsubscribe()
		return fmt.Errorf("wsnats: %w", err)
	}
	bcast, err := b.nc.ChanSubscribe(b.broadcastSubject(), b.groupInbox)
	if err != nil {
		_ = ping.Unsubscribe()
		_ = beats.Unsubscribe()
		return fmt.Errorf("wsnats: %w", err)
	}
	b.local = local
	b.nodeSubs = []*nats.Subscription{ping, beats, bcast}
	b.wg.Add(workers + 2)
	for range workers {
		go b.consume(b.inbox, b.serve) // other nodes' requests for this node's connections
	}
	go b.heartbeat()
	// Other nodes' group posts, one at a time, in the order NATS delivers them.
	go b.consume(b.groupInbox, b.deliver)
	return nil
}

// Hold subscribes to the connection's subject and waits, at most half a
// second, for the NATS server to confirm it.
func (b *Backplane) Hold(connectionID string) {
	if !validID(connectionID) {
		b.log.Error("wsnats: connection ID cannot be a subject token", "connectionId", connectionID)
		return
	}
	sub, err := b.nc.ChanSubscribe(b.connPrefix+connectionID, b.inbox)
	if err != nil {
		b.log.Error("wsnats: cannot subscribe for a connection", "connectionId", connectionID, "err", err)
		return
	}
	if old, loaded := b.subs.Swap(connectionID, sub); loaded {
		_ = old.(*nats.Subscription).Unsubscribe()
	}
	// Wait until the server has the subscription, so that the connection
	// is reachable from other nodes before its client learns it is
	// connected, as it is locally. Not while reconnecting: the
	// subscription is sent on reconnection.
	if b.nc.Status() == nats.CONNECTED {
		if err := b.nc.FlushTimeout(holdFlushTimeout); err != nil {
			b.log.Warn("wsnats: NATS did not confirm a subscription", "connectionId", connectionID, "err", err)
		}
	}
}

// Release unsubscribes from the connection's subject, DeadAfter later.
//
// Until then the node answers that the connection is gone. Unsubscribing at
// once would lose requests: in a NATS cluster, a server may still route a
// request to the owner's server after the owner has unsubscribed, and that
// server drops it, so the caller would wait for its ctx instead of learning
// the truth.
func (b *Backplane) Release(connectionID string) {
	if v, ok := b.subs.LoadAndDelete(connectionID); ok {
		b.graveMu.Lock()
		b.graves = append(b.graves, grave{v.(*nats.Subscription), time.Now()})
		b.graveMu.Unlock()
	}
}

// grave is the subscription of a released connection.
type grave struct {
	sub *nats.Subscription
	at  time.Time
}

// bury unsubscribes the subscriptions released before until.
func (b *Backplane) bury(until time.Time) {
	b.graveMu.Lock()
	n := 0
	for n < len(b.graves) && !b.graves[n].at.After(until) {
		n++
	}
	old := b.graves[:n]
	b.graves = b.graves[n:]
	if len(b.graves) == 0 {
		b.graves = nil // release the array
	}
	b.graveMu.Unlock()
	for _, g := range old {
		_ = g.sub.Unsubscribe()
	}
}

// Close tells the other nodes this one is leaving, stops serving requests and
// closes the NATS connection. The router's Shutdown calls it; call it
// yourself only for a Backplane no router was created with. Cross-node
// calls made afterwards return [wsroute.ErrRouterClosed].
func (b *Backplane) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := b.nodeSubs
	attached := b.local != nil
	b.mu.Unlock()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
	b.subs.Range(func(k, v any) bool {
		_ = v.(*nats.Subscription).Unsubscribe()
		b.subs.Delete(k)
		return true
	})
	b.bury(time.Now().Add(time.Hour))
	b.closeGroups()
	if attached {
		b.beat(beatBye)
		_ = b.nc.FlushTimeout(time.Second)
	}
	close(b.done)
	b.wg.Wait()
	b.nc.Close()
	return nil
}

func (b *Backplane) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// newNodeID returns 12 random URL-safe characters.
func newNodeID() string {
	var raw [9]byte
	_, _ = rand.Read(raw[:])
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// validToken reports whether s can be one token of a NATS subject.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ', c == '.', c == '*', c == '>', c >= 0x7f:
			return false
		}
	}
	return true
}

// validID reports whether id can be a connection ID of a router: wsroute's
// IDs are 16 characters of URL-safe base64. Anything else is gone without
// asking.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '=') {
			return false
		}
	}
	return true
}
