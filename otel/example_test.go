package otel_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/coder/websocket"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wsroute/wsroute"
	wsotel "github.com/wsroute/wsroute/otel"
)

func Example() {
	exp := tracetest.NewInMemoryExporter() // in production: an OTLP exporter
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	obs, err := wsotel.New(&wsotel.Options{TracerProvider: tp, API: "chat", Stage: "prod"})
	if err != nil {
		panic(err)
	}

	r, _ := wsroute.New(&wsroute.Options{APIID: "chat", Stage: "prod", Observer: obs})
	r.HandleFunc("echo", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: req.Body}, nil
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{
		HTTPHeader: http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}})
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"action":"echo"}`))
	_, _, _ = c.Read(ctx)

	for _, s := range exp.GetSpans() {
		fmt.Println(s.Name, s.SpanContext.TraceID())
	}
	// Output:
	// wsroute $connect 4bf92f3577b34da6a3ce929d0e0e4736
	// wsroute echo 4bf92f3577b34da6a3ce929d0e0e4736
}
