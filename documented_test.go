package wsroute_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// Behaviours the documentation states, checked through a real socket.

// PostToConnection sends UTF-8 data as a text frame and anything else as a
// binary frame (ConnectionManager's documentation).
func TestPostFrameType(t *testing.T) {
	r := newRouter(t, nil)
	r.HandleFunc("whoami", whoami)
	c := dial(t, serve(t, r), nil)
	send(t, c, `{"action":"whoami"}`)
	id := read(t, c)
	ctx := context.Background()
	require.NoError(t, r.Connections().PostToConnection(ctx, id, []byte("héllo")))
	require.NoError(t, r.Connections().PostToConnection(ctx, id, []byte{0xff, 0x00, 0x80}))
	rctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	typ, data, err := c.Read(rctx)
	require.NoError(t, err)
	assert.Equal(t, websocket.MessageText, typ)
	assert.Equal(t, "héllo", string(data))
	typ, data, err = c.Read(rctx)
	require.NoError(t, err)
	assert.Equal(t, websocket.MessageBinary, typ)
	assert.Equal(t, []byte{0xff, 0x00, 0x80}, data)
}

// Frames a handler posts to its own connection before it returns reach the
// client before its Response.Body (Handler's documentation).
func TestOwnPostsBeforeResponseBody(t *testing.T) {
	r := newRouter(t, nil)
	r.HandleFunc("burst", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		cm := wsroute.ConnectionsFromContext(ctx)
		for i := range 5 {
			if err := cm.PostToConnection(ctx, req.RequestContext.ConnectionID, fmt.Appendf(nil, "post %d", i)); err != nil {
				return nil, err
			}
		}
		return &wsroute.Response{Body: "body"}, nil
	})
	c := dial(t, serve(t, r), nil)
	for range 20 {
		send(t, c, `{"action":"burst"}`)
		for i := range 5 {
			require.Equal(t, fmt.Sprintf("post %d", i), read(t, c))
		}
		require.Equal(t, "body", read(t, c))
	}
}

// DISCONNECT events carry the headers API Gateway sends on them: Host, and
// empty x-api-key, X-Forwarded-For and x-restapi (Request's documentation).
func TestDisconnectHeaders(t *testing.T) {
	disc := newRecorder()
	r := newRouter(t, &wsroute.Options{DomainName: "api.example.com"})
	r.Handle(wsroute.RouteDisconnect, disc)
	c := dial(t, serve(t, r), nil)
	require.NoError(t, c.Close(websocket.StatusNormalClosure, "bye"))
	ev := disc.next(t)
	assert.Equal(t, map[string]string{"Host": "api.example.com", "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}, ev.Headers)
	assert.Equal(t, []string{"api.example.com"}, ev.MultiValueHeaders["Host"])
	assert.Equal(t, "api.example.com", ev.Header("host"))
	assert.Nil(t, ev.QueryStringParameters)
}

// http.Server's ReadTimeout and WriteTimeout do not cut WebSocket
// connections: net/http clears the deadlines when the connection is
// hijacked at the upgrade, as the examples' comments say.
func TestServerTimeoutsSpareWebSockets(t *testing.T) {
	r := newRouter(t, nil)
	r.HandleFunc("echo", echo)
	srv := httptest.NewUnstartedServer(r)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = r.Shutdown(ctx)
		srv.Close()
	})
	c := dial(t, srv, nil)
	for range 3 {
		time.Sleep(400 * time.Millisecond) // past both timeouts
		send(t, c, `{"action":"echo"}`)
		assert.Equal(t, `{"action":"echo"}`, read(t, c))
	}
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
}
