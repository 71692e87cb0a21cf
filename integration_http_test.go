package wsroute_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// backend is a real HTTP server playing a Lambda function behind an HTTP
// integration: it records every event POSTed to it and answers with answer.
type backend struct {
	*httptest.Server
	mu      sync.Mutex
	answer  func(w http.ResponseWriter, r *http.Request, ev map[string]any)
	raw     [][]byte
	headers []http.Header
	events  chan map[string]any
}

func newBackend(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, ev map[string]any)) *backend {
	t.Helper()
	b := &backend{answer: answer, events: make(chan map[string]any, 64)}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "not JSON", http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.raw = append(b.raw, body)
		b.headers = append(b.headers, r.Header.Clone())
		b.mu.Unlock()
		b.answer(w, r, ev)
		b.events <- ev
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case ev := <-b.events:
		return ev
	case <-time.After(testTimeout):
		t.Fatal("the backend received no event within the timeout")
		return nil
	}
}

func routeKeyOf(ev map[string]any) string {
	rc, _ := ev["requestContext"].(map[string]any)
	k, _ := rc["routeKey"].(string)
	return k
}

func writeResult(w http.ResponseWriter, v string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, v)
}

// The sample events of AWS-NOTES.md (API Gateway's Lambda proxy events for
// WebSocket APIs), with "…" placeholders replaced by values of the same type.
const (
	awsConnectEvent = `{"headers": {"Host": "abc123defg.execute-api.eu-west-1.amazonaws.com", "Sec-WebSocket-Key": "k",
             "Sec-WebSocket-Version": "13", "User-Agent": "ua/1.0"},
 "multiValueHeaders": {"Host": ["abc123defg.execute-api.eu-west-1.amazonaws.com"]},
 "queryStringParameters": {"token": "abc"},
 "multiValueQueryStringParameters": {"token": ["abc"]},
 "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "extendedRequestId": "AbCdEfGhIjKlMnO=",
   "requestTime": "09/Feb/2024:18:11:43 +0000", "messageDirection": "IN", "stage": "prod",
   "connectedAt": 1707502303419, "requestTimeEpoch": 1707502303420,
   "identity": {"sourceIp": "203.0.113.7", "userAgent": "ua/1.0"},
   "requestId": "AbCdEfGhIjKlMnO=", "domainName": "abc123defg.execute-api.eu-west-1.amazonaws.com",
   "connectionId": "QrStUvWxYz01234=", "apiId": "abc123defg"},
 "isBase64Encoded": false}`
	awsMessageEvent = `{"requestContext": {"routeKey": "sendmessage", "messageId": "MnOpQrStUvWxYz0=", "eventType": "MESSAGE",
   "extendedRequestId": "x", "requestTime": "x", "messageDirection": "IN", "stage": "prod",
   "connectedAt": 1705751697419, "requestTimeEpoch": 1705751700453,
   "identity": {"sourceIp": "x", "userAgent": "x"}, "requestId": "x", "domainName": "x",
   "connectionId": "x", "apiId": "x"},
 "body": "{\"action\":\"sendmessage\",\"data\":\"hi\"}", "isBase64Encoded": false}`
	awsDisconnectEvent = `{"headers": {"Host": "x", "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""},
 "multiValueHeaders": {"Host": ["x"], "x-api-key": [""], "X-Forwarded-For": [""], "x-restapi": [""]},
 "requestContext": {"routeKey": "$disconnect", "disconnectStatusCode": 1001, "eventType": "DISCONNECT",
   "extendedRequestId": "x", "requestTime": "x", "messageDirection": "IN", "disconnectReason": "Going away",
   "stage": "prod", "connectedAt": 1708326702789, "requestTimeEpoch": 1708327306706,
   "identity": {"sourceIp": "x", "userAgent": "x"}, "requestId": "x", "domainName": "x",
   "connectionId": "x", "apiId": "x"},
 "isBase64Encoded": false}`
)

// sameShape checks that got has exactly want's keys at every level of
// requestContext and the top level, with values of the same JSON types.
// headers and query maps are compared by type only: their keys are the
// client's.
func sameShape(t *testing.T, path string, want, got map[string]any) {
	t.Helper()
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	require.Equal(t, keys(want), keys(got), "keys of %s", path)
	for k, wv := range want {
		gv := got[k]
		require.IsType(t, wv, gv, "type of %s.%s", path, k)
		if wm, ok := wv.(map[string]any); ok && (path != "event" || k == "requestContext") {
			sameShape(t, path+"."+k, wm, gv.(map[string]any))
		}
	}
}

func TestHTTPIntegrationPostsTheLambdaProxyEvent(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request, ev map[string]any) {
		switch routeKeyOf(ev) {
		case "$connect":
			writeResult(w, `{"statusCode":200}`)
		case "sendmessage":
			writeResult(w, `{"statusCode":404,"body":"echo:`+strings.ReplaceAll(ev["body"].(string), `"`, `\"`)+`"}`)
		default:
			writeResult(w, `{}`)
		}
	})
	r := newRouter(t, &wsroute.Options{Stage: "prod", APIID: "abc123defg"})
	opts := &wsroute.HTTPIntegrationOptions{Header: http.Header{"X-Backend-Key": {"k1"}}}
	for _, k := range []string{wsroute.RouteConnect, "sendmessage", wsroute.RouteDisconnect} {
		r.Handle(k, wsroute.HTTPIntegration(be.URL+"/fn", opts))
	}
	srv := serve(t, r)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(srv)+"?token=abc", &websocket.DialOptions{
		HTTPHeader: http.Header{"User-Agent": {"ua/1.0"}},
	})
	require.NoError(t, err)
	defer c.CloseNow()

	want := func(s string) map[string]any { return mustJSON(t, s) }
	connect := be.next(t)
	sameShape(t, "event", want(awsConnectEvent), connect)

	send(t, c, `{"action":"sendmessage","data":"hi"}`)
	// The result's body comes back as a frame; its statusCode is ignored.
	assert.Equal(t, `echo:{"action":"sendmessage","data":"hi"}`, read(t, c))
	message := be.next(t)
	sameShape(t, "event", want(awsMessageEvent), message)

	require.NoError(t, c.Close(websocket.StatusGoingAway, "Going away"))
	disconnect := be.next(t)
	sameShape(t, "event", want(awsDisconnectEvent), disconnect)

	// Values, field by field.
	crc := connect["requestContext"].(map[string]any)
	mrc := message["requestContext"].(map[string]any)
	drc := disconnect["requestContext"].(map[string]any)
	id := crc["connectionId"].(string)
	assert.Regexp(t, `^[A-Za-z0-9_-]{15}=$`, id)
	assert.Equal(t, map[string]any{"token": "abc"}, connect["queryStringParameters"])
	assert.Equal(t, map[string]any{"token": []any{"abc"}}, connect["multiValueQueryStringParameters"])
	assert.Equal(t, "ua/1.0", connect["headers"].(map[string]any)["User-Agent"])
	assert.Equal(t, "13", connect["headers"].(map[string]any)["Sec-WebSocket-Version"])
	assert.NotContains(t, connect["headers"], "Upgrade")
	host := strings.TrimPrefix(srv.URL, "http://")
	assert.Equal(t, host, connect["headers"].(map[string]any)["Host"])
	timeRE := regexp.MustCompile(`^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$`)
	for i, rc := range []map[string]any{crc, mrc, drc} {
		assert.Equal(t, []any{"CONNECT", "MESSAGE", "DISCONNECT"}[i], rc["eventType"])
		assert.Equal(t, []any{"$connect", "sendmessage", "$disconnect"}[i], rc["routeKey"])
		assert.Equal(t, id, rc["connectionId"])
		assert.Equal(t, "prod", rc["stage"])
		assert.Equal(t, "abc123defg", rc["apiId"])
		assert.Equal(t, host, rc["domainName"])
		assert.Equal(t, "IN", rc["messageDirection"])
		assert.Equal(t, rc["requestId"], rc["extendedRequestId"])
		assert.Equal(t, crc["connectedAt"], rc["connectedAt"])
		assert.Regexp(t, timeRE, rc["requestTime"])
		assert.Equal(t, map[string]any{"sourceIp": "127.0.0.1", "userAgent": "ua/1.0"}, rc["identity"])
		assert.GreaterOrEqual(t, rc["requestTimeEpoch"].(float64), rc["connectedAt"].(float64))
	}
	assert.Equal(t, `{"action":"sendmessage","data":"hi"}`, message["body"])
	assert.Equal(t, false, message["isBase64Encoded"])
	assert.Equal(t, float64(1001), drc["disconnectStatusCode"])
	assert.Equal(t, "Going away", drc["disconnectReason"])

	// The POSTs themselves.
	be.mu.Lock()
	defer be.mu.Unlock()
	require.Len(t, be.headers, 3)
	for _, h := range be.headers {
		assert.Equal(t, "application/json", h.Get("Content-Type"))
		assert.Equal(t, "k1", h.Get("X-Backend-Key"))
	}
	// The body POSTed is exactly the Request's JSON encoding.
	var decoded wsroute.Request
	require.NoError(t, json.Unmarshal(be.raw[1], &decoded))
	again, err := json.Marshal(&decoded)
	require.NoError(t, err)
	assert.JSONEq(t, string(be.raw[1]), string(again))
}

// failure is one way a backend fails, and what API Gateway answers for it.
type failure struct {
	name    string
	answer  func(w http.ResponseWriter, r *http.Request, ev map[string]any) // nil: the backend is down
	opts    wsroute.HTTPIntegrationOptions
	status  int    // on $connect
	message string // in the body on $connect, in the frame on a message route
}

func failures() []failure {
	const internal, timedOut = "Internal server error", "Endpoint request timed out"
	return []failure{
		{name: "backend down", status: 500, message: internal},
		{name: "500 from the backend", status: 502, message: internal,
			answer: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
				http.Error(w, "boom", http.StatusInternalServerError)
			}},
		{name: "404 from the backend", status: 502, message: internal,
			answer: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) { http.NotFound(w, nil) }},
		{name: "redirect is not followed", status: 502, message: internal,
			answer: func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			}},
		{name: "not JSON", status: 502, message: internal,
			answer: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) { writeResult(w, `hello`) }},
		{name: "JSON but not an object", status: 502, message: internal,
			answer: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) { writeResult(w, `"hello"`) }},
		{name: "statusCode is a string", status: 502, message: internal,
			answer: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
				writeResult(w, `{"statusCode":"200","body":"x"}`)
			}},
		{name: "X-Amz-Function-Error", status: 502, message: internal,
			answer: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
				w.Header().Set("X-Amz-Function-Error", "Unhandled")
				writeResult(w, `{"errorMessage":"boom","errorType":"Exception"}`)
			}},
		{name: "Lambda's error object", status: 502, message: internal,
			answer: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
				writeResult(w, `{"errorMessage":"division by zero","errorType":"ZeroDivisionError","stackTrace":[]}`)
			}},
		{name: "truncated JSON", status: 502, message: internal,
			answer: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) { writeResult(w, `{"statusCode":200,`) }},
		{name: "answer over MaxResponseSize", status: 502, message: internal,
			opts: wsroute.HTTPIntegrationOptions{MaxResponseSize: 64},
			answer: func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
				writeResult(w, `{"statusCode":200,"body":"`+strings.Repeat("x", 64)+`"}`)
			}},
		{name: "timeout", status: 504, message: timedOut,
			opts: wsroute.HTTPIntegrationOptions{Timeout: 300 * time.Millisecond},
			answer: func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
				<-r.Context().Done() // answers only when the router gives up
			}},
		{name: "timeout while the body is read", status: 504, message: timedOut,
			opts: wsroute.HTTPIntegrationOptions{Timeout: 300 * time.Millisecond},
			answer: func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"statusCode":`)
				http.NewResponseController(w).Flush()
				<-r.Context().Done()
			}},
	}
}

// urlFor starts the failure's backend (or a closed one) and returns its URL.
func (f failure) urlFor(t *testing.T) string {
	if f.answer == nil {
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close() // nothing listens there any more
		return down.URL
	}
	return newBackend(t, f.answer).URL
}

func TestHTTPIntegrationFailureOnConnectRefusesAsAPIGateway(t *testing.T) {
	for _, f := range failures() {
		t.Run(f.name, func(t *testing.T) {
			r := newRouter(t, nil)
			opts := f.opts
			r.Handle(wsroute.RouteConnect, wsroute.HTTPIntegration(f.urlFor(t), &opts))
			srv := serve(t, r)
			status, body := dialStatus(t, wsURL(srv), nil)
			assert.Equal(t, f.status, status)
			assert.JSONEq(t, fmt.Sprintf(`{"message":%q}`, f.message), body)
		})
	}
}

func TestHTTPIntegrationFailureOnMessageRouteSendsErrorFrameAndStaysConnected(t *testing.T) {
	for _, f := range failures() {
		t.Run(f.name, func(t *testing.T) {
			r := newRouter(t, nil)
			opts := f.opts
			r.Handle("work", wsroute.HTTPIntegration(f.urlFor(t), &opts))
			whoamiRoute(r)
			srv := serve(t, r)
			c := dial(t, srv, nil)
			send(t, c, `{"action":"whoami"}`)
			id := read(t, c)

			send(t, c, `{"action":"work"}`)
			frame := read(t, c)
			assert.Regexp(t, `^\{"message": "`+f.message+`", "connectionId":"`+regexp.QuoteMeta(id)+`", "requestId":"[A-Za-z0-9_-]{15}="\}$`, frame)

			send(t, c, `{"action":"whoami"}`) // still connected
			assert.Equal(t, id, read(t, c))
		})
	}
}

// lockedBuffer is a log destination safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestHTTPIntegrationFailureOnDisconnectIsLogged(t *testing.T) {
	var logs lockedBuffer
	be := newBackend(t, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
		http.Error(w, "boom", http.StatusServiceUnavailable)
	})
	r := newRouter(t, &wsroute.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	r.Handle(wsroute.RouteDisconnect, wsroute.HTTPIntegration(be.URL, nil))
	srv := serve(t, r)
	c := dial(t, srv, nil)
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	ev := be.next(t)
	assert.Equal(t, "$disconnect", routeKeyOf(ev))
	waitUntil(t, testTimeout, func() bool { return strings.Contains(logs.String(), "503 Service Unavailable") },
		func() string { return "no log of the failure: " + logs.String() })
	assert.Contains(t, logs.String(), "routeKey=$disconnect")
}

func TestHTTPIntegrationResultOnConnect(t *testing.T) {
	be := newBackend(t, func(w http.ResponseWriter, _ *http.Request, ev map[string]any) {
		q, _ := ev["queryStringParameters"].(map[string]any)
		switch q["case"] {
		case "refuse":
			writeResult(w, `{"statusCode":403,"headers":{"X-Why":"banned"},"body":"go away"}`)
		case "subprotocol":
			writeResult(w, `{"statusCode":200,"headers":{"Sec-WebSocket-Protocol":"chat.v2"}}`)
		case "empty":
			w.WriteHeader(http.StatusOK)
		default:
			writeResult(w, `null`)
		}
	})
	r := newRouter(t, nil)
	r.Handle(wsroute.RouteConnect, wsroute.HTTPIntegration(be.URL, nil))
	srv := serve(t, r)

	status, body := dialStatus(t, wsURL(srv)+"?case=refuse", nil)
	assert.Equal(t, 403, status)
	assert.Equal(t, "go away", body)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(srv)+"?case=subprotocol", &websocket.DialOptions{Subprotocols: []string{"chat.v1", "chat.v2"}})
	require.NoError(t, err)
	assert.Equal(t, "chat.v2", c.Subprotocol())
	c.CloseNow()

	for _, q := range []string{"empty", "null"} {
		status, _ = dialStatus(t, wsURL(srv)+"?case="+q, nil)
		assert.Equal(t, http.StatusSwitchingProtocols, status, q)
	}
}

func TestHTTPIntegrationRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "/relative", "ftp://host/x", "http://", "::"} {
		assert.Panics(t, func() { wsroute.HTTPIntegration(u, nil) }, u)
	}
}

func TestGoHandlerCanFailAsAnIntegration(t *testing.T) {
	r := newRouter(t, nil)
	r.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		if req.QueryStringParameters["fail"] == "bad" {
			return nil, &wsroute.IntegrationError{StatusCode: 502, Message: `evil "quote"`}
		}
		return nil, &wsroute.IntegrationError{StatusCode: 504, Message: "Endpoint request timed out"}
	})
	srv := serve(t, r)
	status, body := dialStatus(t, wsURL(srv), nil)
	assert.Equal(t, 504, status)
	assert.JSONEq(t, `{"message":"Endpoint request timed out"}`, body)
	status, body = dialStatus(t, wsURL(srv)+"?fail=bad", nil)
	assert.Equal(t, 502, status)
	assert.JSONEq(t, `{"message":"Internal server error"}`, body)
}
