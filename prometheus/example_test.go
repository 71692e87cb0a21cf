package prometheus_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/coder/websocket"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wsroute/wsroute"
	wsprom "github.com/wsroute/wsroute/prometheus"
)

func Example() {
	metrics := wsprom.New(&wsprom.Options{API: "chat", Stage: "prod"})
	reg := prom.NewRegistry()
	reg.MustRegister(metrics) // serve reg with promhttp.HandlerFor(reg, promhttp.HandlerOpts{})

	r, _ := wsroute.New(&wsroute.Options{APIID: "chat", Stage: "prod", Observer: metrics})
	r.HandleFunc("echo", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: req.Body}, nil
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
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"action":"echo"}`))
	_, reply, _ := c.Read(ctx)
	fmt.Println(string(reply))

	n, _ := testutil.GatherAndCount(reg, "wsroute_messages_received_total", "wsroute_open_connections")
	fmt.Println("series:", n)
	fmt.Println("open:", testutil.ToFloat64(metrics.OpenConnections()))
	// Output:
	// {"action":"echo"}
	// series: 2
	// open: 1
}
