package wsroute_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

func TestConnectionCountAndList(t *testing.T) {
	disc := newRecorder()
	r := newRouter(t, &wsroute.Options{
		Authorizer: func(ctx context.Context, req *wsroute.Request) (*wsroute.AuthorizerResult, error) {
			return &wsroute.AuthorizerResult{PrincipalID: req.QueryStringParameters["user"], Context: map[string]any{"plan": "pro"}}, nil
		},
	})
	r.HandleFunc("whoami", whoami)
	r.Handle(wsroute.RouteDisconnect, disc)
	srv := serve(t, r)
	assert.Equal(t, 0, r.ConnectionCount())

	before := time.Now().Add(-time.Second)
	ids := map[string]string{} // connection ID → user
	var conns []*websocket.Conn
	for _, user := range []string{"ann", "bob", "cy"} {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		c, _, err := websocket.Dial(ctx, wsURL(srv)+"?user="+user, nil)
		cancel()
		require.NoError(t, err)
		t.Cleanup(func() { c.CloseNow() })
		send(t, c, `{"action":"whoami"}`)
		ids[read(t, c)] = user
		conns = append(conns, c)
	}
	assert.Equal(t, 3, r.ConnectionCount())
	for _, c := range conns {
		c.CloseRead(context.Background()) // from now on, only answer the close handshake
	}

	seen := map[string]string{}
	for info := range r.OpenConnections() {
		assert.Equal(t, "127.0.0.1", info.Identity.SourceIP)
		assert.True(t, info.ConnectedAt.After(before), "connectedAt %v", info.ConnectedAt)
		assert.False(t, info.LastActiveAt.Before(info.ConnectedAt))
		assert.Equal(t, "pro", info.Authorizer["plan"])
		seen[info.ConnectionID] = info.Authorizer["principalId"].(string)
	}
	assert.Equal(t, ids, seen)

	n := 0
	for range r.OpenConnections() {
		n++
		break
	}
	assert.Equal(t, 1, n, "the iteration stops when the loop breaks")

	// The loop body may act on the connections it visits.
	for info := range r.OpenConnections() {
		if ids[info.ConnectionID] == "bob" {
			require.NoError(t, r.Connections().DeleteConnection(context.Background(), info.ConnectionID))
		}
	}
	ev := disc.next(t)
	assert.Equal(t, "bob", ids[ev.RequestContext.ConnectionID])
	assert.Equal(t, 2, r.ConnectionCount())
	var left []string
	for info := range r.OpenConnections() {
		left = append(left, ids[info.ConnectionID])
	}
	slices.Sort(left)
	assert.Equal(t, []string{"ann", "cy"}, left)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, r.Shutdown(ctx))
	assert.Equal(t, 0, r.ConnectionCount())
	for range r.OpenConnections() {
		t.Error("a connection is listed after Shutdown")
	}
}
