package otel_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/wsroute/wsroute"
	wsotel "github.com/wsroute/wsroute/otel"
)

// benchObserver returns an Observer that samples every span and exports it
// synchronously to an exporter that discards it, and keeps metrics in a
// manual reader.
func benchObserver(b *testing.B) wsroute.Observer {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(discard{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	o, err := wsotel.New(&wsotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	return o
}

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkRoundTrip sends a message over a loopback socket and reads the
// handler's reply, with the Observer unset and set to an otel Observer
// (every span sampled), in one run.
func BenchmarkRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name string
		obs  func(*testing.B) wsroute.Observer
	}{
		{"unset", func(*testing.B) wsroute.Observer { return nil }},
		{"otel", benchObserver},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := wsroute.New(&wsroute.Options{Observer: bc.obs(b)})
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

// BenchmarkPerMessage is what the otel Observer adds to one routed message
// in BenchmarkDispatchObserver of the core: the calls dispatch makes.
func BenchmarkPerMessage(b *testing.B) { perMessage(b, benchObserver(b)) }

func perMessage(b *testing.B, o wsroute.Observer) {
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
