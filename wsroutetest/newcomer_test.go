package wsroutetest_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/wsroutetest"
)

// loggingTB is a *testing.T whose Logf output the test can read.
type loggingTB struct {
	*testing.T
	mu    sync.Mutex
	lines []string
}

func (l *loggingTB) Logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
	l.T.Logf(format, args...)
}

func (l *loggingTB) logged() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// A router from NewRouter logs through t.Logf: a handler's panic shows beside
// the test, with its stack.
func TestNewRouterLogsToTest(t *testing.T) {
	tb := &loggingTB{T: t}
	r := wsroutetest.NewRouter(tb, nil)
	r.HandleFunc("boom", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		panic("boom in handler")
	})
	srv := wsroutetest.NewServer(tb, r, nil)
	c := srv.Dial(tb, nil)
	c.SendAction(context.Background(), "boom", nil)
	c.ExpectInternalServerError(context.Background())
	assert.Contains(t, tb.logged(), "handler panicked")
	assert.Contains(t, tb.logged(), "boom in handler")
	assert.Contains(t, tb.logged(), "newcomer_test.go", "the stack is logged")
}

// Logging after the test has ended is dropped, not a panic of the testing
// package.
func TestLoggerAfterTestEnds(t *testing.T) {
	var lg interface{ Info(string, ...any) }
	t.Run("inner", func(t *testing.T) {
		l := wsroutetest.Logger(t)
		l.Info("during the test")
		lg = l
	})
	assert.NotPanics(t, func() { lg.Info("after the test") })
}

// A client from Server.Dial knows its connection ID: the one $connect saw,
// the one the router reports in error frames and reaches with the manager.
func TestClientConnectionID(t *testing.T) {
	ctx := context.Background()
	r := wsroutetest.NewRouter(t, nil)
	var mu sync.Mutex
	connected := map[string]bool{}
	r.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		if req.QueryStringParameters["deny"] != "" {
			return &wsroute.Response{StatusCode: http.StatusForbidden}, nil
		}
		mu.Lock()
		connected[req.RequestContext.ConnectionID] = true
		mu.Unlock()
		return nil, nil
	})
	srv := wsroutetest.NewServer(t, r, nil)
	a, b := srv.Dial(t, nil), srv.Dial(t, nil)
	idA, idB := a.ConnectionID(), b.ConnectionID()
	assert.NotEqual(t, idA, idB)
	mu.Lock()
	assert.True(t, connected[idA] && connected[idB])
	mu.Unlock()
	a.SendAction(ctx, "nowhere", nil)
	assert.Equal(t, idA, a.ExpectForbidden(ctx).ConnectionID)
	require.NoError(t, r.Connections().PostToConnection(ctx, idB, []byte("to b")))
	b.ExpectText(ctx, "to b")
	srv.DialRefused(t, &wsroutetest.DialOptions{Query: map[string][]string{"deny": {"1"}}})
}

// SendAction, Events.Action and Events.Message follow the router's route
// selection expression, whatever it is.
func TestSendActionFollowsExpression(t *testing.T) {
	ctx := context.Background()
	for _, expr := range []string{
		"$request.body.type",
		"${request.body.service}/${request.body.action}",
		"$request.body.meta.op",
	} {
		t.Run(expr, func(t *testing.T) {
			r := wsroutetest.NewRouter(t, &wsroute.Options{RouteSelectionExpression: expr})
			r.HandleFunc("chat/join", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
				return &wsroute.Response{Body: "routed " + req.RequestContext.RouteKey + " " + req.Body}, nil
			})
			srv := wsroutetest.NewServer(t, r, nil)
			c := srv.Dial(t, nil)
			c.SendAction(ctx, "chat/join", map[string]any{"room": "r1"})
			f := c.Next(ctx).String()
			assert.True(t, strings.HasPrefix(f, "routed chat/join {"), f)
			assert.Contains(t, f, `"room":"r1"`)

			ev := wsroutetest.NewEventsFor(r)
			req := ev.Action("chat/join", map[string]any{"room": "r1"})
			assert.Equal(t, "chat/join", req.RequestContext.RouteKey)
			assert.Equal(t, "chat/join", ev.Message(req.Body).RequestContext.RouteKey)
		})
	}
	// A client dialled by URL sends with the expression it is given.
	r := wsroutetest.NewRouter(t, &wsroute.Options{RouteSelectionExpression: "$request.body.type"})
	r.HandleFunc("ping", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: "pong"}, nil
	})
	srv := wsroutetest.NewServer(t, r, nil)
	c := wsroutetest.Dial(t, srv.URL, &wsroutetest.DialOptions{RouteSelection: r.RouteSelectionExpression()})
	c.SendAction(ctx, "ping", nil)
	c.ExpectText(ctx, "pong")
}

// With a Handler and no Path, NewServer finds the router at "/ws", or says
// to set Path.
func TestServerPathInMux(t *testing.T) {
	r := wsroutetest.NewRouter(t, nil)
	r.HandleFunc("hi", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: "hi"}, nil
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "a page") })
	mux.Handle("/ws", r)
	srv := wsroutetest.NewServer(t, r, &wsroutetest.ServerOptions{Handler: mux})
	assert.True(t, strings.HasSuffix(srv.URL, "/ws"), srv.URL)
	c := srv.Dial(t, nil)
	c.SendAction(context.Background(), "hi", nil)
	c.ExpectText(context.Background(), "hi")

	r2 := wsroutetest.NewRouter(t, nil)
	mux2 := http.NewServeMux()
	mux2.Handle("/api/socket", r2)
	ft := &fatalTB{T: t}
	func() {
		defer func() { _ = recover() }()
		wsroutetest.NewServer(ft, r2, &wsroutetest.ServerOptions{Handler: mux2})
	}()
	assert.Contains(t, ft.fatal, "set ServerOptions.Path")
	assert.Contains(t, ft.fatal, "/ws answers 404")
}

// fatalTB records a Fatalf instead of ending the test, and stops the caller
// with a panic.
type fatalTB struct {
	*testing.T
	fatal string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	panic(f.fatal)
}

// A Recorder closes with a code as a router does, so a handler that closes
// through ConnectionCloser can be unit-tested.
func TestRecorderCloseConnection(t *testing.T) {
	ctx := context.Background()
	kick := func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		closer, ok := wsroute.ConnectionsFromContext(ctx).(wsroute.ConnectionCloser)
		if !ok {
			return nil, fmt.Errorf("the manager cannot close with a code")
		}
		return nil, closer.CloseConnection(ctx, req.RequestContext.ConnectionID, 4003, "banned")
	}
	rec := wsroutetest.NewRecorder()
	ev := wsroutetest.NewEvents()
	rec.Open(ev.ConnectionID)
	_, err := kick(rec.Context(ctx), ev.Action("kick", nil))
	require.NoError(t, err)
	code, reason, ok := rec.CloseStatus(ev.ConnectionID)
	assert.True(t, ok)
	assert.Equal(t, 4003, code)
	assert.Equal(t, "banned", reason)
	assert.ErrorIs(t, rec.PostToConnection(ctx, ev.ConnectionID, []byte("x")), wsroute.ErrGone)
	_, err = kick(rec.Context(ctx), ev.Action("kick", nil))
	assert.ErrorIs(t, err, wsroute.ErrGone)

	rec.Open("other")
	assert.ErrorIs(t, rec.CloseConnection(ctx, "other", 1006, ""), wsroute.ErrInvalidClose)
	require.NoError(t, rec.DeleteConnection(ctx, "other"))
	code, reason, ok = rec.CloseStatus("other")
	assert.Equal(t, []any{1000, "Connection Closed Normally", true}, []any{code, reason, ok})
}
