package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/coder/websocket"

	"github.com/wsroute/wsroute"
)

// mount is the server side of docs/management.md: the router's endpoint and
// its management API under one stage path.
func mount(router *wsroute.Router) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/ws", router) // clients dial ws://host:8080/ws
	// AWS SDKs given the endpoint http://host:8080/ws call
	// POST|GET|DELETE /ws/@connections/{connectionId}.
	mux.Handle("/ws/@connections/", wsroute.NewManagementHandler(router.Connections(), &wsroute.ManagementOptions{
		Credentials:  map[string]string{"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		BearerTokens: []string{"a-long-random-token"},
	}))
	return mux
}

// The router and the management API mounted under one stage path: a request
// without credentials is refused as API Gateway refuses it.
func Example_mount() {
	router, err := wsroute.New(nil)
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(mount(router))
	defer srv.Close()
	defer router.Shutdown(context.Background())

	for _, auth := range []string{"", "Bearer a-long-random-token"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ws/@connections/L0SM9cOFvHcCIhw%3D", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	// Output:
	// 403 ForbiddenException
	// 410 GoneException
}

// The Go client of docs/management.md, against a router with one client.
func Example_client() {
	endpoint, connectionID, ws, stop := exampleStage()
	defer stop()

	client := apigatewaymanagementapi.NewFromConfig(aws.Config{
		Region:      "us-east-1", // any region, unless ManagementOptions.Region is set
		Credentials: credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
	}, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint) // the stage URL, e.g. http://127.0.0.1:8080/ws
	})
	ctx := context.TODO()

	_, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(connectionID),
		Data:         []byte(`{"type":"orderShipped","orderId":"o-17"}`),
	})
	fmt.Println("post:", err)
	_, frame, _ := ws.Read(ctx)
	fmt.Println("the client got:", string(frame))

	info, err := client.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(connectionID)})
	if err != nil {
		panic(err)
	}
	fmt.Println("source IP:", *info.Identity.SourceIp)

	_, err = client.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(connectionID)})
	fmt.Println("delete:", err)

	_, err = client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(connectionID), Data: []byte("anyone there?"),
	})
	var gone *types.GoneException
	if errors.As(err, &gone) {
		fmt.Println("after delete: GoneException") // the client has left: forget its ID
	}
	// Output:
	// post: <nil>
	// the client got: {"type":"orderShipped","orderId":"o-17"}
	// source IP: 127.0.0.1
	// delete: <nil>
	// after delete: GoneException
}

// exampleStage serves a router and its management API, connects one
// WebSocket client, and returns the stage URL and the client's ID.
func exampleStage() (endpoint, connectionID string, ws *websocket.Conn, stop func()) {
	router, err := wsroute.New(nil)
	if err != nil {
		panic(err)
	}
	ids := make(chan string, 1)
	router.HandleFunc(wsroute.RouteConnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		ids <- req.RequestContext.ConnectionID
		return nil, nil
	})
	srv := httptest.NewServer(mount(router))
	ws, _, err = websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		panic(err)
	}
	return srv.URL + "/ws", <-ids, ws, func() {
		ws.CloseNow()
		router.Shutdown(context.Background())
		srv.Close()
	}
}
