package wsroute_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

func getHealth(t *testing.T, method, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestHealthHandler checks /live and /ready over HTTP before and after
// Shutdown, with a readiness check that fails, and one that hangs.
func TestHealthHandler(t *testing.T) {
	r := newRouter(t, nil)
	var brokerDown atomic.Bool
	broker := wsroute.ReadyFunc(func(context.Context) error {
		if brokerDown.Load() {
			return errors.New("dial tcp 127.0.0.1:4222: connection refused")
		}
		return nil
	})
	var hang atomic.Bool
	slow := wsroute.ReadyFunc(func(ctx context.Context) error {
		if !hang.Load() {
			return nil
		}
		<-ctx.Done() // honours ctx, as a Readier must
		return ctx.Err()
	})
	mux := http.NewServeMux()
	mux.Handle("/ws", r)
	mux.Handle("/healthz/", r.HealthHandler(&wsroute.HealthOptions{
		Checks:  map[string]wsroute.Readier{"broker": broker, "slow": slow},
		Timeout: 50 * time.Millisecond,
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	check := func(path string, status int, body string) {
		t.Helper()
		gotStatus, gotBody := getHealth(t, http.MethodGet, srv.URL+path)
		require.Equal(t, status, gotStatus, path)
		require.JSONEq(t, body, gotBody, path)
	}
	check("/healthz/live", 200, `{"status":"ok"}`)
	check("/healthz/ready", 200, `{"status":"ok"}`)
	brokerDown.Store(true)
	check("/healthz/ready", 503, `{"status":"unavailable","failed":["broker"]}`)
	hang.Store(true)
	check("/healthz/ready", 503, `{"status":"unavailable","failed":["broker","slow"]}`)
	brokerDown.Store(false)
	hang.Store(false)
	check("/healthz/ready", 200, `{"status":"ok"}`)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, r.Shutdown(ctx))
	// A router shutting down is not ready; it is still alive.
	check("/healthz/ready", 503, `{"status":"unavailable","failed":["router"]}`)
	check("/healthz/live", 200, `{"status":"ok"}`)

	status, body := getHealth(t, http.MethodHead, srv.URL+"/healthz/ready")
	require.Equal(t, 503, status)
	require.Empty(t, body)
	status, _ = getHealth(t, http.MethodPost, srv.URL+"/healthz/ready")
	require.Equal(t, http.StatusMethodNotAllowed, status)
	status, _ = getHealth(t, http.MethodGet, srv.URL+"/healthz/other")
	require.Equal(t, http.StatusNotFound, status)
}
