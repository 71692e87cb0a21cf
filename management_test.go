package wsroute_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// mgmtWait bounds every wait in the management API tests.
const mgmtWait = 10 * time.Second

const mgmtToken = "mgmt-test-token-7f3a9c"

// mgmtEnv is a real router and its management API on one loopback server,
// laid out as a stage: clients dial /ws, and the management handler, mounted
// at "/", serves …/@connections/{id} under any prefix.
type mgmtEnv struct {
	t           testing.TB
	router      *wsroute.Router
	srv         *httptest.Server
	disconnects chan *wsroute.Request
}

func newMgmtEnv(t testing.TB, ropts *wsroute.Options, mopts *wsroute.ManagementOptions) *mgmtEnv {
	t.Helper()
	r, err := wsroute.New(ropts)
	require.NoError(t, err)
	e := &mgmtEnv{t: t, router: r, disconnects: make(chan *wsroute.Request, 1024)}
	r.HandleFunc("whoami", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{StatusCode: 200, Body: req.RequestContext.ConnectionID}, nil
	})
	r.HandleFunc(wsroute.RouteDisconnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		e.disconnects <- req
		return nil, nil
	})
	if mopts == nil {
		mopts = &wsroute.ManagementOptions{BearerTokens: []string{mgmtToken}}
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", r)
	mux.Handle("/", wsroute.NewManagementHandler(r.Connections(), mopts))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mgmtWait)
		defer cancel()
		_ = r.Shutdown(ctx)
		e.srv.Close()
	})
	return e
}

// client is a real WebSocket client of the router.
type mgmtClient struct {
	c  *websocket.Conn
	id string
}

func (e *mgmtEnv) dial(userAgent string) *mgmtClient {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mgmtWait)
	defer cancel()
	h := http.Header{}
	if userAgent != "" {
		h.Set("User-Agent", userAgent)
	}
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/ws", &websocket.DialOptions{HTTPHeader: h})
	require.NoError(e.t, err)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	e.t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(1 << 20)
	require.NoError(e.t, c.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`)))
	_, id, err := c.Read(ctx)
	require.NoError(e.t, err)
	return &mgmtClient{c: c, id: string(id)}
}

func (c *mgmtClient) read(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mgmtWait)
	defer cancel()
	typ, b, err := c.c.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, websocket.MessageText, typ)
	return string(b)
}

// readClose reads until the server's close frame and returns it.
func (c *mgmtClient) readClose(t testing.TB) websocket.CloseError {
	t.Helper()
	ce, err := closeStatus(c.c, mgmtWait)
	require.NoError(t, err)
	return ce
}

func (e *mgmtEnv) nextDisconnect() *wsroute.Request {
	e.t.Helper()
	select {
	case ev := <-e.disconnects:
		return ev
	case <-time.After(mgmtWait):
		e.t.Fatal("no $disconnect within the timeout")
		return nil
	}
}

type mgmtResponse struct {
	status int
	header http.Header
	body   string
}

// do sends a management request with the bearer token, unless hdr sets
// Authorization (to "" to send none). path is sent as written.
func (e *mgmtEnv) do(method, path string, body io.Reader, hdr map[string]string) mgmtResponse {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mgmtWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, body)
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+mgmtToken)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return mgmtResponse{resp.StatusCode, resp.Header, string(b)}
}

var mgmtUUIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// requireMgmtError checks an error response as API Gateway sends it: the
// status, x-amzn-ErrorType, application/json, and a JSON object of strings
// whose message is msg (when msg is not empty).
func requireMgmtError(t testing.TB, r mgmtResponse, status int, shape, msg string) {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	assert.Equal(t, shape, r.header.Get("X-Amzn-ErrorType"))
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.Regexp(t, mgmtUUIDPattern, r.header.Get("X-Amzn-RequestId"))
	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &body), "body is not a JSON object: %q", r.body)
	for k, v := range body {
		_, ok := v.(string)
		assert.True(t, ok, "value of %q is %T, not a string (the Go v2 SDK panics on those)", k, v)
	}
	require.Contains(t, body, "message")
	if msg != "" {
		assert.Equal(t, msg, body["message"])
	}
}

// mgmtPathForms returns the ways a client can write …/@connections/{id}.
func mgmtPathForms(id string) map[string]string {
	enc := strings.ReplaceAll(id, "=", "%3D")
	return map[string]string{
		"no prefix, @ and %3D (the SDKs)":      "/@connections/" + enc,
		"stage, @ and %3D (the SDKs)":          "/prod/@connections/" + enc,
		"stage, %40 and %3D (awscurl)":         "/prod/%40connections/" + enc,
		"stage, raw =":                         "/prod/@connections/" + id,
		"stage, %40 and raw =":                 "/prod/%40connections/" + id,
		"nested prefix":                        "/v1/a/@connections/" + enc,
		"the WebSocket endpoint's own path":    "/ws/@connections/" + enc,
		"lower-case escapes":                   "/dev/%40connections/" + strings.ReplaceAll(id, "=", "%3d"),
		"every byte of the ID percent-encoded": "/dev/@connections/" + mgmtEncodeAll(id),
	}
}

func mgmtEncodeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// TestManagementPathForms posts through every path form and checks that the
// real client receives each message.
func TestManagementPathForms(t *testing.T) {
	e := newMgmtEnv(t, nil, nil)
	c := e.dial("")
	require.Regexp(t, `^[A-Za-z0-9_-]{15}=$`, c.id)
	for name, path := range mgmtPathForms(c.id) {
		t.Run(name, func(t *testing.T) {
			msg := `{"form":` + fmt.Sprintf("%q", name) + `}`
			r := e.do("POST", path, strings.NewReader(msg), nil)
			require.Equal(t, http.StatusOK, r.status, "POST %s: %s", path, r.body)
			assert.Empty(t, r.body)
			assert.Regexp(t, mgmtUUIDPattern, r.header.Get("X-Amzn-RequestId"))
			assert.Equal(t, msg, c.read(t))

			r = e.do("GET", path, nil, nil)
			require.Equal(t, http.StatusOK, r.status, "GET %s: %s", path, r.body)
		})
	}
}

var mgmtISOMillis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// TestManagementGetConnection checks GET's body: exactly API Gateway's
// fields, the times in ISO-8601 with milliseconds, and right.
func TestManagementGetConnection(t *testing.T) {
	e := newMgmtEnv(t, nil, nil)
	before := time.Now().Truncate(time.Millisecond)
	c := e.dial("mgmt-test/1.0")
	after := time.Now()

	r := e.do("GET", "/prod/@connections/"+url.PathEscape(c.id), nil, nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &raw))
	assert.ElementsMatch(t, []string{"connectedAt", "identity", "lastActiveAt"}, mgmtKeys(raw))
	assert.Equal(t, map[string]any{"sourceIp": "127.0.0.1", "userAgent": "mgmt-test/1.0"}, raw["identity"])
	require.Regexp(t, mgmtISOMillis, raw["connectedAt"])
	require.Regexp(t, mgmtISOMillis, raw["lastActiveAt"])

	var got wsroute.Connection
	require.NoError(t, json.Unmarshal([]byte(r.body), &got))
	assert.False(t, got.ConnectedAt.Before(before), "connectedAt %v before the dial at %v", got.ConnectedAt, before)
	assert.False(t, got.ConnectedAt.After(after), "connectedAt %v after the dial ended at %v", got.ConnectedAt, after)
	assert.False(t, got.LastActiveAt.Before(got.ConnectedAt), "lastActiveAt %v before connectedAt %v", got.LastActiveAt, got.ConnectedAt)

	// A message in either direction moves lastActiveAt, never connectedAt.
	time.Sleep(20 * time.Millisecond)
	sent := time.Now().Truncate(time.Millisecond)
	require.Equal(t, http.StatusOK, e.do("POST", "/prod/@connections/"+url.PathEscape(c.id), strings.NewReader("ping"), nil).status)
	require.Equal(t, "ping", c.read(t))
	// The router records the time when its write returns, which can be just
	// after the client has read the frame: allow it a moment.
	var later wsroute.Connection
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r = e.do("GET", "/prod/@connections/"+url.PathEscape(c.id), nil, nil)
		require.Equal(t, http.StatusOK, r.status, r.body)
		require.NoError(t, json.Unmarshal([]byte(r.body), &later))
		if !later.LastActiveAt.Before(sent) || time.Now().After(deadline) {
			break
		}
	}
	assert.Equal(t, got.ConnectedAt, later.ConnectedAt)
	assert.False(t, later.LastActiveAt.Before(sent), "lastActiveAt %v did not move to the post at %v", later.LastActiveAt, sent)
	assert.False(t, later.LastActiveAt.After(time.Now()))

	// No User-Agent, no userAgent key.
	c2 := e.dialNoUserAgent()
	r = e.do("GET", "/@connections/"+url.PathEscape(c2), nil, nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	var raw2 map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &raw2))
	assert.Equal(t, map[string]any{"sourceIp": "127.0.0.1"}, raw2["identity"])
}

// dialNoUserAgent connects with a raw handshake that sends no User-Agent
// (Go's HTTP client always sends one) and returns the connection's ID.
func (e *mgmtEnv) dialNoUserAgent() string {
	e.t.Helper()
	nc, err := net.DialTimeout("tcp", e.srv.Listener.Addr().String(), mgmtWait)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { nc.Close() })
	require.NoError(e.t, nc.SetDeadline(time.Now().Add(mgmtWait)))
	_, err = fmt.Fprintf(nc, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", e.srv.Listener.Addr())
	require.NoError(e.t, err)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusSwitchingProtocols, resp.StatusCode)
	// A masked text frame {"action":"whoami"}, then the unmasked reply.
	payload := []byte(`{"action":"whoami"}`)
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(payload)), mask[0], mask[1], mask[2], mask[3]}
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	_, err = nc.Write(frame)
	require.NoError(e.t, err)
	hdr := make([]byte, 2)
	_, err = io.ReadFull(br, hdr)
	require.NoError(e.t, err)
	require.Equal(e.t, byte(0x81), hdr[0])
	id := make([]byte, hdr[1]&0x7f)
	_, err = io.ReadFull(br, id)
	require.NoError(e.t, err)
	return string(id)
}

func mgmtKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestManagementDeleteConnection checks that DELETE answers 204 at once,
// closes the client with 1000, runs $disconnect with 1000 "Connection Closed
// Normally", and that the connection is then gone for every method.
func TestManagementDeleteConnection(t *testing.T) {
	e := newMgmtEnv(t, nil, nil)
	c := e.dial("")
	path := "/prod/@connections/" + strings.ReplaceAll(c.id, "=", "%3D")

	r := e.do("DELETE", path, nil, nil)
	require.Equal(t, http.StatusNoContent, r.status, r.body)
	assert.Empty(t, r.body)

	ce := c.readClose(t)
	assert.Equal(t, websocket.StatusNormalClosure, ce.Code)
	ev := e.nextDisconnect()
	assert.Equal(t, c.id, ev.RequestContext.ConnectionID)
	assert.Equal(t, 1000, ev.RequestContext.DisconnectStatusCode)
	assert.Equal(t, "Connection Closed Normally", ev.RequestContext.DisconnectReason)

	for _, m := range []string{"POST", "GET", "DELETE"} {
		requireMgmtError(t, e.do(m, path, strings.NewReader("x"), nil), http.StatusGone, "GoneException", "Gone")
	}
}

// TestManagementDeleteDoesNotWaitForTheClient deletes a connection whose
// client is not reading: DELETE must still answer at once. (Waiting for the
// client would take the close handshake's timeout, 5 s or more.)
func TestManagementDeleteDoesNotWaitForTheClient(t *testing.T) {
	e := newMgmtEnv(t, nil, nil)
	c := e.dial("")
	start := time.Now()
	r := e.do("DELETE", "/@connections/"+url.PathEscape(c.id), nil, nil)
	took := time.Since(start)
	require.Equal(t, http.StatusNoContent, r.status, r.body)
	assert.Less(t, took, 3*time.Second, "DELETE waited for the client")
	// Now the client reads, sees the close frame and answers it.
	assert.Equal(t, websocket.StatusNormalClosure, c.readClose(t).Code)
	assert.Equal(t, 1000, e.nextDisconnect().RequestContext.DisconnectStatusCode)
}

// TestManagementErrors checks every error status, header and body.
func TestManagementErrors(t *testing.T) {
	e := newMgmtEnv(t, nil, nil)
	c := e.dial("")
	valid := "/prod/@connections/" + url.PathEscape(c.id)
	noMethod := func(route, method string) string {
		return "No method found matching route " + route + " for http method " + method + "."
	}
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		shape, msg               string
	}{
		{"unknown ID", "POST", "/prod/@connections/AAAAAAAAAAAAAAA%3D", "x", nil, 410, "GoneException", "Gone"},
		{"unknown ID, GET", "GET", "/prod/@connections/AAAAAAAAAAAAAAA%3D", "", nil, 410, "GoneException", "Gone"},
		{"unknown ID, DELETE", "DELETE", "/prod/@connections/AAAAAAAAAAAAAAA%3D", "", nil, 410, "GoneException", "Gone"},
		{"short ID", "POST", "/prod/@connections/abc", "x", nil, 410, "GoneException", "Gone"},
		{"ID with an encoded slash", "POST", "/prod/@connections/a%2Fb", "x", nil, 410, "GoneException", "Gone"},
		{"ID over 128 bytes", "POST", "/prod/@connections/" + strings.Repeat("A", 129), "x", nil, 410, "GoneException", "Invalid connectionId"},
		{"ID with a control byte", "GET", "/prod/@connections/abc%01def", "", nil, 410, "GoneException", "Invalid connectionId"},
		{"ID with a space", "GET", "/prod/@connections/abc%20def", "", nil, 410, "GoneException", "Invalid connectionId"},
		{"ID not ASCII", "DELETE", "/prod/@connections/caf%C3%A9", "", nil, 410, "GoneException", "Invalid connectionId"},
		{"ID with a NUL", "DELETE", "/prod/@connections/a%00", "", nil, 410, "GoneException", "Invalid connectionId"},
		{"empty ID", "POST", "/prod/@connections/", "x", nil, 400, "BadRequestException", "Missing connectionId"},
		{"empty ID, no prefix", "GET", "/@connections/", "", nil, 400, "BadRequestException", "Missing connectionId"},
		{"PUT", "PUT", valid, "x", nil, 403, "ForbiddenException", noMethod("@connections/{connectionId}", "PUT")},
		{"PATCH", "PATCH", valid, "x", nil, 403, "ForbiddenException", noMethod("@connections/{connectionId}", "PATCH")},
		{"OPTIONS", "OPTIONS", valid, "", nil, 403, "ForbiddenException", noMethod("@connections/{connectionId}", "OPTIONS")},
		{"unknown path", "POST", "/prod/connections/" + url.PathEscape(c.id), "x", nil, 403, "ForbiddenException",
			noMethod("prod/connections/"+url.PathEscape(c.id), "POST")},
		{"no ID segment", "GET", "/prod/@connections", "", nil, 403, "ForbiddenException", noMethod("prod/@connections", "GET")},
		{"segment after the ID", "GET", valid + "/x", "", nil, 403, "ForbiddenException", ""},
		{"trailing slash", "GET", valid + "/", "", nil, 403, "ForbiddenException", ""},
		{"root", "GET", "/", "", nil, 403, "ForbiddenException", noMethod("", "GET")},
		{"@connections inside a segment", "GET", "/prod/x@connections/" + url.PathEscape(c.id), "", nil, 403, "ForbiddenException", ""},
		{"no credentials", "POST", valid, "x", map[string]string{"Authorization": ""}, 403, "ForbiddenException", "Missing Authentication Token"},
		{"no credentials, unknown path", "GET", "/nope", "", map[string]string{"Authorization": ""}, 403, "ForbiddenException", "Missing Authentication Token"},
		{"wrong bearer token", "POST", valid, "x", map[string]string{"Authorization": "Bearer nope"}, 403, "ForbiddenException", "Invalid bearer token"},
		{"token prefix only", "POST", valid, "x", map[string]string{"Authorization": "Bearer " + mgmtToken[:5]}, 403, "ForbiddenException", "Invalid bearer token"},
		{"token with suffix", "POST", valid, "x", map[string]string{"Authorization": "Bearer " + mgmtToken + "x"}, 403, "ForbiddenException", "Invalid bearer token"},
		{"other scheme", "POST", valid, "x", map[string]string{"Authorization": "Basic " + mgmtToken}, 403, "ForbiddenException", "Missing Authentication Token"},
		{"SigV4 without configured credentials", "POST", valid, "x", map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=A/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00"},
			403, "ForbiddenException", "Missing Authentication Token"},
		{"huge Authorization header", "POST", valid, "x", map[string]string{"Authorization": "Bearer " + strings.Repeat("a", 9000)}, 403, "ForbiddenException", "Authorization header too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			r := e.do(tt.method, tt.path, body, tt.hdr)
			requireMgmtError(t, r, tt.status, tt.shape, tt.msg)
			if tt.method == "PUT" || tt.method == "PATCH" || tt.method == "OPTIONS" {
				assert.Equal(t, "DELETE, GET, POST", r.header.Get("Allow"))
			}
		})
	}
	// HEAD gets the same status and headers, without a body.
	r := e.do("HEAD", valid, nil, nil)
	assert.Equal(t, http.StatusForbidden, r.status)
	assert.Equal(t, "ForbiddenException", r.header.Get("X-Amzn-ErrorType"))

	// None of that disturbed the connection.
	require.Equal(t, http.StatusOK, e.do("POST", valid, strings.NewReader("still here"), nil).status)
	assert.Equal(t, "still here", c.read(t))
}

// TestManagementWireHeaders reads a raw HTTP/1.1 response.
func TestManagementWireHeaders(t *testing.T) {
	e := newMgmtEnv(t, nil, nil)
	nc, err := net.DialTimeout("tcp", e.srv.Listener.Addr().String(), mgmtWait)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(mgmtWait)))
	_, err = fmt.Fprintf(nc, "POST /prod/@connections/AAAAAAAAAAAAAAA%%3D HTTP/1.1\r\nHost: x\r\n"+
		"Authorization: Bearer %s\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", mgmtToken)
	require.NoError(t, err)
	raw, err := io.ReadAll(nc)
	require.NoError(t, err)
	s := string(raw)
	assert.True(t, strings.HasPrefix(s, "HTTP/1.1 410 Gone\r\n"), s)
	// Header names are case-insensitive; Go sends them in canonical form.
	assert.Contains(t, strings.ToLower(s), "\r\nx-amzn-errortype: goneexception\r\n")
	assert.Contains(t, strings.ToLower(s), "\r\nx-amzn-requestid: ")
	assert.Contains(t, s, "\r\nContent-Type: application/json\r\n")
	assert.True(t, strings.HasSuffix(s, "\r\n\r\n"+`{"message":"Gone"}`), s)
}

// TestManagementBodyLimit checks the bounded read: the default limit is
// 131072 bytes; one more is 413 whether announced in Content-Length or sent
// chunked; an announced oversize body is refused without being read.
func TestManagementBodyLimit(t *testing.T) {
	e := newMgmtEnv(t, nil, nil)
	c := e.dial("")
	path := "/prod/@connections/" + url.PathEscape(c.id)

	exact := strings.Repeat("a", 131072)
	r := e.do("POST", path, strings.NewReader(exact), nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, exact, c.read(t))

	r = e.do("POST", path, strings.NewReader(exact+"b"), nil)
	requireMgmtError(t, r, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Payload Too Large: the limit is 131072 bytes")

	// Chunked (no Content-Length): the read stops at the limit.
	r = e.do("POST", path, io.MultiReader(strings.NewReader(exact), strings.NewReader("b")), nil)
	requireMgmtError(t, r, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "")

	// 1 GiB announced, nothing sent: the answer comes without the body.
	nc, err := net.DialTimeout("tcp", e.srv.Listener.Addr().String(), mgmtWait)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(mgmtWait)))
	_, err = fmt.Fprintf(nc, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n",
		path, mgmtToken, 1<<30)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	require.NoError(t, err, "no answer before the body was sent")
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, "PayloadTooLargeException", resp.Header.Get("X-Amzn-ErrorType"))

	// Chunked and endless: the server answers after reading about the limit.
	nc2, err := net.DialTimeout("tcp", e.srv.Listener.Addr().String(), mgmtWait)
	require.NoError(t, err)
	defer nc2.Close()
	require.NoError(t, nc2.SetDeadline(time.Now().Add(mgmtWait)))
	_, err = fmt.Fprintf(nc2, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n", path, mgmtToken)
	require.NoError(t, err)
	var written int64
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		chunk := fmt.Sprintf("%x\r\n%s\r\n", 16384, strings.Repeat("z", 16384))
		for written < 64<<20 { // bounded: 64 MiB at most
			if _, err := io.WriteString(nc2, chunk); err != nil {
				return
			}
			written += 16384
		}
	}()
	resp, err = http.ReadResponse(bufio.NewReader(nc2), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	nc2.Close()
	<-writerDone
	assert.Less(t, written, int64(32<<20), "the server read on far past the limit")

	// The client got nothing but the exact-size message.
	require.Equal(t, http.StatusOK, e.do("POST", path, strings.NewReader("after"), nil).status)
	require.Equal(t, "after", c.read(t))
}

// TestManagementBodyLimitOptions checks MaxBodySize and the router's own
// MaxPostSize.
func TestManagementBodyLimitOptions(t *testing.T) {
	e := newMgmtEnv(t, &wsroute.Options{MaxPostSize: 100}, &wsroute.ManagementOptions{
		BearerTokens: []string{mgmtToken}, MaxBodySize: 200,
	})
	c := e.dial("")
	path := "/@connections/" + url.PathEscape(c.id)
	require.Equal(t, http.StatusOK, e.do("POST", path, strings.NewReader(strings.Repeat("a", 100)), nil).status)
	assert.Len(t, c.read(t), 100)
	// Over the router's limit: ErrPayloadTooLarge from the ConnectionManager.
	requireMgmtError(t, e.do("POST", path, strings.NewReader(strings.Repeat("a", 101)), nil),
		http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Payload Too Large")
	// Over the handler's limit.
	requireMgmtError(t, e.do("POST", path, strings.NewReader(strings.Repeat("a", 201)), nil),
		http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Payload Too Large: the limit is 200 bytes")
}

// TestManagementLimitExceeded fills the send queue of a client that never
// reads until the API answers 429 LimitExceededException.
func TestManagementLimitExceeded(t *testing.T) {
	e := newMgmtEnv(t, &wsroute.Options{SendQueueSize: 2}, nil)
	c := e.dial("") // never reads again
	path := "/prod/@connections/" + url.PathEscape(c.id)
	data := strings.Repeat("x", 128<<10)
	deadline := time.Now().Add(mgmtWait)
	var r mgmtResponse
	for i := 0; time.Now().Before(deadline) && i < 10000; i++ {
		r = e.do("POST", path, strings.NewReader(data), nil)
		if r.status != http.StatusOK {
			break
		}
	}
	t.Logf("429 after %v", time.Since(deadline.Add(-mgmtWait)))
	requireMgmtError(t, r, http.StatusTooManyRequests, "LimitExceededException", "Limit Exceeded")
	// Other connections are not affected.
	c2 := e.dial("")
	require.Equal(t, http.StatusOK, e.do("POST", "/@connections/"+url.PathEscape(c2.id), strings.NewReader("fine"), nil).status)
	assert.Equal(t, "fine", c2.read(t))
}

// TestManagementConcurrent posts, gets and deletes from many goroutines at
// once (run with -race).
func TestManagementConcurrent(t *testing.T) {
	e := newMgmtEnv(t, nil, nil)
	const clients, posters, perPoster = 8, 8, 20
	isGet := func(p, n, i int) bool { return (n+i+p)%5 == 0 }
	cs := make([]*mgmtClient, clients)
	for i := range cs {
		cs[i] = e.dial("")
	}
	want := make([]int, clients)
	for i := range clients {
		for p := range posters {
			for n := range perPoster {
				if !isGet(p, n, i) {
					want[i]++
				}
			}
		}
	}
	var readers sync.WaitGroup
	got := make([]map[string]bool, clients)
	for i, c := range cs {
		got[i] = map[string]bool{}
		readers.Add(1)
		go func() {
			defer readers.Done()
			ctx, cancel := context.WithTimeout(context.Background(), mgmtWait)
			defer cancel()
			for len(got[i]) < want[i] {
				_, b, err := c.c.Read(ctx)
				if err != nil {
					return
				}
				got[i][string(b)] = true
			}
		}()
	}
	var wg sync.WaitGroup
	errs := make(chan error, posters*perPoster*clients)
	for p := range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := e.srv.Client()
			for n := range perPoster {
				for i, c := range cs {
					method := "POST"
					if isGet(p, n, i) {
						method = "GET"
					}
					req, _ := http.NewRequest(method, fmt.Sprintf("%s/s%d/@connections/%s", e.srv.URL, p, url.PathEscape(c.id)),
						strings.NewReader(fmt.Sprintf("p%d-n%d", p, n)))
					req.Header.Set("Authorization", "Bearer "+mgmtToken)
					resp, err := client.Do(req)
					if err != nil {
						errs <- err
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						errs <- fmt.Errorf("%s: status %d", method, resp.StatusCode)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	readers.Wait()
	for i := range clients {
		assert.Len(t, got[i], want[i], "client %d did not receive every message posted to it", i)
	}

	// Every client is then deleted, concurrently, twice: exactly one DELETE
	// of each wins.
	var deleted sync.WaitGroup
	results := make(chan int, 2*clients)
	for _, c := range cs {
		for range 2 {
			deleted.Add(1)
			go func() {
				defer deleted.Done()
				req, _ := http.NewRequest("DELETE", e.srv.URL+"/@connections/"+url.PathEscape(c.id), nil)
				req.Header.Set("Authorization", "Bearer "+mgmtToken)
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				results <- resp.StatusCode
			}()
		}
	}
	deleted.Wait()
	close(results)
	for _, c := range cs {
		assert.Equal(t, websocket.StatusNormalClosure, c.readClose(t).Code)
	}
	statuses := map[int]int{}
	for s := range results {
		statuses[s]++
	}
	assert.Equal(t, map[int]int{http.StatusNoContent: clients, http.StatusGone: clients}, statuses)
	for range clients {
		assert.Equal(t, 1000, e.nextDisconnect().RequestContext.DisconnectStatusCode)
	}
}

// FuzzManagementRequest throws arbitrary methods, paths and bodies at the
// handler over a real router: the answer is never a 5xx or a panic, and every
// error has API Gateway's form.
func FuzzManagementRequest(f *testing.F) {
	fuzzManagementHandler(f, []mgmtSeed{
		{"POST", "/prod/@connections/AAAAAAAAAAAAAAA%3D", "hi"},
		{"GET", "/@connections/", ""},
		{"DELETE", "/%40connections/%40connections", ""},
		{"PUT", "/a/b/c", "x"},
		{"GET", "/@connections/%ZZ", ""},
		{"POST", "/@connections/%E2%82", "x"},
		{"GET", "//@connections//", ""},
	})
}

type mgmtSeed struct{ method, path, body string }

// fuzzManagementHandler fuzzes a management handler over a router with no
// connections, from seeds: no request may get a 5xx, and every 4xx must be an
// API Gateway error.
func fuzzManagementHandler(f *testing.F, seeds []mgmtSeed) {
	r, err := wsroute.New(nil)
	require.NoError(f, err)
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mgmtWait)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	h := wsroute.NewManagementHandler(r.Connections(), &wsroute.ManagementOptions{BearerTokens: []string{mgmtToken}})
	for _, s := range seeds {
		f.Add(s.method, s.path, s.body)
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		u, err := url.ParseRequestURI(path)
		if err != nil || !mgmtValidMethod(method) {
			t.Skip()
		}
		req := &http.Request{
			Method: method, URL: u, RequestURI: path, Host: "x", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Authorization": {"Bearer " + mgmtToken}}, Body: io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), RemoteAddr: "127.0.0.1:1",
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req.WithContext(context.Background()))
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, path, w.Code, w.Body)
		}
		if w.Code >= 400 {
			var m map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m["message"] == "" || w.Header().Get("X-Amzn-ErrorType") == "" {
				t.Fatalf("%s %q: %d %q: not an API Gateway error", method, path, w.Code, w.Body)
			}
		}
	})
}

func mgmtValidMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
