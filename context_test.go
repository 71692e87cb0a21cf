package wsroute_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// A handler called outside a router, in a test that forgot to give it a
// ConnectionManager, fails with a message that says what to do rather than a
// bare nil-pointer panic.
func TestConnectionsFromContextOutsideRouter(t *testing.T) {
	handler := func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return nil, wsroute.ConnectionsFromContext(ctx).PostToConnection(ctx, req.RequestContext.ConnectionID, []byte("hi"))
	}
	msg := func() (msg string) {
		defer func() { msg = fmt.Sprint(recover()) }()
		_, _ = handler(context.Background(), &wsroute.Request{})
		return ""
	}()
	assert.Contains(t, msg, "outside a router")
	assert.Contains(t, msg, "wsroutetest.Recorder")
	assert.Contains(t, msg, "ContextWithConnections")

	for _, call := range []func(wsroute.ConnectionManager){
		func(cm wsroute.ConnectionManager) { _, _ = cm.GetConnection(context.Background(), "x") },
		func(cm wsroute.ConnectionManager) { _ = cm.DeleteConnection(context.Background(), "x") },
	} {
		assert.PanicsWithValue(t, msg, func() { call(wsroute.ConnectionsFromContext(context.Background())) })
	}

	_, ok := wsroute.LookupConnections(context.Background())
	assert.False(t, ok)
	r := newRouter(t, nil)
	ctx := wsroute.ContextWithConnections(context.Background(), r.Connections())
	cm, ok := wsroute.LookupConnections(ctx)
	require.True(t, ok)
	assert.Equal(t, r.Connections(), cm)
	assert.Equal(t, r.Connections(), wsroute.ConnectionsFromContext(ctx))
}

// Inside a router, every handler's context carries the router's manager.
func TestConnectionsInHandlerContext(t *testing.T) {
	r := newRouter(t, nil)
	r.HandleFunc("check", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		cm, ok := wsroute.LookupConnections(ctx)
		return &wsroute.Response{Body: fmt.Sprint(ok, cm == r.Connections())}, nil
	})
	c := dial(t, serve(t, r), nil)
	send(t, c, `{"action":"check"}`)
	assert.Equal(t, "true true", read(t, c))
}
