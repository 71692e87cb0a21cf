package wsroute_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// trace records which middleware saw which route, in order.
type trace struct {
	mu    sync.Mutex
	calls []string
	disc  chan struct{}
}

func (tr *trace) mw(name string) wsroute.Middleware {
	return func(next wsroute.Handler) wsroute.Handler {
		return wsroute.HandlerFunc(func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
			tr.mu.Lock()
			tr.calls = append(tr.calls, name+":"+req.RequestContext.RouteKey)
			tr.mu.Unlock()
			return next.ServeEvent(ctx, req)
		})
	}
}

func (tr *trace) take() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	c := tr.calls
	tr.calls = nil
	return c
}

func TestUseWrapsEveryRoute(t *testing.T) {
	tr := &trace{disc: make(chan struct{})}
	r := newRouter(t, nil)
	// Registered before Use.
	r.HandleFunc(wsroute.RouteConnect, func(context.Context, *wsroute.Request) (*wsroute.Response, error) { return nil, nil })
	r.HandleFunc("echo", echo)
	r.Use(tr.mw("a"), tr.mw("b"))
	r.Use(tr.mw("c"))
	// Registered after Use.
	r.HandleFunc(wsroute.RouteDefault, func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: "default"}, nil
	})
	r.HandleFunc(wsroute.RouteDisconnect, func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		close(tr.disc)
		return nil, nil
	})
	c := dial(t, serve(t, r), nil)
	assert.Equal(t, []string{"a:$connect", "b:$connect", "c:$connect"}, tr.take())

	send(t, c, `{"action":"echo"}`)
	assert.Equal(t, `{"action":"echo"}`, read(t, c))
	assert.Equal(t, []string{"a:echo", "b:echo", "c:echo"}, tr.take())

	send(t, c, `not json`)
	assert.Equal(t, "default", read(t, c))
	assert.Equal(t, []string{"a:$default", "b:$default", "c:$default"}, tr.take())

	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	<-tr.disc
	assert.Equal(t, []string{"a:$disconnect", "b:$disconnect", "c:$disconnect"}, tr.take())
}

// Middleware can refuse a connection, turn a panic into an answer, and change
// the response; a message with no route runs none of it.
func TestMiddlewareCanAnswer(t *testing.T) {
	tr := &trace{}
	r := newRouter(t, nil)
	r.Use(func(next wsroute.Handler) wsroute.Handler { // an auth check on $connect
		return wsroute.HandlerFunc(func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
			if req.RequestContext.EventType == wsroute.EventConnect && req.Header("X-Token") != "ok" {
				return &wsroute.Response{StatusCode: http.StatusForbidden, Body: "no token"}, nil
			}
			return next.ServeEvent(ctx, req)
		})
	})
	r.Use(func(next wsroute.Handler) wsroute.Handler { // recovery
		return wsroute.HandlerFunc(func(ctx context.Context, req *wsroute.Request) (resp *wsroute.Response, err error) {
			defer func() {
				if p := recover(); p != nil {
					resp, err = &wsroute.Response{Body: `{"error":"sorry"}`}, nil
				}
			}()
			return next.ServeEvent(ctx, req)
		})
	})
	r.Use(tr.mw("t"))
	r.HandleFunc("boom", func(context.Context, *wsroute.Request) (*wsroute.Response, error) { panic("boom") })
	r.HandleFunc("fail", func(context.Context, *wsroute.Request) (*wsroute.Response, error) { return nil, errors.New("x") })
	srv := serve(t, r)

	status, body := dialStatus(t, wsURL(srv), nil)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, "no token", body)
	assert.Empty(t, tr.take(), "the outer middleware answered: the inner never ran")

	c := dial(t, srv, &websocket.DialOptions{HTTPHeader: http.Header{"X-Token": {"ok"}}})
	send(t, c, `{"action":"boom"}`)
	assert.Equal(t, `{"error":"sorry"}`, read(t, c))
	send(t, c, `{"action":"fail"}`)
	assert.True(t, strings.HasPrefix(read(t, c), `{"message": "Internal server error"`))
	tr.take()
	send(t, c, `{"action":"nothing"}`)
	assert.True(t, strings.HasPrefix(read(t, c), `{"message": "Forbidden"`))
	assert.Empty(t, tr.take(), "no route: no middleware")
}

func TestUsePanics(t *testing.T) {
	r := newRouter(t, nil)
	r.HandleFunc("x", echo)
	assert.PanicsWithValue(t, "wsroute: Use: nil middleware", func() { r.Use(nil) })
	assert.Panics(t, func() {
		r.Use(func(wsroute.Handler) wsroute.Handler { return nil })
	})
	// A failed Use changed nothing: x still answers, unwrapped.
	c := dial(t, serve(t, r), nil)
	send(t, c, `{"action":"x"}`)
	assert.Equal(t, `{"action":"x"}`, read(t, c))
}
