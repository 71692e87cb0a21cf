package awslambda_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/awslambda"
	"github.com/wsroute/wsroute/wsroutetest"
)

// BenchmarkToEvent measures the cost per event of handing a wsroute event to
// an aws-lambda-go handler: the direct field copy that WrapHandler does,
// against the JSON round trip (encode, decode) it replaces.
func BenchmarkToEvent(b *testing.B) {
	evs := wsroutetest.NewEvents()
	connect := evs.Connect(http.Header{"User-Agent": {"ua/1.0"}, "Authorization": {"Bearer x"}, "X-Forwarded-For": {"203.0.113.7"}},
		url.Values{"token": {"abc"}})
	message := evs.Message(`{"action":"sendmessage","data":"hello, world"}`)
	message.RequestContext.Authorizer = map[string]any{"principalId": "user-1", "tenant": "t1", "integrationLatency": int64(3)}
	for _, bc := range []struct {
		name string
		req  *wsroute.Request
	}{{"connect", connect}, {"message", message}} {
		b.Run(bc.name+"/direct", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ev := awslambda.ToEvent(bc.req)
				_ = awslambda.FromResponse(events.APIGatewayProxyResponse{StatusCode: 200, Body: ev.Body})
			}
		})
		b.Run(bc.name+"/json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := json.Marshal(bc.req)
				if err != nil {
					b.Fatal(err)
				}
				var ev events.APIGatewayWebsocketProxyRequest
				if err := json.Unmarshal(p, &ev); err != nil {
					b.Fatal(err)
				}
				rp, _ := json.Marshal(events.APIGatewayProxyResponse{StatusCode: 200, Body: ev.Body})
				var resp wsroute.Response
				if err := json.Unmarshal(rp, &resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
