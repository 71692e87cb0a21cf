package wsroute

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestQuotaNewConnectionsPerSecond dials real WebSocket connections against
// API Gateway's 500 new connections per second, on a clock that stands still
// until the test moves it.
func TestQuotaNewConnectionsPerSecond(t *testing.T) {
	r, err := New(&Options{Quotas: &Quotas{}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	r.quotas.bucket.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	srv := httptest.NewServer(r)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
		srv.Close()
	}()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	dialOnce := func() (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, url, nil)
		if err == nil {
			c.CloseNow()
			return http.StatusSwitchingProtocols, ""
		}
		if resp == nil {
			t.Fatalf("dial failed without a response: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}

	for i := range 500 {
		if status, body := dialOnce(); status != http.StatusSwitchingProtocols {
			t.Fatalf("connection %d of the first 500: %d %s", i+1, status, body)
		}
	}
	if status, body := dialOnce(); status != http.StatusTooManyRequests || body != `{"message":"Too Many Requests"}` {
		t.Fatalf("connection 501 in the same second: %d %s, want 429 Too Many Requests", status, body)
	}
	advance(2 * time.Millisecond) // one token: 500 per second
	if status, _ := dialOnce(); status != http.StatusSwitchingProtocols {
		t.Fatalf("after 2 ms: %d, want 101", status)
	}
	if status, _ := dialOnce(); status != http.StatusTooManyRequests {
		t.Fatalf("the next one: %d, want 429", status)
	}
	advance(time.Hour) // the bucket holds no more than 500
	for i := range 500 {
		if status, _ := dialOnce(); status != http.StatusSwitchingProtocols {
			t.Fatalf("connection %d after an hour: %d", i+1, status)
		}
	}
	if status, _ := dialOnce(); status != http.StatusTooManyRequests {
		t.Fatalf("connection 501 after an hour: %d, want 429", status)
	}
}
