package awslambda_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/awslambda"
	"github.com/wsroute/wsroute/wsroutetest"
)

// A router whose routes are served by Lambda functions: on AWS, or, as here,
// by the Runtime Interface Emulator on a local port (see the rie package).
func ExampleInvoker() {
	client := lambda.New(lambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://127.0.0.1:9000"),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}, nil
		}),
	})
	// The emulator runs one invocation at a time.
	inv := awslambda.New(client, &awslambda.Options{MaxConcurrency: 1})

	r, err := wsroute.New(&wsroute.Options{Stage: "dev"})
	if err != nil {
		panic(err)
	}
	r.Handle(wsroute.RouteConnect, inv.Handler("chat-connect"))
	r.Handle("sendmessage", inv.Handler("arn:aws:lambda:us-east-1:123456789012:function:chat-send"))
	mux := http.NewServeMux()
	r.MountStage(mux, nil) // clients dial ws://127.0.0.1:8080/dev
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}

func ExampleWrapHandler() {
	h := awslambda.WrapHandler(func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: ev.RequestContext.EventType + ": " + ev.Body}, nil
	})
	// Serve a route with it: router.Handle("$default", h). Here, one event:
	resp, err := h.ServeEvent(context.Background(), wsroutetest.NewEvents().Message(`{"action":"hi"}`))
	fmt.Println(resp.Body, err)
	// Output: MESSAGE: {"action":"hi"} <nil>
}

func ExampleWrapAuthorizer() {
	authorize := awslambda.WrapAuthorizer(func(_ context.Context, ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
		effect := "Deny"
		if ev.QueryStringParameters["token"] == "let-me-in" {
			effect = "Allow"
		}
		return events.APIGatewayCustomAuthorizerResponse{
			PrincipalID: "user-1",
			PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
				Version: "2012-10-17",
				Statement: []events.IAMPolicyStatement{{
					Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{ev.MethodArn},
				}},
			},
			Context: map[string]any{"plan": "pro"},
		}, nil
	}, nil)
	// Use it as the router's authorizer: wsroute.Options{Authorizer: authorize}.
	evs := wsroutetest.NewEvents()
	res, err := authorize(context.Background(), evs.Connect(nil, map[string][]string{"token": {"let-me-in"}}))
	fmt.Println(res.PrincipalID, res.Context["plan"], err)
	_, err = authorize(context.Background(), evs.Connect(nil, map[string][]string{"token": {"wrong"}}))
	fmt.Println(errors.Is(err, wsroute.ErrAccessDenied))
	// Output:
	// user-1 pro <nil>
	// true
}
