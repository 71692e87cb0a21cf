package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/wsroute/wsroute"
)

// This is the server side of docs/management.md: the router's endpoint and
// its management API under one stage path.
func Example_mount() {
	router, err := wsroute.New(nil)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", router) // clients dial ws://host:8080/ws
	// AWS SDKs given the endpoint http://host:8080/ws call
	// POST|GET|DELETE /ws/@connections/{connectionId}.
	mux.Handle("/ws/@connections/", wsroute.NewManagementHandler(router.Connections(), &wsroute.ManagementOptions{
		Credentials:  map[string]string{"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		BearerTokens: []string{"a-long-random-token"},
	}))
	_ = mux // serve it with an http.Server
}

// This is the Go client of docs/management.md.
func Example_client() {
	client := apigatewaymanagementapi.NewFromConfig(aws.Config{
		Region:      "us-east-1", // any region, unless ManagementOptions.Region is set
		Credentials: credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
	}, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:8080/ws") // the stage URL
	})
	ctx := context.TODO()
	connectionID := "L0SM9cOFvHcCIhw="

	_, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(connectionID),
		Data:         []byte(`{"type":"orderShipped","orderId":"o-17"}`),
	})
	var gone *types.GoneException
	switch {
	case errors.As(err, &gone):
		// The client has left: forget its ID.
	case err != nil:
		fmt.Println("post:", err)
	}

	info, err := client.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(connectionID)})
	if err == nil {
		fmt.Println(info.ConnectedAt, *info.Identity.SourceIp)
	}

	_, _ = client.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(connectionID)})
}
