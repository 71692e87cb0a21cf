package wsroute_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/coder/websocket"

	"github.com/wsroute/wsroute"
)

// NONE: without an authorizer, IAM or API keys, anyone who can reach the
// endpoint connects; $connect alone decides.
func ExampleOptions_none() {
	r, _ := wsroute.New(nil)
	r.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		if req.QueryStringParameters["room"] == "" {
			return &wsroute.Response{StatusCode: 400, Body: "room required"}, nil
		}
		return nil, nil // accept
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())

	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	_, resp, _ := websocket.Dial(ctx, url, nil)
	fmt.Println(resp.StatusCode)
	c, resp, _ := websocket.Dial(ctx, url+"?room=lobby", nil)
	defer c.CloseNow()
	fmt.Println(resp.StatusCode)
	// Output:
	// 400
	// 101
}

// API keys with a usage plan: the key is checked on connect, the plan meters
// the upgrade and every message, and identity.apiKeyId tells handlers whose
// key it is.
func ExampleUsagePlans() {
	plans := &wsroute.UsagePlans{}
	plans.PutPlan(wsroute.UsagePlan{
		ID:       "partners",
		Throttle: &wsroute.ThrottleSettings{RateLimit: 100, BurstLimit: 200},
		Quota:    &wsroute.QuotaSettings{Limit: 3, Period: wsroute.QuotaMonth},
	})
	plans.AddKey(wsroute.APIKey{ID: "acme", Value: "acme-0123456789abcdefghij", PlanID: "partners"})

	r, _ := wsroute.New(&wsroute.Options{UsagePlans: plans})
	r.HandleFunc("whoami", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: "key " + req.RequestContext.Identity.APIKeyID}, nil
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer r.Shutdown(context.Background())

	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	key := &websocket.DialOptions{HTTPHeader: http.Header{"X-Api-Key": {"acme-0123456789abcdefghij"}}}
	c, _, _ := websocket.Dial(ctx, url, key) // request 1 of 3
	defer c.CloseNow()
	for range 3 { // requests 2 and 3, then one over the quota
		c.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`))
		_, got, _ := c.Read(ctx)
		fmt.Println(strings.Split(string(got), `", "connectionId`)[0])
	}
	_, resp, _ := websocket.Dial(ctx, url, key)
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	used, _ := plans.Usage("acme")
	fmt.Println("used", used.Used, "remaining", used.Remaining)
	// Output:
	// key acme
	// key acme
	// {"message": "Limit Exceeded
	// 429 {"message":"Limit Exceeded"}
	// used 3 remaining 0
}

// An IAM policy as API Gateway evaluates it for execute-api:Invoke on a
// route's ARN: an explicit Deny wins over any Allow.
func ExamplePolicy_Evaluate() {
	p, err := wsroute.ParsePolicy([]byte(`{"Version": "2012-10-17", "Statement": [
		{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:abcdef1234/prod/*"},
		{"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:abcdef1234/prod/secret"}]}`))
	if err != nil {
		panic(err)
	}
	for _, route := range []string{"$connect", "secret"} {
		arn := "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/" + route
		fmt.Println(route, p.Evaluate("execute-api:Invoke", arn))
	}
	fmt.Println("dev", p.Evaluate("execute-api:Invoke", "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/dev/$connect"))
	// Output:
	// $connect allowed
	// secret explicit deny
	// dev implicit deny
}

// MatchARN matches each colon-separated part of an ARN on its own; in the
// resource part, * also crosses "/".
func ExampleMatchARN() {
	arn := "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/$connect"
	fmt.Println(wsroute.MatchARN("arn:aws:execute-api:eu-*:*:abcdef1234/*", arn))
	fmt.Println(wsroute.MatchARN("arn:aws:execute-api:*:abcdef1234/prod/$connect", arn))
	// Output:
	// true
	// false
}
