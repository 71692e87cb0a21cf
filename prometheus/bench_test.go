package prometheus_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/wsroute/wsroute"
	wsprom "github.com/wsroute/wsroute/prometheus"
)

// BenchmarkRoundTrip sends a message over a loopback socket and reads the
// handler's reply, with the Observer unset and set to a Collector, in one
// run: their ratio is what the metrics cost a message end to end.
func BenchmarkRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name string
		obs  func() wsroute.Observer
	}{
		{"unset", func() wsroute.Observer { return nil }},
		{"prometheus", func() wsroute.Observer {
			m := wsprom.New(nil)
			prom.NewRegistry().MustRegister(m)
			return m
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := wsroute.New(&wsroute.Options{Observer: bc.obs()})
			if err != nil {
				b.Fatal(err)
			}
			r.HandleFunc("echo", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
				return &wsroute.Response{Body: req.Body}, nil
			})
			srv := httptest.NewServer(r)
			defer srv.Close()
			defer r.Shutdown(context.Background())
			ctx := context.Background()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			msg := []byte(`{"action":"echo","data":{"room":"room1234","text":"hello, this is a message"}}`)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.Read(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPerMessage is what the Collector adds to one routed message in
// BenchmarkDispatchObserver of the core: the calls dispatch makes.
func BenchmarkPerMessage(b *testing.B) {
	o := wsprom.New(nil)
	ctx, state := o.Upgrade(context.Background(), httptest.NewRequest("GET", "/", nil))
	ev := &wsroute.Request{RequestContext: wsroute.RequestContext{RouteKey: "sendmessage", EventType: wsroute.EventMessage,
		ConnectionID: "L0SM9cOFvHcCIhw=", RequestID: "L0SM9cOFvHcCIhx=", MessageID: "L0SM9cOFvHcCIhy="}}
	b.ReportAllocs()
	for b.Loop() {
		o.Frame(state, wsroute.FrameInfo{ConnectionID: "L0SM9cOFvHcCIhw=", Size: 90})
		c := o.Start(ctx, state, ev)
		o.End(c, state, ev, &wsroute.EventResult{Status: 200, Integrated: true, IntegrationLatency: 1000})
		o.Frame(state, wsroute.FrameInfo{ConnectionID: "L0SM9cOFvHcCIhw=", Outbound: true, Size: 90})
	}
}
