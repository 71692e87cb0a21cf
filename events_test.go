package wsroute_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// The key sets of API Gateway's sample Lambda proxy events for WebSocket APIs
// (see shared/AWS-NOTES.md): our events must have exactly these fields.
var (
	awsConnectTop    = []string{"headers", "multiValueHeaders", "queryStringParameters", "multiValueQueryStringParameters", "requestContext", "isBase64Encoded"}
	awsMessageTop    = []string{"requestContext", "body", "isBase64Encoded"}
	awsDisconnectTop = []string{"headers", "multiValueHeaders", "requestContext", "isBase64Encoded"}
	awsContextCommon = []string{"routeKey", "eventType", "extendedRequestId", "requestTime", "messageDirection", "stage",
		"connectedAt", "requestTimeEpoch", "identity", "requestId", "domainName", "connectionId", "apiId"}
)

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(ss ...[]string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s...)
	}
	sort.Strings(out)
	return out
}

// asJSON marshals an event the way a user logging or forwarding it would.
func asJSON(t *testing.T, ev *wsroute.Request) map[string]any {
	t.Helper()
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	return mustJSON(t, string(b))
}

var requestTimePattern = regexp.MustCompile(`^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$`)

// checkContext asserts what every event's requestContext has in common.
func checkContext(t *testing.T, rc map[string]any, routeKey, eventType, connID string, before, after time.Time) {
	t.Helper()
	assert.Equal(t, routeKey, rc["routeKey"])
	assert.Equal(t, eventType, rc["eventType"])
	assert.Equal(t, "IN", rc["messageDirection"])
	assert.Equal(t, "prod", rc["stage"])
	assert.Equal(t, "abc123defg", rc["apiId"])
	assert.Equal(t, connID, rc["connectionId"])
	assert.Equal(t, rc["requestId"], rc["extendedRequestId"])
	assert.Regexp(t, idPattern, rc["requestId"])
	assert.Regexp(t, requestTimePattern, rc["requestTime"])
	epoch := int64(rc["requestTimeEpoch"].(float64))
	assert.GreaterOrEqual(t, epoch, before.UnixMilli())
	assert.LessOrEqual(t, epoch, after.UnixMilli())
	connectedAt := int64(rc["connectedAt"].(float64))
	assert.LessOrEqual(t, connectedAt, epoch)
	assert.Equal(t, map[string]any{"sourceIp": "127.0.0.1", "userAgent": "events-test/1.0"}, rc["identity"])
	reqTime, err := time.Parse("02/Jan/2006:15:04:05 -0700", rc["requestTime"].(string))
	require.NoError(t, err)
	assert.Equal(t, epoch/1000, reqTime.Unix(), "requestTime and requestTimeEpoch name the same second")
}

func TestEventsMatchAPIGatewaySamples(t *testing.T) {
	r := newRouter(t, &wsroute.Options{Stage: "prod", APIID: "abc123defg"})
	conn, msg, disc := newRecorder(), newRecorder(), newRecorder()
	r.Handle(wsroute.RouteConnect, conn)
	r.Handle("sendmessage", msg)
	r.Handle(wsroute.RouteDisconnect, disc)
	srv := serve(t, r)

	start := time.Now()
	c, _, err := websocket.Dial(context.Background(), wsURL(srv)+"/?token=abc&tag=a&tag=b",
		&websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {"events-test/1.0"}, "X-Multi": {"1", "2"}}})
	require.NoError(t, err)
	defer c.CloseNow()

	// CONNECT
	ev := conn.next(t)
	id := ev.RequestContext.ConnectionID
	m := asJSON(t, ev)
	assert.Equal(t, sorted(awsConnectTop), keys(m))
	rc := m["requestContext"].(map[string]any)
	assert.Equal(t, sorted(awsContextCommon), keys(rc))
	checkContext(t, rc, "$connect", "CONNECT", id, start, time.Now())
	assert.Equal(t, false, m["isBase64Encoded"])
	headers := m["headers"].(map[string]any)
	assert.Equal(t, "events-test/1.0", headers["User-Agent"])
	assert.Equal(t, "13", headers["Sec-WebSocket-Version"], "API Gateway's spelling of the WebSocket headers")
	assert.Contains(t, headers, "Sec-WebSocket-Key")
	assert.Equal(t, srv.Listener.Addr().String(), headers["Host"])
	assert.NotContains(t, headers, "Connection", "hop-by-hop headers are left out")
	assert.NotContains(t, headers, "Upgrade")
	assert.Equal(t, []any{"1", "2"}, m["multiValueHeaders"].(map[string]any)["X-Multi"])
	assert.Equal(t, map[string]any{"token": "abc", "tag": "b"}, m["queryStringParameters"])
	assert.Equal(t, map[string]any{"token": []any{"abc"}, "tag": []any{"a", "b"}}, m["multiValueQueryStringParameters"])
	assert.Equal(t, srv.Listener.Addr().String(), rc["domainName"], "domainName defaults to the Host")

	// MESSAGE
	before := time.Now()
	send(t, c, `{"action":"sendmessage","data":"hi"}`)
	ev = msg.next(t)
	m = asJSON(t, ev)
	assert.Equal(t, sorted(awsMessageTop), keys(m))
	rc = m["requestContext"].(map[string]any)
	assert.Equal(t, sorted(awsContextCommon, []string{"messageId"}), keys(rc))
	checkContext(t, rc, "sendmessage", "MESSAGE", id, before, time.Now())
	assert.Regexp(t, idPattern, rc["messageId"])
	assert.NotEqual(t, rc["messageId"], rc["requestId"])
	assert.Equal(t, `{"action":"sendmessage","data":"hi"}`, m["body"])

	// DISCONNECT
	before = time.Now()
	require.NoError(t, c.Close(4001, "done here"))
	ev = disc.next(t)
	m = asJSON(t, ev)
	assert.Equal(t, sorted(awsDisconnectTop), keys(m))
	rc = m["requestContext"].(map[string]any)
	assert.Equal(t, sorted(awsContextCommon, []string{"disconnectStatusCode", "disconnectReason"}), keys(rc))
	checkContext(t, rc, "$disconnect", "DISCONNECT", id, before, time.Now())
	assert.Equal(t, float64(4001), rc["disconnectStatusCode"])
	assert.Equal(t, "done here", rc["disconnectReason"])
	assert.Equal(t, []string{"Host", "X-Forwarded-For", "x-api-key", "x-restapi"}, keys(m["headers"].(map[string]any)))
}

func TestConnectWithoutQueryHasNoQueryParameters(t *testing.T) {
	r := newRouter(t, nil)
	conn := newRecorder()
	r.Handle(wsroute.RouteConnect, conn)
	c := dial(t, serve(t, r), nil)
	defer c.CloseNow()
	m := asJSON(t, conn.next(t))
	assert.NotContains(t, m, "queryStringParameters")
	assert.NotContains(t, m, "multiValueQueryStringParameters")
}

func TestDisconnectReasonIsAlwaysPresent(t *testing.T) {
	// A client closing with 1000 and no reason: disconnectReason is "", not absent.
	r := newRouter(t, nil)
	disc := newRecorder()
	r.Handle(wsroute.RouteDisconnect, disc)
	c := dial(t, serve(t, r), nil)
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	rc := asJSON(t, disc.next(t))["requestContext"].(map[string]any)
	assert.Equal(t, float64(1000), rc["disconnectStatusCode"])
	assert.Contains(t, rc, "disconnectReason")
	assert.Equal(t, "", rc["disconnectReason"])
}

func TestConnectionJSONIsGetConnectionBody(t *testing.T) {
	c := wsroute.Connection{
		ConnectionID: "L0SM9cOFvHcCIhw=",
		ConnectedAt:  time.Date(2020, 4, 30, 20, 10, 33, 236_000_000, time.UTC),
		LastActiveAt: time.Date(2020, 4, 30, 22, 10, 42, 997_400_000, time.FixedZone("CEST", 2*3600)),
		Identity:     wsroute.Identity{SourceIP: "192.0.2.1", UserAgent: "ua/1.0"},
	}
	b, err := json.Marshal(c)
	require.NoError(t, err)
	assert.JSONEq(t, `{"connectedAt":"2020-04-30T20:10:33.236Z","identity":{"sourceIp":"192.0.2.1","userAgent":"ua/1.0"},"lastActiveAt":"2020-04-30T20:10:42.997Z"}`, string(b))
	var back wsroute.Connection
	require.NoError(t, json.Unmarshal(b, &back))
	assert.True(t, back.ConnectedAt.Equal(c.ConnectedAt))
	assert.Equal(t, c.Identity, back.Identity)
}
