package wsroute_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// Helpers for the lifecycle, limits and load tests. Unlike those in
// helpers_test.go, the client helpers here return errors instead of failing
// the test, so that they can run on goroutines of their own.

// trackingListener records the server side of every connection it accepts,
// so that a test can check that the router closed each socket it hijacked.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*trackedConn
}

type trackedConn struct {
	net.Conn
	closed atomic.Bool
}

func (c *trackedConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

func (l *trackingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: nc}
	l.mu.Lock()
	l.conns = append(l.conns, tc)
	l.mu.Unlock()
	return tc, nil
}

// open returns how many accepted sockets are not closed yet, and how many
// were accepted.
func (l *trackingListener) open() (open, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		if !c.closed.Load() {
			open++
		}
	}
	return open, len(l.conns)
}

// stillOpen reports whether the server side of the connection from the
// client address addr is open.
func (l *trackingListener) stillOpen(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		if c.RemoteAddr().String() == addr {
			return !c.closed.Load()
		}
	}
	return false
}

// requireAllClosed waits until every accepted socket is closed.
func (l *trackingListener) requireAllClosed(t testing.TB, within time.Duration) {
	t.Helper()
	waitUntil(t, within, func() bool { n, _ := l.open(); return n == 0 }, func() string {
		n, total := l.open()
		return fmt.Sprintf("%d of %d server-side sockets are still open", n, total)
	})
}

// serveTracked is serve with a trackingListener.
func serveTracked(t testing.TB, r *wsroute.Router) (*httptest.Server, *trackingListener) {
	t.Helper()
	srv := httptest.NewUnstartedServer(r)
	ln := &trackingListener{Listener: srv.Listener}
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = r.Shutdown(ctx)
		srv.Close()
	})
	return srv, ln
}

// waitUntil polls cond every few milliseconds until it holds, and fails the
// test with msg() when it does not within the bound.
func waitUntil(t testing.TB, within time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// client is a WebSocket client with its TCP connection at hand, so that a
// test can drop it without a close frame.
type client struct {
	ws *websocket.Conn
	nc net.Conn
}

// dialOpts configures dialClient.
type dialOpts struct {
	header  http.Header
	readBuf int    // when > 0, the client's socket receive buffer, in bytes
	onPing  func() // called for every ping the client answers
}

// dialClient dials url with a real TCP connection of its own, which it keeps.
func dialClient(ctx context.Context, url string, o dialOpts) (*client, error) {
	var nc net.Conn
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if o.readBuf > 0 {
				if err := c.(*net.TCPConn).SetReadBuffer(o.readBuf); err != nil {
					c.Close()
					return nil, err
				}
			}
			nc = c
			return c, nil
		},
	}
	defer tr.CloseIdleConnections()
	do := &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr},
		HTTPHeader: o.header,
	}
	if o.onPing != nil {
		do.OnPingReceived = func(context.Context, []byte) bool { o.onPing(); return true }
	}
	ws, resp, err := websocket.Dial(ctx, url, do)
	if resp != nil && resp.Body != nil && err != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	return &client{ws: ws, nc: nc}, nil
}

// reset drops the TCP connection with a RST, without a close frame.
func (c *client) reset() error {
	if err := c.nc.(*net.TCPConn).SetLinger(0); err != nil {
		return err
	}
	err := c.nc.Close()
	c.ws.CloseNow()
	return err
}

// readMsg reads one message within the bound.
func readMsg(c *websocket.Conn, within time.Duration) (websocket.MessageType, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	typ, b, err := c.Read(ctx)
	return typ, string(b), err
}

// readTextMsg reads one message and fails unless it is a text frame.
func readTextMsg(c *websocket.Conn, within time.Duration) (string, error) {
	typ, s, err := readMsg(c, within)
	if err == nil && typ != websocket.MessageText {
		err = fmt.Errorf("got a %v frame %q, want a text frame", typ, s)
	}
	return s, err
}

// closeStatus reads, skipping data messages, until the server closes the
// connection, and returns the close frame it sent.
func closeStatus(c *websocket.Conn, within time.Duration) (websocket.CloseError, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce, nil
		}
		return ce, fmt.Errorf("want a close frame, got %w", err)
	}
}

// expectClose reads until the server's close frame and checks its code and,
// unless reason is "*", its reason.
func expectClose(c *websocket.Conn, within time.Duration, code websocket.StatusCode, reason string) error {
	ce, err := closeStatus(c, within)
	if err != nil {
		return err
	}
	if ce.Code != code || (reason != "*" && ce.Reason != reason) {
		return fmt.Errorf("server closed with %d %q, want %d %q", ce.Code, ce.Reason, code, reason)
	}
	return nil
}

// askID sends {"action":"whoami"} and returns the reply: the connection ID,
// when the router has a whoami route.
func askID(c *websocket.Conn, within time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`)); err != nil {
		return "", err
	}
	return readTextMsg(c, within)
}

// lifeLog records a router's $connect and $disconnect events. $connect
// records the ID under the "name" query parameter of the upgrade request.
type lifeLog struct {
	mu           sync.Mutex
	changed      chan struct{} // closed and replaced on every event
	byName       map[string]string
	connected    map[string]int
	disconnected map[string][]*wsroute.Request
	unknown      []string // $disconnect for an ID $connect never saw
}

func newLifeLog() *lifeLog {
	return &lifeLog{
		changed:      make(chan struct{}),
		byName:       make(map[string]string),
		connected:    make(map[string]int),
		disconnected: make(map[string][]*wsroute.Request),
	}
}

// register installs the $connect and $disconnect routes on r.
func (l *lifeLog) register(r *wsroute.Router) {
	r.HandleFunc(wsroute.RouteConnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		id := req.RequestContext.ConnectionID
		l.mu.Lock()
		defer l.mu.Unlock()
		l.connected[id]++
		if name := req.QueryStringParameters["name"]; name != "" {
			l.byName[name] = id
		}
		l.notifyLocked()
		return nil, nil
	})
	r.HandleFunc(wsroute.RouteDisconnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		id := req.RequestContext.ConnectionID
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.connected[id] == 0 {
			l.unknown = append(l.unknown, id)
		}
		l.disconnected[id] = append(l.disconnected[id], req)
		l.notifyLocked()
		return nil, nil
	})
}

func (l *lifeLog) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// id returns the connection ID recorded for a name, or "".
func (l *lifeLog) id(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byName[name]
}

// disconnects returns the $disconnect events of id so far.
func (l *lifeLog) disconnects(id string) []*wsroute.Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*wsroute.Request(nil), l.disconnected[id]...)
}

// waitDisconnect waits for the $disconnect event of id.
func (l *lifeLog) waitDisconnect(id string, within time.Duration) (*wsroute.Request, error) {
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		l.mu.Lock()
		evs, ch := l.disconnected[id], l.changed
		l.mu.Unlock()
		if len(evs) > 0 {
			return evs[0], nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil, fmt.Errorf("no $disconnect for %s within %v", id, within)
		}
	}
}

// requireDisconnect waits for the $disconnect event of id and checks its
// code and reason.
func (l *lifeLog) requireDisconnect(t testing.TB, id string, code int, reason string) *wsroute.Request {
	t.Helper()
	ev, err := l.waitDisconnect(id, testTimeout)
	require.NoError(t, err)
	require.Equal(t, code, ev.RequestContext.DisconnectStatusCode, "disconnectStatusCode of %s", id)
	require.Equal(t, reason, ev.RequestContext.DisconnectReason, "disconnectReason of %s", id)
	return ev
}

// checkExactlyOnce reports every accepted connection without exactly one
// $disconnect, and every $disconnect of a connection never accepted.
func (l *lifeLog) checkExactlyOnce() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var bad []string
	for id, n := range l.connected {
		if n != 1 {
			bad = append(bad, fmt.Sprintf("%s: $connect ran %d times", id, n))
		}
		if d := len(l.disconnected[id]); d != 1 {
			bad = append(bad, fmt.Sprintf("%s: $disconnect ran %d times", id, d))
		}
	}
	for _, id := range l.unknown {
		bad = append(bad, fmt.Sprintf("%s: $disconnect without $connect", id))
	}
	return bad
}

// whoamiRoute registers the whoami route.
func whoamiRoute(r *wsroute.Router) { r.HandleFunc("whoami", whoami) }

// pump reads a connection on a goroutine of its own, so that the client
// answers pings and close frames while the test does something else.
type pump struct {
	msgs chan string // text and binary messages, as strings
	done chan error  // the error that ended the reads
}

// startPump reads c until it fails; closing c ends it.
func startPump(c *websocket.Conn) *pump {
	p := &pump{msgs: make(chan string, 1024), done: make(chan error, 1)}
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				p.done <- err
				return
			}
			select {
			case p.msgs <- string(b):
			default:
				p.done <- errors.New("pump: too many unread messages")
				c.CloseNow()
				return
			}
		}
	}()
	return p
}

// next returns the next message within the bound.
func (p *pump) next(within time.Duration) (string, error) {
	select {
	case m := <-p.msgs:
		return m, nil
	case err := <-p.done:
		p.done <- err
		return "", fmt.Errorf("connection ended: %w", err)
	case <-time.After(within):
		return "", fmt.Errorf("no message within %v", within)
	}
}

// end waits for the reads to end and returns why they did.
func (p *pump) end(within time.Duration) error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(within):
		return fmt.Errorf("the connection did not end within %v", within)
	}
}
