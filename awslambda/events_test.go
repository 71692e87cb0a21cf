package awslambda_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/awslambda"
	"github.com/wsroute/wsroute/wsroutetest"
)

// viaJSON is what a Lambda function receives: req encoded as the proxy
// event, decoded by aws-lambda-go's type.
func viaJSON(t testing.TB, req *wsroute.Request) events.APIGatewayWebsocketProxyRequest {
	b, err := json.Marshal(req)
	require.NoError(t, err)
	var ev events.APIGatewayWebsocketProxyRequest
	require.NoError(t, json.Unmarshal(b, &ev))
	return ev
}

// assertSameEvent compares a direct conversion with the JSON one, field by
// field. JSON decodes the authorizer's numbers as float64, so the
// authorizers are compared by their JSON.
func assertSameEvent(t *testing.T, want, got events.APIGatewayWebsocketProxyRequest) {
	t.Helper()
	wa, _ := json.Marshal(want.RequestContext.Authorizer)
	ga, _ := json.Marshal(got.RequestContext.Authorizer)
	assert.JSONEq(t, string(wa), string(ga), "authorizer")
	want.RequestContext.Authorizer, got.RequestContext.Authorizer = nil, nil
	assert.Equal(t, want, got)
}

// recorded keeps the events a router's handlers received.
type recorded struct {
	mu     sync.Mutex
	events map[string][]*wsroute.Request // by route key
	ch     chan struct{}
}

func (r *recorded) handler(resp *wsroute.Response) wsroute.HandlerFunc {
	return func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		r.mu.Lock()
		r.events[req.RequestContext.RouteKey] = append(r.events[req.RequestContext.RouteKey], req)
		r.mu.Unlock()
		select {
		case r.ch <- struct{}{}:
		default:
		}
		return resp, nil
	}
}

func (r *recorded) wait(t *testing.T, route string, n int) []*wsroute.Request {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		evs := r.events[route]
		r.mu.Unlock()
		if len(evs) >= n {
			return evs
		}
		select {
		case <-r.ch:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %d %s events", n, route)
		}
	}
}

// TestToEventMatchesJSON takes real events of a real connection (with an
// authorizer, headers, a query, a message and a close) and checks that the
// direct conversion gives, field by field, what a function decodes from the
// event's JSON.
func TestToEventMatchesJSON(t *testing.T) {
	rec := &recorded{events: map[string][]*wsroute.Request{}, ch: make(chan struct{}, 1)}
	r := wsroutetest.NewRouter(t, &wsroute.Options{
		Stage: "prod", APIID: "abc123", StageVariables: map[string]string{"v": "1"},
		Authorizer: func(context.Context, *wsroute.Request) (*wsroute.AuthorizerResult, error) {
			return &wsroute.AuthorizerResult{PrincipalID: "user-1", Context: map[string]any{"tenant": "t1", "n": 3, "ok": true}}, nil
		},
	})
	r.Handle(wsroute.RouteConnect, rec.handler(nil))
	r.Handle(wsroute.RouteDefault, rec.handler(nil))
	r.Handle(wsroute.RouteDisconnect, rec.handler(nil))
	srv := wsroutetest.NewServer(t, r, nil)

	c := wsroutetest.Dial(t, srv.URL, &wsroutetest.DialOptions{
		Header: http.Header{"User-Agent": {"ua/1.0"}, "X-Multi": {"a", "b"}},
		Query:  url.Values{"token": {"abc"}, "two": {"1", "2"}},
	})
	c.SendText(context.Background(), `{"action":"sendmessage","data":"hi"}`)
	rec.wait(t, "$default", 1)
	c.Close(4000, "done")
	rec.wait(t, "$disconnect", 1)

	for _, route := range []string{"$connect", "$default", "$disconnect"} {
		t.Run(route, func(t *testing.T) {
			req := rec.events[route][0]
			got := awslambda.ToEvent(req)
			assertSameEvent(t, viaJSON(t, req), got)
			assert.Equal(t, route, got.RequestContext.RouteKey)
			assert.Equal(t, "user-1", got.RequestContext.Authorizer.(map[string]any)["principalId"])
			assert.Equal(t, "t1", got.RequestContext.Authorizer.(map[string]any)["tenant"])
			assert.Equal(t, map[string]string{"v": "1"}, got.StageVariables)
		})
	}
	connect := awslambda.ToEvent(rec.events["$connect"][0])
	assert.Equal(t, "abc", connect.QueryStringParameters["token"])
	assert.Equal(t, []string{"1", "2"}, connect.MultiValueQueryStringParameters["two"])
	assert.Equal(t, []string{"a", "b"}, connect.MultiValueHeaders["X-Multi"])
	assert.Equal(t, "ua/1.0", connect.RequestContext.Identity.UserAgent)
	msg := awslambda.ToEvent(rec.events["$default"][0])
	assert.Equal(t, `{"action":"sendmessage","data":"hi"}`, msg.Body)
	assert.Len(t, msg.RequestContext.MessageID, 16)
	disc := awslambda.ToEvent(rec.events["$disconnect"][0])
	assert.Equal(t, int64(4000), disc.RequestContext.DisconnectStatusCode)
	assert.Equal(t, "done", *disc.RequestContext.DisconnectReason)
}

func TestToEventWithoutAuthorizer(t *testing.T) {
	evs := wsroutetest.NewEvents()
	for _, req := range []*wsroute.Request{
		evs.Connect(http.Header{"A": {"1"}}, nil),
		evs.Message("not json"),
		evs.Disconnect(1005, ""),
	} {
		got := awslambda.ToEvent(req)
		assertSameEvent(t, viaJSON(t, req), got)
		assert.Nil(t, got.RequestContext.Authorizer)
	}
	// A DISCONNECT with an empty reason still has disconnectReason.
	b, _ := json.Marshal(awslambda.ToEvent(evs.Disconnect(1005, "")))
	assert.Contains(t, string(b), `"disconnectReason":""`)
}

func TestFromResponseMatchesJSON(t *testing.T) {
	for _, resp := range []events.APIGatewayProxyResponse{
		{StatusCode: 200, Body: "hi"},
		{StatusCode: 401, Headers: map[string]string{"Sec-WebSocket-Protocol": "chat"},
			MultiValueHeaders: map[string][]string{"X-A": {"1", "2"}}, Body: "aGk=", IsBase64Encoded: true},
		{},
	} {
		b, err := json.Marshal(resp)
		require.NoError(t, err)
		var want wsroute.Response
		require.NoError(t, json.Unmarshal(b, &want))
		assert.Equal(t, &want, awslambda.FromResponse(resp))
	}
}

// TestWrapHandler serves every route with aws-lambda-go handlers through a
// real socket.
func TestWrapHandler(t *testing.T) {
	ctx := context.Background()
	r := wsroutetest.NewRouter(t, nil)
	r.Handle(wsroute.RouteConnect, awslambda.WrapHandler(func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		if ev.QueryStringParameters["token"] != "secret" {
			return events.APIGatewayProxyResponse{StatusCode: 401, Body: "no token"}, nil
		}
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}))
	r.Handle(wsroute.RouteDefault, awslambda.WrapHandler(func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		if ev.Body == "fail" {
			return events.APIGatewayProxyResponse{}, errors.New("failed")
		}
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "echo " + ev.Body + " from " + ev.RequestContext.ConnectionID}, nil
	}))
	srv := wsroutetest.NewServer(t, r, nil)

	resp := wsroutetest.DialRefused(t, srv.URL, nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "no token", string(body))

	c := wsroutetest.Dial(t, srv.URL, &wsroutetest.DialOptions{Query: url.Values{"token": {"secret"}}})
	c.SendText(ctx, "fail")
	f := c.ExpectInternalServerError(ctx)
	c.SendText(ctx, "hello")
	c.ExpectText(ctx, "echo hello from "+f.ConnectionID)
}
