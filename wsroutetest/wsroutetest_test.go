package wsroutetest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/internal/leakcheck"
	"github.com/wsroute/wsroute/wsroutetest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const quiet = 100 * time.Millisecond

// testRouter has a route for each helper to exercise.
func testRouter(t *testing.T) *wsroute.Router {
	r := wsroutetest.NewRouter(t, nil)
	r.HandleFunc("echo", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{StatusCode: 200, Body: req.Body}, nil
	})
	r.HandleFunc("text", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{StatusCode: 200, Body: "plain text"}, nil
	})
	r.HandleFunc("fail", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return nil, errors.New("it failed")
	})
	r.HandleFunc("panic", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		panic("oops")
	})
	r.HandleFunc("push", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		cm := wsroute.ConnectionsFromContext(ctx)
		for i := range 3 {
			if err := cm.PostToConnection(ctx, req.RequestContext.ConnectionID, fmt.Appendf(nil, "push %d", i)); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	r.HandleFunc("quit", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return nil, wsroute.ConnectionsFromContext(ctx).DeleteConnection(ctx, req.RequestContext.ConnectionID)
	})
	return r
}

func TestClient(t *testing.T) {
	ctx := context.Background()
	srv := wsroutetest.NewServer(t, testRouter(t), nil)
	c := srv.Dial(t, nil)
	assert.Equal(t, http.StatusSwitchingProtocols, c.Response.StatusCode)

	c.SendText(ctx, `{"action":"echo","x":1}`)
	c.ExpectText(ctx, `{"action":"echo","x":1}`)

	c.SendAction(ctx, "echo", map[string]any{"n": 2.5, "s": "é", "action": "ignored"})
	c.ExpectJSON(ctx, `{"s":"é","action":"echo","n":2.5}`) // any key order

	c.SendJSON(ctx, map[string]any{"action": "echo", "list": []int{1, 2}})
	c.ExpectJSON(ctx, map[string]any{"action": "echo", "list": []any{1, 2}})

	c.SendAction(ctx, "echo", map[string]any{"v": "decoded"})
	var v struct{ Action, V string }
	c.ReadJSON(ctx, &v)
	assert.Equal(t, "decoded", v.V)

	c.SendAction(ctx, "fail", nil)
	e1 := c.ExpectInternalServerError(ctx)
	c.SendAction(ctx, "panic", nil)
	e2 := c.ExpectInternalServerError(ctx)
	assert.Equal(t, e1.ConnectionID, e2.ConnectionID)
	assert.NotEqual(t, e1.RequestID, e2.RequestID)
	c.SendAction(ctx, "nowhere", nil)
	f := c.ExpectForbidden(ctx)
	assert.Equal(t, e1.ConnectionID, f.ConnectionID)
	assert.Regexp(t, `^[A-Za-z0-9_-]{15}=$`, f.ConnectionID)

	c.SendAction(ctx, "push", nil)
	for i := range 3 {
		assert.Equal(t, fmt.Sprintf("push %d", i), c.Next(ctx).String())
	}
	c.ExpectNoFrame(ctx, quiet)

	c.SendBinary(ctx, []byte{1, 2, 3}) // refused as API Gateway does
	c.ExpectClose(ctx, websocket.StatusUnsupportedData)
}

func TestReceivedAndClose(t *testing.T) {
	ctx := context.Background()
	srv := wsroutetest.NewServer(t, testRouter(t), nil)
	c := srv.Dial(t, nil)
	c.SendAction(ctx, "push", nil)
	c.SendAction(ctx, "quit", nil)
	// Frames that arrived before the close are skipped by ExpectClose but
	// were queued in order.
	reason := c.ExpectClose(ctx, websocket.StatusNormalClosure)
	assert.Equal(t, "Connection Closed Normally", reason)

	c2 := srv.Dial(t, nil)
	c2.SendAction(ctx, "push", nil)
	c2.Next(ctx)
	deadline := time.Now().Add(wsroutetest.DefaultTimeout)
	var got []string
	for len(got) < 2 && time.Now().Before(deadline) {
		for _, f := range c2.Received() {
			got = append(got, f.String())
		}
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, []string{"push 1", "push 2"}, got)
	c2.Close(websocket.StatusNormalClosure, "bye")
	c3 := srv.Dial(t, nil)
	c3.CloseNow()
}

func TestDialOptions(t *testing.T) {
	var mu sync.Mutex
	var got *wsroute.Request
	r := wsroutetest.NewRouter(t, nil)
	r.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		mu.Lock()
		got = req
		mu.Unlock()
		if req.Headers["X-Deny"] != "" {
			return &wsroute.Response{StatusCode: http.StatusForbidden, Body: "denied"}, nil
		}
		return &wsroute.Response{StatusCode: 200, Headers: map[string]string{"Sec-WebSocket-Protocol": "b"}}, nil
	})
	mux := http.NewServeMux()
	mux.Handle("/stage/ws", r)
	srv := wsroutetest.NewServer(t, r, &wsroutetest.ServerOptions{Handler: mux, Path: "stage/ws"})
	assert.True(t, strings.HasPrefix(srv.URL, "ws://127.0.0.1:"), srv.URL)
	assert.True(t, strings.HasSuffix(srv.URL, "/stage/ws"), srv.URL)

	c := srv.Dial(t, &wsroutetest.DialOptions{
		Header:       http.Header{"X-Test": {"1", "2"}},
		Query:        url.Values{"q": {"x", "y"}, "token": {"abc"}},
		Subprotocols: []string{"a", "b"},
	})
	assert.Equal(t, "b", c.Conn.Subprotocol())
	mu.Lock()
	assert.Equal(t, "2", got.Headers["X-Test"])
	assert.Equal(t, []string{"1", "2"}, got.MultiValueHeaders["X-Test"])
	assert.Equal(t, "abc", got.QueryStringParameters["token"])
	assert.Equal(t, []string{"x", "y"}, got.MultiValueQueryStringParameters["q"])
	mu.Unlock()

	resp := srv.DialRefused(t, &wsroutetest.DialOptions{Header: http.Header{"X-Deny": {"1"}}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "denied", string(b))
}

// fakeTB records what a helper reports instead of failing the test.
type fakeTB struct {
	mu       sync.Mutex
	fatal    string
	errs     []string
	cleanups []func()
}

type fatalPanic struct{}

func (f *fakeTB) Helper()                         {}
func (f *fakeTB) Logf(format string, args ...any) {}
func (f *fakeTB) Cleanup(fn func())               { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	panic(fatalPanic{})
}

func (f *fakeTB) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// fails runs fn and returns the message it failed with, or "".
func (f *fakeTB) fails(fn func()) (msg string) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(fatalPanic); !ok {
				panic(p)
			}
			msg = f.fatal
		}
	}()
	fn()
	return ""
}

// The helpers fail the test when what they expect does not happen, and do so
// in bounded time.
func TestExpectationsFail(t *testing.T) {
	ctx := context.Background()
	srv := wsroutetest.NewServer(t, testRouter(t), nil)
	ft := &fakeTB{}
	t.Cleanup(ft.cleanup)
	c := wsroutetest.Dial(ft, srv.URL, nil)
	c.Timeout = 200 * time.Millisecond

	tests := []struct {
		name string
		run  func()
		want string // regexp of the failure
	}{
		{"wrong text", func() { c.SendText(ctx, `{"action":"echo"}`); c.ExpectText(ctx, "other") }, `got text frame .*want text frame "other"`},
		{"wrong JSON", func() { c.SendText(ctx, `{"action":"echo","a":1}`); c.ExpectJSON(ctx, `{"action":"echo","a":2}`) }, `got JSON .*want`},
		{"not JSON", func() { c.SendAction(ctx, "text", nil); c.ExpectJSON(ctx, `{}`) }, `got text frame "plain text", want JSON \{\}`},
		{"want not JSON", func() { c.ExpectJSON(ctx, `{`) }, `want is not JSON`},
		{"not the Forbidden frame", func() { c.SendText(ctx, `{"action":"echo"}`); c.ExpectForbidden(ctx) }, `want the "Forbidden" error frame`},
		{"Forbidden, not Internal server error", func() { c.SendText(ctx, `{"action":"nope"}`); c.ExpectInternalServerError(ctx) }, `want the "Internal server error" error frame`},
		{"nothing comes", func() { c.Next(ctx) }, `waiting for a frame: context deadline exceeded`},
		{"a frame comes", func() { c.SendText(ctx, `{"action":"echo"}`); c.ExpectNoFrame(ctx, time.Second) }, `want none`},
		{"not closed", func() { c.ExpectClose(ctx, websocket.StatusNormalClosure) }, `waiting for close 1000`},
		{"bad JSON for ReadJSON", func() { c.SendText(ctx, `{"action":"echo","n":"x"}`); var v struct{ N int }; c.ReadJSON(ctx, &v) }, `decoding`},
		{"closed with another code", func() { c.SendAction(ctx, "quit", nil); c.ExpectClose(ctx, websocket.StatusGoingAway) }, `got close 1000 "Connection Closed Normally", want 1001`},
		{"send after close", func() { c.SendText(ctx, "x") }, `sending "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			msg := ft.fails(tt.run)
			assert.Regexp(t, tt.want, msg)
			assert.Less(t, time.Since(start), 2*time.Second)
		})
	}

	ft2 := &fakeTB{}
	t.Cleanup(ft2.cleanup)
	msg := ft2.fails(func() { wsroutetest.Dial(ft2, "ws://127.0.0.1:1/", nil) })
	assert.Contains(t, msg, "dial ws://127.0.0.1:1/")
	msg = ft2.fails(func() { wsroutetest.DialRefused(ft2, srv.URL, nil) })
	assert.Contains(t, msg, "handshake succeeded, want it refused")
}

func TestParseErrorFrame(t *testing.T) {
	tests := []struct {
		frame string
		ok    bool
	}{
		{`{"message": "Forbidden", "connectionId":"L0SM9cOFvHcCIhw=", "requestId":"Ab-_Cd9eFgHiJkL="}`, true},
		{`{"message": "Internal server error", "connectionId":"a", "requestId":"b"}`, true},
		{`{"message":"Forbidden","connectionId":"a","requestId":"b"}`, false},      // spacing matters
		{`{"message": "Forbidden", "connectionId": "a", "requestId": "b"}`, false}, // it does
		{`{"connectionId":"a", "message": "Forbidden", "requestId":"b"}`, false},
		{`{"message": "Forbidden", "connectionId":"a", "requestId":"b"} `, false},
	}
	for _, tt := range tests {
		f, ok := wsroutetest.ParseErrorFrame([]byte(tt.frame))
		assert.Equal(t, tt.ok, ok, tt.frame)
		if ok {
			assert.NotEmpty(t, f.Message)
		}
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := wsroutetest.NewID()
		require.Regexp(t, `^[A-Za-z0-9_-]{15}=$`, id)
		require.False(t, seen[id])
		seen[id] = true
	}
}

func TestEvents(t *testing.T) {
	ev := wsroutetest.NewEvents()
	ev.Authorizer = map[string]any{"principalId": "u1"}
	c := ev.Connect(http.Header{"connection": {"Upgrade"}, "Upgrade": {"websocket"}, "x-api-key": {"k"}, "Sec-Websocket-Protocol": {"chat"}}, nil)
	assert.Equal(t, "chat", c.Headers["Sec-WebSocket-Protocol"])
	assert.Equal(t, wsroute.RouteConnect, c.RequestContext.RouteKey)
	assert.Equal(t, "k", c.Headers["X-Api-Key"])
	assert.NotContains(t, c.Headers, "Connection")
	assert.NotContains(t, c.Headers, "Upgrade")
	assert.Equal(t, "127.0.0.1", c.Headers["Host"])
	assert.Nil(t, c.QueryStringParameters, "no query: no query parameters, as API Gateway")
	assert.Equal(t, "u1", c.RequestContext.Authorizer["principalId"])
	assert.Equal(t, c.RequestContext.RequestID, c.RequestContext.ExtendedRequestID)
	_, err := time.Parse("02/Jan/2006:15:04:05 +0000", c.RequestContext.RequestTime)
	assert.NoError(t, err)

	m := ev.Message(`{"action":"join"}`)
	assert.Equal(t, "join", m.RequestContext.RouteKey)
	assert.Len(t, m.RequestContext.MessageID, 16)
	assert.NotEqual(t, c.RequestContext.RequestID, m.RequestContext.RequestID)
	assert.Equal(t, wsroute.RouteDefault, ev.Message(`{"other":1}`).RequestContext.RouteKey)
	assert.Equal(t, "x", ev.MessageRoute("x", "body").RequestContext.RouteKey)
	ev.RouteSelection = wsroute.MustParseExpression("${request.body.service}/${request.body.action}")
	assert.Equal(t, "chat/join", ev.Message(`{"service":"chat","action":"join"}`).RequestContext.RouteKey)

	fixed := time.Date(2024, 2, 9, 18, 11, 43, 420e6, time.UTC)
	ev.Now = func() time.Time { return fixed }
	d := ev.Disconnect(1005, "Client-side close frame status not set")
	assert.Equal(t, "09/Feb/2024:18:11:43 +0000", d.RequestContext.RequestTime)
	assert.Equal(t, fixed.UnixMilli(), d.RequestContext.RequestTimeEpoch)
	assert.Equal(t, 1005, d.RequestContext.DisconnectStatusCode)
}

// jsonShape lists the paths of the keys of a JSON value: what the events
// have, whatever their values.
func jsonShape(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var m any
	require.NoError(t, json.Unmarshal(b, &m))
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, child := range obj {
			switch prefix {
			case "headers", "multiValueHeaders":
				continue // header names differ between a real client and ours
			}
			p := strings.TrimPrefix(prefix+"."+k, ".")
			out = append(out, p)
			walk(p, child)
		}
	}
	walk("", m)
	sort.Strings(out)
	return out
}

// Events builds the same events, key for key, as a real router passes to its
// handlers.
func TestEventsMatchTheRouter(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	real := map[string]*wsroute.Request{}
	record := func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		mu.Lock()
		real[req.RequestContext.EventType] = req
		mu.Unlock()
		return nil, nil
	}
	r := wsroutetest.NewRouter(t, nil)
	r.HandleFunc(wsroute.RouteConnect, record)
	r.HandleFunc("join", record)
	disconnected := make(chan struct{})
	r.HandleFunc(wsroute.RouteDisconnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		record(ctx, req)
		close(disconnected)
		return nil, nil
	})
	srv := wsroutetest.NewServer(t, r, nil)
	c := srv.Dial(t, &wsroutetest.DialOptions{Query: url.Values{"token": {"abc"}}, Header: http.Header{"User-Agent": {"ua/1.0"}}})
	c.SendAction(ctx, "join", nil)
	c.Close(websocket.StatusNormalClosure, "bye")
	select {
	case <-disconnected:
	case <-time.After(wsroutetest.DefaultTimeout):
		t.Fatal("no $disconnect")
	}

	ev := wsroutetest.NewEvents()
	ours := map[string]*wsroute.Request{
		wsroute.EventConnect:    ev.Connect(http.Header{"User-Agent": {"ua/1.0"}}, url.Values{"token": {"abc"}}),
		wsroute.EventMessage:    ev.Message(`{"action":"join"}`),
		wsroute.EventDisconnect: ev.Disconnect(1000, "bye"),
	}
	mu.Lock()
	defer mu.Unlock()
	for typ, want := range real {
		assert.Equal(t, jsonShape(t, want), jsonShape(t, ours[typ]), typ)
		assert.Equal(t, want.RequestContext.RouteKey, ours[typ].RequestContext.RouteKey)
	}
	assert.Equal(t, []string{"CONNECT", "DISCONNECT", "MESSAGE"}, slices.Sorted(func(yield func(string) bool) {
		for k := range real {
			if !yield(k) {
				return
			}
		}
	}))
	assert.Equal(t, 1000, real[wsroute.EventDisconnect].RequestContext.DisconnectStatusCode)
	assert.Equal(t, "bye", real[wsroute.EventDisconnect].RequestContext.DisconnectReason)
}

func TestRecorder(t *testing.T) {
	ctx := context.Background()
	var rec wsroutetest.Recorder // the zero value works
	assert.ErrorIs(t, rec.PostToConnection(ctx, "nobody", []byte("x")), wsroute.ErrGone)
	_, err := rec.GetConnection(ctx, "nobody")
	assert.ErrorIs(t, err, wsroute.ErrGone)
	assert.ErrorIs(t, rec.DeleteConnection(ctx, "nobody"), wsroute.ErrGone)

	rec.Open("a")
	require.NoError(t, rec.PostToConnection(ctx, "a", []byte("1")))
	require.NoError(t, rec.PostToConnection(ctx, "a", []byte("2")))
	assert.Equal(t, []string{"1", "2"}, rec.Posted("a"))
	assert.Equal(t, []string{"1", "2"}, rec.TakePosted("a"))
	assert.Empty(t, rec.Posted("a"))
	assert.ErrorIs(t, rec.PostToConnection(ctx, "a", make([]byte, 128<<10+1)), wsroute.ErrPayloadTooLarge)
	rec.MaxPostSize = 4
	assert.ErrorIs(t, rec.PostToConnection(ctx, "a", []byte("12345")), wsroute.ErrPayloadTooLarge)

	conn, err := rec.GetConnection(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "a", conn.ConnectionID)
	assert.Equal(t, "127.0.0.1", conn.Identity.SourceIP)
	assert.Regexp(t, regexp.MustCompile(`^\{"connectedAt":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`), mustJSON(t, conn))

	require.NoError(t, rec.DeleteConnection(ctx, "a"))
	assert.True(t, rec.Deleted("a"))
	assert.ErrorIs(t, rec.DeleteConnection(ctx, "a"), wsroute.ErrGone)
	assert.ErrorIs(t, rec.PostToConnection(ctx, "a", []byte("x")), wsroute.ErrGone)

	rec.Open("b")
	rec.Close("b")
	assert.False(t, rec.Deleted("b"))
	assert.ErrorIs(t, rec.PostToConnection(ctx, "b", []byte("x")), wsroute.ErrGone)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	rec.Open("c")
	assert.ErrorIs(t, rec.PostToConnection(cctx, "c", []byte("x")), context.Canceled)

	// Concurrent use.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				_ = rec.PostToConnection(ctx, "c", fmt.Appendf(nil, "%d-%d", i, j))
			}
		})
	}
	wg.Wait()
	assert.Len(t, rec.Posted("c"), 400)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// A handler that finds its ConnectionManager in its context posts to the
// Recorder when the test passes Recorder.Context.
func TestRecorderContext(t *testing.T) {
	rec := wsroutetest.NewRecorder()
	rec.Open("bob")
	poke := func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return nil, wsroute.ConnectionsFromContext(ctx).PostToConnection(ctx, "bob", []byte("poke from "+req.RequestContext.ConnectionID))
	}
	ev := wsroutetest.NewEvents().Message(`{"action":"poke"}`)
	_, err := poke(rec.Context(context.Background()), ev)
	require.NoError(t, err)
	assert.Equal(t, []string{"poke from " + ev.RequestContext.ConnectionID}, rec.Posted("bob"))
}
