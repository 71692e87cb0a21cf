package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute/internal/leakcheck"
)

func TestQuickstartBroadcastsAndServesManagementAPI(t *testing.T) {
	router, handler := newServer("s3cret")
	srv := httptest.NewServer(handler)
	defer srv.Close()
	defer router.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	a, _, err := websocket.Dial(ctx, url, nil)
	require.NoError(t, err)
	defer a.CloseNow()
	b, _, err := websocket.Dial(ctx, url, nil)
	require.NoError(t, err)
	defer b.CloseNow()

	require.NoError(t, a.Write(ctx, websocket.MessageText, []byte(`{"action":"sendmessage","data":"hello all"}`)))
	for _, c := range []*websocket.Conn{a, b} {
		_, got, err := c.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, "hello all", string(got))
	}

	// The management API answers, and refuses a request without the token.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ws/@connections/AAAAAAAAAAAAAAA%3D", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusGone, resp.StatusCode)
}

func TestMain(m *testing.M) { leakcheck.Main(m) }

// run returns when ctx is done, after a graceful shutdown: the connected
// client is closed with 1001 and the listener is closed.
func TestRunWaitsForShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, "") }()

	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, "ws://"+ln.Addr().String()+"/ws", nil)
	require.NoError(t, err)
	defer c.CloseNow()
	closed := make(chan error, 1)
	go func() { _, _, err := c.Read(dctx); closed <- err }() // answers the close handshake

	stop()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-dctx.Done():
		t.Fatal("run did not return")
	}
	select {
	case err := <-closed:
		assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "closed by the router: %v", err)
	case <-dctx.Done():
		t.Fatal("the WebSocket was not closed")
	}
	_, err = net.Dial("tcp", ln.Addr().String())
	assert.Error(t, err, "the listener is closed")
}
