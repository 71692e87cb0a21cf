package wsroutetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/wsroute/wsroute"
)

// DialOptions configures [Dial]. The zero value dials with no extra headers,
// query or subprotocols.
type DialOptions struct {
	// Header is sent with the handshake request (for example Authorization,
	// x-api-key or Origin).
	Header http.Header

	// Query is added to the URL's query string.
	Query url.Values

	// Subprotocols are offered in Sec-WebSocket-Protocol.
	Subprotocols []string

	// ReadLimit bounds the size of a frame the client accepts. Default 1 MiB.
	ReadLimit int64
	// RouteSelection is the route selection expression that
	// [Client.SendAction] builds messages for. Default: the router's, with
	// [Server.Dial]; otherwise the default expression, $request.body.action.
	RouteSelection *wsroute.Expression
}

// Frame is one message the client received.
type Frame struct {
	Type websocket.MessageType
	Data []byte
}

// kind names a message type in failure messages.
func kind(t websocket.MessageType) string {
	switch t {
	case websocket.MessageText:
		return "text"
	case websocket.MessageBinary:
		return "binary"
	}
	return t.String()
}

// String returns the frame's data as text.
func (f Frame) String() string { return string(f.Data) }

// IsText reports whether the frame is a text frame.
func (f Frame) IsText() bool { return f.Type == websocket.MessageText }

// IsBinary reports whether the frame is a binary frame.
func (f Frame) IsBinary() bool { return f.Type == websocket.MessageBinary }

// ErrorFrame is the content of the error frames that API Gateway sends on an
// open connection: {"message": "Forbidden", "connectionId":"…",
// "requestId":"…"} and the same with "Internal server error".
type ErrorFrame struct {
	Message      string
	ConnectionID string
	RequestID    string
}

// Client is a WebSocket client for tests. A goroutine of its own reads every
// frame as it arrives and queues it, so the connection keeps answering pings
// and close frames between expectations, and a timed-out expectation never
// closes the connection.
//
// Send and expect from one goroutine at a time; the methods fail the test
// (with t.Fatal, so call them from the test's goroutine) on any error.
type Client struct {
	// Conn is the underlying connection, for what the helpers do not cover.
	// Do not read from it: the client's goroutine does.
	Conn *websocket.Conn

	// Response is the server's handshake response.
	Response *http.Response

	// Timeout bounds each send and expectation whose context has no earlier
	// deadline. Default [DefaultTimeout].
	Timeout time.Duration

	t      TB
	expr   *wsroute.Expression // for SendAction
	local  string              // the client's address, as the server sees it
	server *Server             // set by Server.Dial
	notify chan struct{}       // signalled when a frame or the end arrives
	done   chan struct{}       // closed when the read goroutine returns

	mu     sync.Mutex
	frames []Frame
	err    error // why reading stopped
}

// Dial opens a WebSocket connection to rawURL (ws:// or wss://) and starts
// reading from it. It fails the test when the handshake fails. The connection
// is closed, and its reader stopped, when the test ends.
func Dial(t TB, rawURL string, opts *DialOptions) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	c, resp, err := dial(ctx, rawURL, opts)
	if err != nil {
		status := ""
		if resp != nil {
			status = " (HTTP " + resp.Status + ")"
		}
		t.Fatalf("wsroutetest: dial %s: %v%s", rawURL, err, status)
	}
	c.t = t
	t.Cleanup(c.shutdown)
	return c
}

// DialRefused dials rawURL and expects the server to refuse the handshake. It
// returns the server's HTTP response, whose Body holds the start of the
// response body. It fails the test when the handshake succeeds or no HTTP
// response came back.
func DialRefused(t TB, rawURL string, opts *DialOptions) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	c, resp, err := dial(ctx, rawURL, opts)
	if err == nil {
		c.t = t
		c.shutdown()
		t.Fatalf("wsroutetest: dial %s: handshake succeeded, want it refused", rawURL)
	}
	if resp == nil {
		t.Fatalf("wsroutetest: dial %s: no HTTP response: %v", rawURL, err)
	}
	return resp
}

func dial(ctx context.Context, rawURL string, opts *DialOptions) (*Client, *http.Response, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	if len(o.Query) > 0 {
		q := u.Query()
		for k, vs := range o.Query {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
	}
	// A transport of its own records the client's address, which the
	// server's $connect middleware sees as the remote address.
	var local string
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			local = nc.LocalAddr().String()
		}
		return nc, err
	}}
	defer tr.CloseIdleConnections() // an upgraded connection is not idle: it stays open
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: tr},
		HTTPHeader:   o.Header,
		Subprotocols: o.Subprotocols,
	})
	if err != nil {
		return nil, resp, err
	}
	expr := o.RouteSelection
	if expr == nil {
		expr = defaultExpression
	}
	limit := o.ReadLimit
	if limit <= 0 {
		limit = 1 << 20
	}
	conn.SetReadLimit(limit)
	c := &Client{
		Conn:     conn,
		Response: resp,
		Timeout:  DefaultTimeout,
		expr:     expr,
		local:    local,
		notify:   make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	go c.read()
	return c, resp, nil
}

// read queues every frame until the connection ends.
func (c *Client) read() {
	defer close(c.done)
	for {
		typ, data, err := c.Conn.Read(context.Background())
		c.mu.Lock()
		if err != nil {
			c.err = err
		} else {
			c.frames = append(c.frames, Frame{Type: typ, Data: data})
		}
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// shutdown closes the connection at once and waits for the reader.
func (c *Client) shutdown() {
	_ = c.Conn.CloseNow()
	select {
	case <-c.done:
	case <-time.After(DefaultTimeout):
		c.t.Errorf("wsroutetest: client reader did not stop")
	}
}

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	d := c.Timeout
	if d <= 0 {
		d = DefaultTimeout
	}
	return context.WithTimeout(ctx, d)
}

// next returns the next queued frame, or the error that ended the
// connection, or ctx's error.
func (c *Client) next(ctx context.Context) (Frame, error) {
	for {
		c.mu.Lock()
		if len(c.frames) > 0 {
			f := c.frames[0]
			c.frames = c.frames[1:]
			c.mu.Unlock()
			return f, nil
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			return Frame{}, err
		}
		select {
		case <-c.notify:
		case <-ctx.Done():
			return Frame{}, ctx.Err()
		}
	}
}

// Next returns the next frame the client received, waiting for one. It fails
// the test when none arrives in time or the connection ends first.
func (c *Client) Next(ctx context.Context) Frame {
	c.t.Helper()
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	f, err := c.next(ctx)
	if err != nil {
		c.t.Fatalf("wsroutetest: waiting for a frame: %v", err)
	}
	return f
}

// Received returns the frames received and not yet consumed, without
// waiting, and consumes them.
func (c *Client) Received() []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.frames
	c.frames = nil
	return f
}

// SendText sends s as one text frame.
func (c *Client) SendText(ctx context.Context, s string) {
	c.t.Helper()
	c.send(ctx, websocket.MessageText, []byte(s))
}

// SendBinary sends b as one binary frame.
func (c *Client) SendBinary(ctx context.Context, b []byte) {
	c.t.Helper()
	c.send(ctx, websocket.MessageBinary, b)
}

// SendJSON sends v, encoded as JSON, as one text frame.
func (c *Client) SendJSON(ctx context.Context, v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatalf("wsroutetest: encoding %T: %v", v, err)
	}
	c.send(ctx, websocket.MessageText, b)
}

// SendAction sends, as one text frame, a JSON message that the route
// selection expression routes to routeKey: fields (which may be nil) with
// the values the expression reads set to yield routeKey (see
// [wsroute.Expression.Message]). With the default expression,
// $request.body.action, it sends {"action":routeKey, …fields}; with
// ${request.body.service}/${request.body.action}, SendAction(ctx,
// "chat/join", nil) sends {"action":"join","service":"chat"}. The expression
// is the router's for a client from [Server.Dial], else
// DialOptions.RouteSelection or the default. It fails the test when no
// message yields routeKey.
func (c *Client) SendAction(ctx context.Context, routeKey string, fields map[string]any) {
	c.t.Helper()
	b, err := c.expr.Message(routeKey, fields)
	if err != nil {
		c.t.Fatalf("wsroutetest: SendAction: %v; send the frame with SendJSON or SendText", err)
	}
	c.send(ctx, websocket.MessageText, b)
}

// ConnectionID returns the ID the router gave this client's connection, as
// its $connect event had it. It fails the test for a client made by the
// package-level [Dial], whose server is unknown: dial with [Server.Dial].
func (c *Client) ConnectionID() string {
	c.t.Helper()
	if c.server == nil {
		c.t.Fatalf("wsroutetest: ConnectionID: this client was made by Dial, not Server.Dial, so its connection ID is unknown")
		return ""
	}
	id := c.server.connectionID(c.local)
	if id == "" {
		c.t.Fatalf("wsroutetest: ConnectionID: the server saw no $connect from %s", c.local)
	}
	return id
}

// Subprotocol returns the subprotocol the server selected, or "".
func (c *Client) Subprotocol() string { return c.Conn.Subprotocol() }

func (c *Client) send(ctx context.Context, typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if err := c.Conn.Write(ctx, typ, b); err != nil {
		c.t.Fatalf("wsroutetest: sending %q: %v", truncate(b), err)
	}
}

// ExpectText waits for the next frame and fails the test unless it is a text
// frame equal to want.
func (c *Client) ExpectText(ctx context.Context, want string) {
	c.t.Helper()
	f := c.Next(ctx)
	if f.Type != websocket.MessageText || string(f.Data) != want {
		c.t.Fatalf("wsroutetest: got %s frame %q, want text frame %q", kind(f.Type), truncate(f.Data), want)
	}
}

// ExpectBinary waits for the next frame and fails the test unless it is a
// binary frame equal to want.
func (c *Client) ExpectBinary(ctx context.Context, want []byte) {
	c.t.Helper()
	f := c.Next(ctx)
	if f.Type != websocket.MessageBinary || string(f.Data) != string(want) {
		c.t.Fatalf("wsroutetest: got %s frame %q, want binary frame %q", kind(f.Type), truncate(f.Data), want)
	}
}

// ExpectJSON waits for the next frame and fails the test unless it is a text
// frame holding JSON equal to want. want is a JSON string, a []byte of JSON,
// or any value, which is encoded to JSON first. Object keys may come in any
// order; numbers compare by value.
func (c *Client) ExpectJSON(ctx context.Context, want any) {
	c.t.Helper()
	var wantJSON []byte
	switch w := want.(type) {
	case string:
		wantJSON = []byte(w)
	case []byte:
		wantJSON = w
	default:
		b, err := json.Marshal(w)
		if err != nil {
			c.t.Fatalf("wsroutetest: encoding %T: %v", want, err)
		}
		wantJSON = b
	}
	var wantV any
	if err := json.Unmarshal(wantJSON, &wantV); err != nil {
		c.t.Fatalf("wsroutetest: want is not JSON: %v: %q", err, wantJSON)
	}
	f := c.Next(ctx)
	var got any
	if f.Type != websocket.MessageText || json.Unmarshal(f.Data, &got) != nil {
		c.t.Fatalf("wsroutetest: got %s frame %q, want JSON %s", kind(f.Type), truncate(f.Data), wantJSON)
	}
	if !jsonEqual(got, wantV) {
		c.t.Fatalf("wsroutetest: got JSON %s, want %s", f.Data, wantJSON)
	}
}

// ReadJSON waits for the next frame, which must be a text frame, and decodes
// it into v.
func (c *Client) ReadJSON(ctx context.Context, v any) {
	c.t.Helper()
	f := c.Next(ctx)
	if f.Type != websocket.MessageText {
		c.t.Fatalf("wsroutetest: got %s frame, want a JSON text frame", kind(f.Type))
	}
	if err := json.Unmarshal(f.Data, v); err != nil {
		c.t.Fatalf("wsroutetest: decoding %q into %T: %v", truncate(f.Data), v, err)
	}
}

var errorFrameRE = regexp.MustCompile(`^\{"message": "([^"]*)", "connectionId":"([^"]*)", "requestId":"([^"]*)"\}$`)

// ParseErrorFrame parses one of API Gateway's error frames, byte for byte:
// {"message": "Forbidden", "connectionId":"<id>", "requestId":"<rid>"} (one
// space after "message": and after the first comma, none elsewhere). ok is
// false for anything else.
func ParseErrorFrame(data []byte) (f ErrorFrame, ok bool) {
	m := errorFrameRE.FindSubmatch(data)
	if m == nil {
		return ErrorFrame{}, false
	}
	return ErrorFrame{Message: string(m[1]), ConnectionID: string(m[2]), RequestID: string(m[3])}, true
}

// ExpectForbidden waits for the next frame and fails the test unless it is
// exactly the frame API Gateway sends when a message matches no route and
// there is no $default route.
func (c *Client) ExpectForbidden(ctx context.Context) ErrorFrame {
	c.t.Helper()
	return c.expectErrorFrame(ctx, "Forbidden")
}

// ExpectInternalServerError waits for the next frame and fails the test
// unless it is exactly the frame API Gateway sends when the route's
// integration failed (here: the handler returned an error or panicked).
func (c *Client) ExpectInternalServerError(ctx context.Context) ErrorFrame {
	c.t.Helper()
	return c.expectErrorFrame(ctx, "Internal server error")
}

func (c *Client) expectErrorFrame(ctx context.Context, msg string) ErrorFrame {
	c.t.Helper()
	f := c.Next(ctx)
	ef, ok := ParseErrorFrame(f.Data)
	if f.Type != websocket.MessageText || !ok || ef.Message != msg {
		c.t.Fatalf("wsroutetest: got %s frame %q, want the %q error frame", kind(f.Type), truncate(f.Data), msg)
	}
	if ef.ConnectionID == "" || ef.RequestID == "" {
		c.t.Fatalf("wsroutetest: error frame %q has an empty connectionId or requestId", f.Data)
	}
	return ef
}

// ExpectNoFrame fails the test if a frame arrives within d (or before ctx
// ends, if sooner). The connection ending is not a frame.
func (c *Client) ExpectNoFrame(ctx context.Context, d time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	f, err := c.next(ctx)
	if err == nil {
		c.t.Fatalf("wsroutetest: got %s frame %q, want none", kind(f.Type), truncate(f.Data))
	}
}

// ExpectClose waits until the server closes the connection and fails the test
// unless the close frame carried code. It returns the close reason. Frames
// that arrive first are skipped.
func (c *Client) ExpectClose(ctx context.Context, code websocket.StatusCode) string {
	c.t.Helper()
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	for {
		_, err := c.next(ctx)
		if err == nil {
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			c.t.Fatalf("wsroutetest: waiting for close %d: %v", code, err)
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("wsroutetest: connection ended without a close frame (%v), want close %d", err, code)
		}
		if ce.Code != code {
			c.t.Fatalf("wsroutetest: got close %d %q, want %d", ce.Code, ce.Reason, code)
		}
		return ce.Reason
	}
}

// Close closes the connection with code and reason, waiting (bounded by
// Timeout) for the server's close frame.
func (c *Client) Close(code websocket.StatusCode, reason string) {
	c.t.Helper()
	if err := c.Conn.Close(code, reason); err != nil && !errors.Is(err, io.EOF) {
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Logf("wsroutetest: close: %v", err)
		}
	}
	ctx, cancel := c.withTimeout(context.Background())
	defer cancel()
	select {
	case <-c.done:
	case <-ctx.Done():
		c.t.Fatalf("wsroutetest: client reader did not stop after close")
	}
}

// CloseNow drops the connection without a close handshake, as a client that
// vanishes does.
func (c *Client) CloseNow() {
	c.shutdown()
}

func truncate(b []byte) string {
	const max = 200
	if len(b) > max {
		return fmt.Sprintf("%s… (%d bytes)", b[:max], len(b))
	}
	return string(b)
}

// jsonEqual compares two values decoded from JSON.
func jsonEqual(a, b any) bool {
	ab, err1 := json.Marshal(a)
	bb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ab) == string(bb)
}
