package wsroute_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// A Lambda-style handler builds its management endpoint from its event, as
// the AWS samples do, and calls it over HTTP: with MountStage that endpoint
// is this server's management API.
func TestMountStageMakesTheEventsEndpointTheManagementAPI(t *testing.T) {
	r := newRouter(t, &wsroute.Options{Stage: "dev"})
	r.HandleFunc("callback", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		rc := req.RequestContext
		endpoint := "http://" + rc.DomainName + "/" + rc.Stage
		post, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/@connections/"+rc.ConnectionID,
			strings.NewReader(`{"type":"callback","via":"`+endpoint+`"}`))
		if err != nil {
			return nil, err
		}
		post.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(post)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &wsroute.Response{Body: "management answered " + resp.Status}, nil
		}
		return nil, nil
	})
	mux := http.NewServeMux()
	r.MountStage(mux, wsroute.NewManagementHandler(r.Connections(), &wsroute.ManagementOptions{BearerTokens: []string{"tok"}}))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = r.Shutdown(context.Background())
		srv.Close()
	})

	// Clients dial the stage URL; the router is not served elsewhere.
	status, _ := dialStatus(t, wsURL(srv)+"/local", nil)
	assert.Equal(t, http.StatusNotFound, status)
	c := dialURL(t, wsURL(srv)+"/dev")
	send(t, c, `{"action":"callback"}`)
	assert.JSONEq(t, `{"type":"callback","via":"`+srv.URL+`/dev"}`, read(t, c))
}

// dialURL dials url and closes the connection when the test ends.
func dialURL(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func TestMountStageRejectsBadStageNames(t *testing.T) {
	for _, stage := range []string{"a/b", "a b", "{x}", strings.Repeat("s", 129)} {
		r := newRouter(t, &wsroute.Options{Stage: stage})
		assert.Panics(t, func() { r.MountStage(http.NewServeMux(), nil) }, stage)
	}
	r := newRouter(t, nil)
	mux := http.NewServeMux()
	r.MountStage(mux, nil)
	_, pattern := mux.Handler(httptest.NewRequest(http.MethodGet, "/local", nil))
	require.Equal(t, "/local", pattern)
	_, pattern = mux.Handler(httptest.NewRequest(http.MethodGet, "/local/@connections/x", nil))
	require.Equal(t, "", pattern, "no management API was given")
}
