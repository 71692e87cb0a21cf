package wsroute_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// TestHandshakeIsCheckedBeforeConnect sends upgrade requests by hand. Those
// the transport would refuse are refused before the authorizer and $connect
// run, so that no $disconnect follows; a refused version names the one
// supported.
func TestHandshakeIsCheckedBeforeConnect(t *testing.T) {
	var authorized, connected, disconnected atomic.Int32
	r := newRouter(t, &wsroute.Options{
		Authorizer: func(context.Context, *wsroute.Request) (*wsroute.AuthorizerResult, error) {
			authorized.Add(1)
			return &wsroute.AuthorizerResult{PrincipalID: "p"}, nil
		},
	})
	r.HandleFunc(wsroute.RouteConnect, func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		connected.Add(1)
		return nil, nil
	})
	r.HandleFunc(wsroute.RouteDisconnect, func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		disconnected.Add(1)
		return nil, nil
	})
	srv := serve(t, r)
	addr := srv.Listener.Addr().String()
	request := func(key, version string) string {
		return "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			key + version + "\r\n"
	}
	for _, tc := range []struct {
		name, key, version string
		status             int
		versionHeader      string
	}{
		{"24 characters that are not base64", "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!!!\r\n", "Sec-WebSocket-Version: 13\r\n", 400, ""},
		{"base64 of 18 bytes", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA\r\n", "Sec-WebSocket-Version: 13\r\n", 400, ""},
		{"base64 of 15 bytes", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n", "Sec-WebSocket-Version: 13\r\n", 400, ""},
		{"two keys", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n", "Sec-WebSocket-Version: 13\r\n", 400, ""},
		{"no key", "", "Sec-WebSocket-Version: 13\r\n", 400, ""},
		{"version 8", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n", "Sec-WebSocket-Version: 8\r\n", 400, "13"},
		{"no version", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n", "", 400, "13"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, err := rawHTTP(addr, request(tc.key, tc.version), testTimeout)
			require.NoError(t, err)
			assert.Equal(t, tc.status, resp.StatusCode, body)
			assert.Equal(t, tc.versionHeader, resp.Header.Get("Sec-WebSocket-Version"))
		})
	}
	assert.Zero(t, authorized.Load(), "the authorizer ran for a handshake that cannot succeed")
	assert.Zero(t, connected.Load(), "$connect ran for a handshake that cannot succeed")

	// A valid key of the same shape is accepted: the check is not too strict.
	resp, _, err := rawHTTP(addr, request("Sec-WebSocket-Key:  AAAAAAAAAAAAAAAAAAAAAA== \r\n", "Sec-WebSocket-Version: 13\r\n"), testTimeout)
	require.NoError(t, err)
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	assert.Equal(t, int32(1), connected.Load())
	waitUntil(t, testTimeout, func() bool { return disconnected.Load() == 1 }, func() string {
		return "no $disconnect after the accepted connection was dropped"
	})
	time.Sleep(20 * time.Millisecond)
	assert.Equal(t, int32(1), disconnected.Load(), "a $disconnect for a refused handshake")
}
