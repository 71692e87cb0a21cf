package wsnats_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReadyFollowsTheServer: a router's /ready names the backplane while
// its NATS server is down, and is ready again once it is back.
func TestReadyFollowsTheServer(t *testing.T) {
	ns := startNATS(t, "")
	a := startNode(t, "A", ns.url(), nil)
	health := httptest.NewServer(a.router.HealthHandler(nil))
	defer health.Close()
	ready := func() (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, health.URL+"/ready", nil)
		require.NoError(t, err)
		return do(t, req)
	}
	status, body := ready()
	require.Equal(t, http.StatusOK, status, body)

	ns.stop()
	require.Eventually(t, func() bool {
		status, body = ready()
		return status == http.StatusServiceUnavailable
	}, eventually, 10*time.Millisecond)
	require.JSONEq(t, `{"status":"unavailable","failed":["backplane"]}`, body)

	ns.start()
	require.Eventually(t, func() bool { status, _ = ready(); return status == http.StatusOK }, eventually, 10*time.Millisecond)
}
