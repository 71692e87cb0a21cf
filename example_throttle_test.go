package wsroute_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/coder/websocket"

	"github.com/wsroute/wsroute"
)

// Each connection may send a burst of 2 messages, then one every 10
// seconds; the third message at once is refused with API Gateway's Too Many
// Requests frame, and the connection stays open.
func ExampleThrottle() {
	r, err := wsroute.New(&wsroute.Options{
		Throttle: &wsroute.Throttle{
			Connection: &wsroute.ThrottleSettings{RateLimit: 0.1, BurstLimit: 2},
			Router:     &wsroute.ThrottleSettings{RateLimit: 1000, BurstLimit: 2000},
		},
	})
	if err != nil {
		panic(err)
	}
	r.HandleFunc("ping", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: "pong"}, nil
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	for range 3 {
		c.Write(ctx, websocket.MessageText, []byte(`{"action":"ping"}`))
		_, reply, _ := c.Read(ctx)
		var frame struct{ Message string }
		if json.Unmarshal(reply, &frame) == nil {
			fmt.Println(frame.Message)
		} else {
			fmt.Println(string(reply))
		}
	}
	// Output:
	// pong
	// pong
	// Too Many Requests
}

// Behind a load balancer at 10.0.0.0/8, identity.sourceIp is the client
// that the balancer names in X-Forwarded-For.
func Example_trustedProxies() {
	r, err := wsroute.New(&wsroute.Options{TrustedProxies: []string{"10.0.0.0/8", "127.0.0.1"}})
	if err != nil {
		panic(err)
	}
	r.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		fmt.Println(req.RequestContext.Identity.SourceIP, req.Headers["X-Forwarded-Proto"])
		return nil, nil
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{
		HTTPHeader: http.Header{"X-Forwarded-For": {"203.0.113.7, 10.0.3.4"}, "X-Forwarded-Proto": {"https"}},
	})
	if err != nil {
		panic(err)
	}
	c.CloseNow()
	// Output:
	// 203.0.113.7 https
}

// A load balancer's health checks: /ready turns 503 once Shutdown begins,
// so that the balancer stops sending new connections.
func ExampleRouter_HealthHandler() {
	r, err := wsroute.New(nil)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", r)
	mux.Handle("/healthz/", r.HealthHandler(&wsroute.HealthOptions{
		Checks: map[string]wsroute.Readier{
			"broker": wsroute.ReadyFunc(func(ctx context.Context) error { return nil }),
		},
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func() {
		resp, err := http.Get(srv.URL + "/healthz/ready")
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Print(resp.StatusCode, " ", string(b))
	}
	get()
	r.Shutdown(context.Background())
	get()
	// Output:
	// 200 {"status":"ok"}
	// 503 {"status":"unavailable","failed":["router"]}
}
