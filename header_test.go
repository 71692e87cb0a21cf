package wsroute_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// Request.Header finds a header whatever its case, where http.Header.Get
// misses API Gateway's spelling "Sec-WebSocket-Protocol".
func TestRequestHeaderLookup(t *testing.T) {
	got := make(chan *wsroute.Request, 1)
	r := newRouter(t, nil)
	r.HandleFunc(wsroute.RouteConnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		got <- req
		// Pick the client's last offer.
		offers := strings.Split(req.Header("sec-websocket-protocol"), ",")
		return &wsroute.Response{StatusCode: 200, Headers: map[string]string{
			"Sec-WebSocket-Protocol": strings.TrimSpace(offers[len(offers)-1]),
		}}, nil
	})
	srv := serve(t, r)
	c := dial(t, srv, &websocket.DialOptions{
		Subprotocols: []string{"chat.v1", "chat.v2"},
		HTTPHeader:   http.Header{"X-Trace": {"a", "b"}},
	})
	assert.Equal(t, "chat.v2", c.Subprotocol())
	req := <-got

	assert.Empty(t, http.Header(req.MultiValueHeaders).Get("Sec-WebSocket-Protocol"), "why Request.Header exists")
	for _, name := range []string{"Sec-WebSocket-Protocol", "sec-websocket-protocol", "SEC-WEBSOCKET-PROTOCOL", "Sec-Websocket-Protocol"} {
		assert.Equal(t, "chat.v1,chat.v2", req.Header(name), name)
	}
	assert.Equal(t, "b", req.Header("x-trace"), "Header reads headers, which keeps the last value as API Gateway does")
	assert.Equal(t, []string{"a", "b"}, req.HeaderValues("X-TRACE"))
	assert.Equal(t, "13", req.Header("sec-websocket-version"))
	assert.NotEmpty(t, req.Header("host"))
	assert.Empty(t, req.Header("X-Absent"))
	assert.Nil(t, req.HeaderValues("X-Absent"))

	// Only one of the two maps set, as in a hand-made event.
	only := &wsroute.Request{Headers: map[string]string{"x-api-key": "k"}}
	assert.Equal(t, "k", only.Header("X-Api-Key"))
	assert.Equal(t, []string{"k"}, only.HeaderValues("X-API-KEY"))
	multi := &wsroute.Request{MultiValueHeaders: map[string][]string{"Cookie": {"a=1", "b=2"}}}
	assert.Equal(t, "b=2", multi.Header("cookie"))
	require.Empty(t, (&wsroute.Request{}).Header("anything"))
}
