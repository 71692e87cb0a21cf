package wsroute_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// dialStatus dials and returns the HTTP status and body of a refused handshake.
func dialStatus(t *testing.T, url string, opts *websocket.DialOptions) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err == nil {
		c.CloseNow()
		return http.StatusSwitchingProtocols, ""
	}
	require.NotNil(t, resp, "dial failed without a response: %v", err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func TestPlainHTTPGets426(t *testing.T) {
	srv := serve(t, newRouter(t, nil))
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusUpgradeRequired, resp.StatusCode)
	assert.Equal(t, "websocket", resp.Header.Get("Upgrade"))
}

func TestConnectRoute(t *testing.T) {
	tests := []struct {
		name       string
		handler    wsroute.HandlerFunc
		wantStatus int
		wantBody   string
	}{
		{"absent route accepts", nil, 101, ""},
		{"nil response accepts", func(context.Context, *wsroute.Request) (*wsroute.Response, error) { return nil, nil }, 101, ""},
		{"2xx accepts", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
			return &wsroute.Response{StatusCode: 204}, nil
		}, 101, ""},
		{"non-2xx refuses with that status", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
			return &wsroute.Response{StatusCode: 401, Body: "who are you?"}, nil
		}, 401, "who are you?"},
		{"3xx refuses", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
			return &wsroute.Response{StatusCode: 304}, nil
		}, 304, ""},
		{"zero status accepts", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
			return &wsroute.Response{Body: "ignored"}, nil
		}, 101, ""},
		{"invalid status is 500", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
			return &wsroute.Response{StatusCode: 101}, nil
		}, 500, `{"message":"Internal server error"}`},
		{"error is 500", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
			return nil, errors.New("database down")
		}, 500, `{"message":"Internal server error"}`},
		{"panic is 500", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
			panic("boom")
		}, 500, `{"message":"Internal server error"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRouter(t, nil)
			var disconnects atomic.Int32
			if tt.handler != nil {
				r.Handle(wsroute.RouteConnect, tt.handler)
			}
			r.HandleFunc(wsroute.RouteDisconnect, func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
				disconnects.Add(1)
				return nil, nil
			})
			srv := serve(t, r)
			status, body := dialStatus(t, wsURL(srv), nil)
			assert.Equal(t, tt.wantStatus, status)
			assert.Equal(t, tt.wantBody, body)
			if status != 101 {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				require.NoError(t, r.Shutdown(ctx))
				assert.Zero(t, disconnects.Load(), "$disconnect runs only after a $connect that succeeded")
			}
		})
	}
}

func TestConnectHandlerReachesConnectionsButNotItself(t *testing.T) {
	r := newRouter(t, nil)
	errs := make(chan error, 1)
	r.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		cm := wsroute.ConnectionsFromContext(ctx)
		require.NotNil(t, cm)
		errs <- cm.PostToConnection(ctx, req.RequestContext.ConnectionID, []byte("too early"))
		return nil, nil
	})
	dial(t, serve(t, r), nil)
	assert.ErrorIs(t, <-errs, wsroute.ErrGone, "a connection is unreachable until $connect returns")
}

func TestSubprotocolIsWhatConnectChooses(t *testing.T) {
	r := newRouter(t, nil)
	r.HandleFunc(wsroute.RouteConnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		if req.QueryStringParameters["pick"] == "" {
			return nil, nil
		}
		return &wsroute.Response{StatusCode: 200, Headers: map[string]string{"sec-websocket-protocol": req.QueryStringParameters["pick"]}}, nil
	})
	srv := serve(t, r)
	opts := &websocket.DialOptions{Subprotocols: []string{"chat.v1", "chat.v2"}}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(srv)+"?pick=chat.v2", opts)
	require.NoError(t, err)
	assert.Equal(t, "chat.v2", c.Subprotocol())
	c.CloseNow()

	c, _, err = websocket.Dial(ctx, wsURL(srv), opts)
	require.NoError(t, err)
	assert.Equal(t, "", c.Subprotocol(), "no automatic echo of the client's first choice")
	c.CloseNow()
}

func TestAuthorizer(t *testing.T) {
	var calls atomic.Int32
	authorizer := func(_ context.Context, req *wsroute.Request) (*wsroute.AuthorizerResult, error) {
		calls.Add(1)
		switch req.Headers["Authorization"] {
		case "good":
			return &wsroute.AuthorizerResult{PrincipalID: "user-1", Context: map[string]any{"tenant": "t1", "admin": true}}, nil
		case "deny":
			return nil, wsroute.ErrAccessDenied
		case "unknown":
			return nil, wsroute.ErrUnauthorized
		default:
			return nil, errors.New("identity provider unreachable")
		}
	}
	r := newRouter(t, &wsroute.Options{
		Authorizer:      authorizer,
		IdentitySources: []string{"route.request.header.Authorization", "route.request.querystring.room"},
	})
	msgs, disc := newRecorder(), newRecorder()
	r.Handle(wsroute.RouteDefault, msgs)
	r.Handle(wsroute.RouteDisconnect, disc)
	srv := serve(t, r)
	withAuth := func(v string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {v}}}
	}

	tests := []struct {
		name      string
		query     string
		opts      *websocket.DialOptions
		status    int
		body      string
		wantCalls int32
	}{
		{"missing header source", "?room=r1", nil, 401, `{"message":"Unauthorized"}`, 0},
		{"empty query source", "?room=", withAuth("good"), 401, `{"message":"Unauthorized"}`, 0},
		{"unauthorized", "?room=r1", withAuth("unknown"), 401, `{"message":"Unauthorized"}`, 1},
		{"deny", "?room=r1", withAuth("deny"), 403, `{"message":"Forbidden"}`, 1},
		{"other error", "?room=r1", withAuth("broken"), 500, `{"message":"Internal server error"}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			status, body := dialStatus(t, wsURL(srv)+tt.query, tt.opts)
			assert.Equal(t, tt.status, status)
			assert.Equal(t, tt.body, body)
			assert.Equal(t, tt.wantCalls, calls.Load())
		})
	}

	t.Run("allowed: the result is on every later event", func(t *testing.T) {
		calls.Store(0)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c, _, err := websocket.Dial(ctx, wsURL(srv)+"?room=r1", withAuth("good"))
		require.NoError(t, err)
		send(t, c, `hello`)
		for _, ev := range []*wsroute.Request{msgs.next(t), func() *wsroute.Request {
			require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
			return disc.next(t)
		}()} {
			a := asJSON(t, ev)["requestContext"].(map[string]any)["authorizer"].(map[string]any)
			assert.Equal(t, "user-1", a["principalId"])
			assert.Equal(t, "t1", a["tenant"])
			assert.Equal(t, true, a["admin"])
			assert.Contains(t, a, "integrationLatency")
		}
		assert.Equal(t, int32(1), calls.Load(), "the authorizer runs on connect only")
	})
}

func TestAPIKeyRequired(t *testing.T) {
	srv := serve(t, newRouter(t, &wsroute.Options{APIKeys: []string{"k-123"}}))
	key := func(v string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"X-Api-Key": {v}}}
	}
	status, body := dialStatus(t, wsURL(srv), nil)
	assert.Equal(t, 403, status)
	assert.Equal(t, `{"message":"Forbidden"}`, body)
	status, _ = dialStatus(t, wsURL(srv), key("wrong"))
	assert.Equal(t, 403, status)
	status, _ = dialStatus(t, wsURL(srv), key("k-123"))
	assert.Equal(t, 101, status)
}

func TestOriginCheck(t *testing.T) {
	var connects atomic.Int32
	count := func(context.Context, *wsroute.Request) (*wsroute.Response, error) { connects.Add(1); return nil, nil }
	origin := func(o string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {o}}}
	}

	r := newRouter(t, nil)
	r.HandleFunc(wsroute.RouteConnect, count)
	srv := serve(t, r)
	status, _ := dialStatus(t, wsURL(srv), origin("https://evil.example"))
	assert.Equal(t, 403, status, "cross-origin browser requests are refused by default")
	assert.Zero(t, connects.Load(), "$connect does not run for a refused origin")
	status, _ = dialStatus(t, wsURL(srv), origin("http://"+srv.Listener.Addr().String()))
	assert.Equal(t, 101, status, "same origin is allowed")

	r2 := newRouter(t, &wsroute.Options{OriginPatterns: []string{"*.example.com"}})
	srv2 := serve(t, r2)
	status, _ = dialStatus(t, wsURL(srv2), origin("https://app.example.com"))
	assert.Equal(t, 101, status)
}

func TestMessageCannotSelectReservedRoutes(t *testing.T) {
	r := newRouter(t, nil)
	var connects, disconnects atomic.Int32
	r.HandleFunc(wsroute.RouteConnect, func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		connects.Add(1)
		return nil, nil
	})
	r.HandleFunc(wsroute.RouteDisconnect, func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		disconnects.Add(1)
		return nil, nil
	})
	c := dial(t, serve(t, r), nil)
	for _, action := range []string{"$connect", "$disconnect", "$default"} {
		send(t, c, `{"action":"`+action+`"}`)
		assert.Contains(t, read(t, c), `{"message": "Forbidden"`, action)
	}
	assert.Equal(t, int32(1), connects.Load())
	assert.Zero(t, disconnects.Load())
}

func TestHandleRejectsBadRegistrations(t *testing.T) {
	r := newRouter(t, nil)
	ok := func(context.Context, *wsroute.Request) (*wsroute.Response, error) { return nil, nil }
	r.HandleFunc("join", ok)
	assert.PanicsWithValue(t, `wsroute: route key "$join" is reserved: custom route keys may not start with "$"`, func() { r.HandleFunc("$join", ok) })
	assert.PanicsWithValue(t, `wsroute: route "join" registered twice`, func() { r.HandleFunc("join", ok) })
	assert.Panics(t, func() { r.HandleFunc("", ok) })
	assert.Panics(t, func() { r.Handle("x", nil) })
}

func TestNewRejectsBadOptions(t *testing.T) {
	_, err := wsroute.New(&wsroute.Options{IdentitySources: []string{"route.request.header.Auth"}})
	assert.ErrorContains(t, err, "Options.IdentitySources needs an Options.Authorizer")
	auth := func(context.Context, *wsroute.Request) (*wsroute.AuthorizerResult, error) { return nil, nil }
	_, err = wsroute.New(&wsroute.Options{Authorizer: auth, IdentitySources: []string{"method.request.header.Auth"}})
	assert.ErrorContains(t, err, `identity source "method.request.header.Auth"`)
	_, err = wsroute.New(&wsroute.Options{MaxMessageSize: -1})
	assert.Error(t, err)
}
