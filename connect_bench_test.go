package wsroute

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkConnectEvent measures the CONNECT event of one upgrade request
// and the DISCONNECT event of its connection, without a network: the
// connection's state, the two events' maps, IDs and the trace header.
// "minimal" is the bench program's client (the handshake's headers only);
// "browser" adds the headers a browser sends.
func BenchmarkConnectEvent(b *testing.B) {
	for _, bc := range []struct {
		name    string
		headers map[string]string
	}{
		{"minimal", nil},
		{"browser", map[string]string{
			"Origin":                   "https://example.com",
			"User-Agent":               "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			"Accept-Encoding":          "gzip, deflate, br, zstd",
			"Accept-Language":          "en-US,en;q=0.9",
			"Cache-Control":            "no-cache",
			"Pragma":                   "no-cache",
			"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
			"Cookie":                   "session=0123456789abcdef",
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := New(nil)
			if err != nil {
				b.Fatal(err)
			}
			r.HandleFunc(RouteDisconnect, func(_ context.Context, req *Request) (*Response, error) { return nil, nil })
			req := httptest.NewRequest("GET", "/ws?token=t0k3n", nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			req.Header.Set("Sec-WebSocket-Version", "13")
			for k, v := range bc.headers {
				req.Header.Set(k, v)
			}
			b.ReportAllocs()
			for b.Loop() {
				now := time.Now()
				c := r.newConn(req, now)
				ev := c.connectEvent(req, now)
				if ev.Headers["Host"] == "" {
					b.Fatal("no Host header")
				}
				c.disconnect(1000, reasonNormal)
			}
		})
	}
}
