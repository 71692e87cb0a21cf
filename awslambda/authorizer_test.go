package awslambda_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/awslambda"
	"github.com/wsroute/wsroute/wsroutetest"
)

// policy returns an authorizer response with one statement per effect and
// resource pair.
func policy(principal string, ctx map[string]any, stmts ...[2]string) events.APIGatewayCustomAuthorizerResponse {
	doc := events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17"}
	for _, s := range stmts {
		doc.Statement = append(doc.Statement, events.IAMPolicyStatement{
			Action: []string{"execute-api:Invoke"}, Effect: s[0], Resource: []string{s[1]},
		})
	}
	return events.APIGatewayCustomAuthorizerResponse{PrincipalID: principal, PolicyDocument: doc, Context: ctx}
}

const connectARN = "arn:aws:execute-api:eu-west-1:111122223333:api1/prod/$connect"

// TestWrapAuthorizer runs a REQUEST authorizer written for Lambda in front of
// a real socket: its policy decides 403 or admission, and its context is on
// every later event, $disconnect included.
func TestWrapAuthorizer(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var got []events.APIGatewayCustomAuthorizerRequestTypeRequest
	authorizer := func(_ context.Context, ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		switch ev.QueryStringParameters["as"] {
		case "alice":
			return policy("alice", map[string]any{"tenant": "t1", "level": 3, "admin": false}, [2]string{"Allow", ev.MethodArn}), nil
		case "wildcard":
			return policy("w", nil, [2]string{"Allow", "arn:aws:execute-api:eu-west-1:*:api1/*/$connec?"}), nil
		case "denied":
			return policy("mallory", nil, [2]string{"Deny", ev.MethodArn}), nil
		case "deny-wins":
			return policy("mallory", nil, [2]string{"Allow", "*"}, [2]string{"Deny", "arn:aws:execute-api:*:*:api1/prod/*"}), nil
		case "other-route":
			return policy("bob", nil, [2]string{"Allow", "arn:aws:execute-api:eu-west-1:111122223333:api1/prod/sendmessage"}), nil
		case "bad-effect":
			return policy("bob", nil, [2]string{"allow", ev.MethodArn}), nil
		case "bad-context":
			return policy("bob", map[string]any{"nested": map[string]any{"a": 1}}, [2]string{"Allow", ev.MethodArn}), nil
		case "broken":
			return events.APIGatewayCustomAuthorizerResponse{}, errors.New("database down")
		}
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("Unauthorized")
	}

	rec := &recorded{events: map[string][]*wsroute.Request{}, ch: make(chan struct{}, 1)}
	r := wsroutetest.NewRouter(t, &wsroute.Options{
		Stage: "prod", APIID: "api1",
		Authorizer: awslambda.WrapAuthorizer(authorizer, &awslambda.AuthorizerOptions{Region: "eu-west-1", AccountID: "111122223333"}),
	})
	r.Handle(wsroute.RouteConnect, rec.handler(nil))
	r.Handle(wsroute.RouteDefault, rec.handler(&wsroute.Response{Body: "ok"}))
	r.Handle(wsroute.RouteDisconnect, rec.handler(nil))
	srv := wsroutetest.NewServer(t, r, nil)

	dial := func(as string) *wsroutetest.DialOptions {
		return &wsroutetest.DialOptions{Query: url.Values{"as": {as}}, Header: http.Header{"X-Api-Key": {"k1"}}}
	}
	for as, status := range map[string]int{
		"denied": 403, "deny-wins": 403, "other-route": 403,
		"nobody": 401, "bad-effect": 500, "bad-context": 500, "broken": 500,
	} {
		resp := wsroutetest.DialRefused(t, srv.URL, dial(as))
		assert.Equal(t, status, resp.StatusCode, as)
	}
	assert.Empty(t, rec.events["$connect"], "$connect never ran for a refused request")

	wsroutetest.Dial(t, srv.URL, dial("wildcard")).Close(1000, "")
	rec.wait(t, "$disconnect", 1)

	c := wsroutetest.Dial(t, srv.URL, dial("alice"))
	c.SendText(ctx, `{"action":"x"}`)
	c.ExpectText(ctx, "ok")
	c.Close(1000, "")
	disconnects := rec.wait(t, "$disconnect", 2)

	want := map[string]any{"principalId": "alice", "tenant": "t1", "level": 3, "admin": false}
	alice := rec.events["$connect"][1].RequestContext.ConnectionID
	for _, req := range []*wsroute.Request{rec.events["$connect"][1], rec.events["$default"][0], disconnects[1]} {
		require.Equal(t, alice, req.RequestContext.ConnectionID)
		a := req.RequestContext.Authorizer
		assert.Contains(t, a, "integrationLatency")
		for k, v := range want {
			assert.Equal(t, v, a[k], "%s on %s", k, req.RequestContext.RouteKey)
		}
	}

	// The authorizer's event, as API Gateway sends it.
	mu.Lock()
	ev := got[len(got)-1]
	mu.Unlock()
	assert.Equal(t, "REQUEST", ev.Type)
	assert.Equal(t, connectARN, ev.MethodArn)
	assert.Equal(t, "alice", ev.QueryStringParameters["as"])
	assert.Equal(t, []string{"alice"}, ev.MultiValueQueryStringParameters["as"])
	assert.Equal(t, "k1", ev.Headers["X-Api-Key"])
	assert.Equal(t, "k1", ev.RequestContext.Identity.APIKey)
	assert.Equal(t, "127.0.0.1", ev.RequestContext.Identity.SourceIP)
	assert.Equal(t, "prod", ev.RequestContext.Stage)
	assert.Equal(t, "api1", ev.RequestContext.APIID)
	assert.Equal(t, "111122223333", ev.RequestContext.AccountID)
	assert.Len(t, ev.RequestContext.RequestID, 16)
}

func TestMethodARN(t *testing.T) {
	assert.Equal(t, connectARN, awslambda.MethodARN("eu-west-1", "111122223333", "api1", "prod", "$connect"))
	ev := awslambda.ToAuthorizerEvent(wsroutetest.NewEvents().Connect(nil, nil), "us-east-1", "123456789012")
	assert.Equal(t, "arn:aws:execute-api:us-east-1:123456789012:local/local/$connect", ev.MethodArn)
}
