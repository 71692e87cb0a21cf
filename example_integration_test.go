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

// A route served by an HTTP backend that speaks the Lambda proxy event and
// result, as a function behind API Gateway does.
func ExampleHTTPIntegration() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var event wsroute.Request // the Lambda proxy event
		_ = json.NewDecoder(r.Body).Decode(&event)
		result, _ := json.Marshal(wsroute.Response{StatusCode: 200, Body: "you sent " + event.Body})
		_, _ = w.Write(result) // the Lambda proxy result
	}))
	defer backend.Close()

	router, _ := wsroute.New(nil)
	router.Handle("greet", wsroute.HTTPIntegration(backend.URL, nil))
	srv := httptest.NewServer(router)
	defer srv.Close()
	defer router.Shutdown(context.Background())

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"action":"greet"}`))
	_, reply, _ := c.Read(ctx)
	fmt.Println(string(reply))
	// Output: you sent {"action":"greet"}
}

// The router mounted as an API Gateway stage: clients dial /dev, and the
// endpoint functions build from their event, http://{domainName}/{stage}, is
// the management API.
func ExampleRouter_MountStage() {
	router, _ := wsroute.New(&wsroute.Options{Stage: "dev"}) // DomainName defaults to the Host clients dial
	router.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		rc := req.RequestContext
		fmt.Println("functions call back to http://" + strings.Split(rc.DomainName, ":")[0] + ":…/" + rc.Stage)
		return nil, nil
	})
	mux := http.NewServeMux()
	// ws://host:8080/dev for clients; http://host:8080/dev/@connections/{id} for callbacks.
	router.MountStage(mux, wsroute.NewManagementHandler(router.Connections(), &wsroute.ManagementOptions{
		Credentials:  map[string]string{"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		BearerTokens: []string{"a-long-random-token"},
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer router.Shutdown(context.Background())

	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/dev", nil)
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/dev/@connections/L0SM9cOFvHcCIhw%3D", nil)
	req.Header.Set("Authorization", "Bearer a-long-random-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Println("management API:", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	// Output:
	// functions call back to http://127.0.0.1:…/dev
	// management API: 410 GoneException
}

// API Gateway's quotas, so that a local run fails where production would.
func ExampleQuotas() {
	router, _ := wsroute.New(&wsroute.Options{Quotas: &wsroute.Quotas{}}) // API Gateway's values
	router.HandleFunc(wsroute.RouteDefault, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: fmt.Sprint(len(req.Body))}, nil
	})
	srv := httptest.NewServer(router)
	defer srv.Close()
	defer router.Shutdown(context.Background())

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	_ = c.Write(ctx, websocket.MessageText, []byte(strings.Repeat("x", 32<<10))) // one 32 KB frame
	_, reply, _ := c.Read(ctx)
	fmt.Println("32 KB frame:", string(reply), "bytes routed")
	_ = c.Write(ctx, websocket.MessageText, []byte(strings.Repeat("x", 32<<10+1)))
	_, _, err = c.Read(ctx)
	fmt.Println("one byte more:", websocket.CloseStatus(err))
	// Output:
	// 32 KB frame: 32768 bytes routed
	// one byte more: StatusMessageTooBig
}
