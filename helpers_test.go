package wsroute_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/wsroutetest"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// serve starts r on a loopback test server and shuts both down at cleanup.
func serve(t testing.TB, r *wsroute.Router) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = r.Shutdown(ctx)
		srv.Close()
	})
	return srv
}

// newRouter returns a router that logs through t (shown with -v or when the
// test fails) unless opts sets a Logger, so that benchmark output stays
// parseable and a passing test stays quiet.
func newRouter(t testing.TB, opts *wsroute.Options) *wsroute.Router {
	t.Helper()
	o := wsroute.Options{}
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = wsroutetest.Logger(t)
	}
	r, err := wsroute.New(&o)
	require.NoError(t, err)
	return r
}

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") }

func dial(t testing.TB, srv *httptest.Server, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, wsURL(srv), opts)
	require.NoError(t, err)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func send(t testing.TB, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(msg)))
}

func read(t testing.TB, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	typ, b, err := c.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, websocket.MessageText, typ)
	return string(b)
}

// readClose reads until the server closes the connection and returns the
// close status it sent.
func readClose(t testing.TB, c *websocket.Conn) websocket.CloseError {
	t.Helper()
	ce, err := closeStatus(c, testTimeout)
	require.NoError(t, err)
	return ce
}

// recorder collects the events a route receives.
type recorder struct {
	mu     sync.Mutex
	events []*wsroute.Request
	ch     chan *wsroute.Request
}

func newRecorder() *recorder { return &recorder{ch: make(chan *wsroute.Request, 4096)} }

func (rec *recorder) ServeEvent(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	rec.mu.Lock()
	rec.events = append(rec.events, req)
	rec.mu.Unlock()
	rec.ch <- req
	return nil, nil
}

// next waits for the next event.
func (rec *recorder) next(t testing.TB) *wsroute.Request {
	t.Helper()
	select {
	case ev := <-rec.ch:
		return ev
	case <-time.After(testTimeout):
		t.Fatal("no event within the timeout")
		return nil
	}
}

// echo answers each message with its body (a two-way route).
func echo(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	return &wsroute.Response{StatusCode: 200, Body: req.Body}, nil
}

// connectionIDOf asks the server for the caller's connection ID through a
// "whoami" route that the test registers.
func whoami(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	return &wsroute.Response{StatusCode: 200, Body: req.RequestContext.ConnectionID}, nil
}

func mustJSON(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m), "not JSON: %s", s)
	return m
}

var _ http.Handler = (*wsroute.Router)(nil)
