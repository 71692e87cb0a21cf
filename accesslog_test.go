package wsroute_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// logBuffer is an io.Writer safe for the router's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// observedRoutes registers the routes the observer tests script against:
// echo, fail (an error), boom (a panic), and $disconnect; no $default.
func observedRoutes(r *wsroute.Router) {
	r.HandleFunc(wsroute.RouteConnect, func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return nil, nil
	})
	r.HandleFunc("echo", echo)
	r.HandleFunc("fail", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return nil, errors.New("backend down")
	})
	r.HandleFunc("boom", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		panic("boom")
	})
	r.HandleFunc(wsroute.RouteDisconnect, func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return nil, nil
	})
}

// tokenAuthorizer refuses an upgrade request without ?token= with 401.
func tokenAuthorizer(_ context.Context, req *wsroute.Request) (*wsroute.AuthorizerResult, error) {
	if req.QueryStringParameters["token"] == "" {
		return nil, wsroute.ErrUnauthorized
	}
	return &wsroute.AuthorizerResult{PrincipalID: "alice"}, nil
}

func TestAccessLogThroughSockets(t *testing.T) {
	var buf logBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	r := newRouter(t, &wsroute.Options{Observer: wsroute.NewAccessLog(log), Authorizer: tokenAuthorizer,
		APIID: "chatapi", Stage: "prod"})
	observedRoutes(r)
	srv := serve(t, r)
	mgmt := httptest.NewServer(wsroute.NewManagementHandler(r.Connections(),
		&wsroute.ManagementOptions{InsecureSkipAuthentication: true, Observer: wsroute.NewAccessLog(log)}))
	defer mgmt.Close()

	// A request that is not a handshake, and one the authorizer refuses.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	plain, err := http.Get(srv.URL)
	require.NoError(t, err)
	plain.Body.Close()
	require.Equal(t, http.StatusUpgradeRequired, plain.StatusCode)
	_, resp, err := websocket.Dial(ctx, wsURL(srv), nil)
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	c, resp, err := websocket.Dial(ctx, wsURL(srv)+"?token=t", &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {"obs-test"}}})
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	defer c.CloseNow()
	send(t, c, `{"action":"echo","n":1}`)
	require.JSONEq(t, `{"action":"echo","n":1}`, read(t, c))
	send(t, c, `{"action":"fail"}`)
	require.Contains(t, read(t, c), `"message": "Internal server error"`)
	send(t, c, `{"action":"boom"}`)
	require.Contains(t, read(t, c), `"message": "Internal server error"`)
	send(t, c, `{"action":"nowhere"}`)
	require.Contains(t, read(t, c), `"message": "Forbidden"`)

	var connID string
	for _, l := range buf.lines() {
		if l["eventType"] == "CONNECT" && l["status"] == float64(200) {
			connID, _ = l["connectionId"].(string)
		}
	}
	require.NotEmpty(t, connID)
	pr, err := http.Post(mgmt.URL+"/prod/@connections/"+connID, "application/json", strings.NewReader(`{"hi":1}`))
	require.NoError(t, err)
	pr.Body.Close()
	require.Equal(t, http.StatusOK, pr.StatusCode)
	require.Equal(t, `{"hi":1}`, read(t, c))
	require.NoError(t, c.Close(websocket.StatusNormalClosure, "bye"))

	waitUntil(t, testTimeout, func() bool { return len(buf.lines()) >= 9 }, func() string { return buf.buf.String() })
	lines := buf.lines()
	require.Len(t, lines, 9, buf.buf.String())
	byKind := map[string]map[string]any{}
	for _, l := range lines {
		require.Equal(t, "wsroute access", l["msg"])
		k, _ := l["eventType"].(string)
		if rk, ok := l["routeKey"].(string); ok && k == "MESSAGE" {
			k += " " + rk
		}
		if k == "CONNECT" {
			k += " " + jsonNum(l["status"])
		}
		byKind[k] = l
	}
	notWS := byKind["CONNECT 426"]
	require.NotNil(t, notWS, "%v", byKind)
	require.Equal(t, "$connect", notWS["routeKey"])
	require.Equal(t, "127.0.0.1", notWS["identity.sourceIp"])
	require.Regexp(t, `^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$`, notWS["requestTime"])
	require.NotContains(t, notWS, "requestId", "no CONNECT event was made")
	require.NotContains(t, notWS, "connectionId")

	refused := byKind["CONNECT 401"]
	require.NotNil(t, refused, "%v", byKind)
	require.Equal(t, float64(401), refused["status"])
	require.NotContains(t, refused, "integrationStatus", "the authorizer refused before $connect ran")
	require.NotEmpty(t, refused["requestId"])
	require.Equal(t, "127.0.0.1", refused["identity.sourceIp"])

	connect := byKind["CONNECT 200"]
	require.NotNil(t, connect)
	require.Equal(t, "$connect", connect["routeKey"])
	require.Equal(t, float64(200), connect["integrationStatus"])
	require.Equal(t, "alice", connect["authorizer.principalId"])
	require.Equal(t, "obs-test", connect["identity.userAgent"])
	require.Equal(t, "chatapi", connect["apiId"])
	require.Equal(t, "prod", connect["stage"])
	require.Contains(t, connect, "integrationLatency")

	msg := byKind["MESSAGE echo"]
	require.Equal(t, float64(200), msg["status"])
	require.Equal(t, connID, msg["connectionId"])
	require.NotEmpty(t, msg["messageId"])
	require.NotEmpty(t, msg["requestId"])
	require.Regexp(t, `^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$`, msg["requestTime"])

	fail := byKind["MESSAGE fail"]
	require.Equal(t, float64(500), fail["status"])
	require.Equal(t, "backend down", fail["error.message"])
	boom := byKind["MESSAGE boom"]
	require.Equal(t, float64(500), boom["status"])
	require.Contains(t, boom["error.message"], "handler panicked: boom")

	nowhere := byKind["MESSAGE $default"]
	require.Equal(t, float64(403), nowhere["status"], "no route: %v", byKind)
	require.NotContains(t, nowhere, "integrationStatus")

	mg := byKind["MANAGEMENT"]
	require.Equal(t, "POST", mg["httpMethod"])
	require.Equal(t, connID, mg["connectionId"])
	require.Equal(t, float64(200), mg["status"])

	dc := byKind["DISCONNECT"]
	require.Equal(t, float64(1000), dc["disconnectStatusCode"])
	require.Equal(t, "bye", dc["disconnectReason"])
	require.Equal(t, float64(200), dc["status"])
}

func jsonNum(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Behind a trusted proxy, the access log names the client even for a request
// refused before its CONNECT event exists; from an untrusted peer it names
// the peer, whatever X-Forwarded-For says.
func TestAccessLogSeesTheClientBehindAProxy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		want    string
	}{
		{"trusted", []string{"127.0.0.1/32"}, "203.0.113.7"},
		{"untrusted", nil, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf logBuffer
			r := newRouter(t, &wsroute.Options{Observer: wsroute.NewAccessLog(slog.New(slog.NewJSONHandler(&buf, nil))),
				TrustedProxies: tc.trusted})
			srv := serve(t, r)
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil) // not an upgrade: 426
			require.NoError(t, err)
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusUpgradeRequired, resp.StatusCode)
			lines := buf.lines()
			require.Len(t, lines, 1)
			require.Equal(t, tc.want, lines[0]["identity.sourceIp"], "%v", lines[0])
		})
	}
}
