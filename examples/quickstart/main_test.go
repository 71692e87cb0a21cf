package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
