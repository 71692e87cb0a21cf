package wsroute_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

const (
	mgmtKeyID  = "AKIAWSROUTEMGMTTEST1"
	mgmtSecret = "mgmt/test+secret/0123456789abcdefghijklmn"
)

// mgmtSigner signs a request the way the AWS SDKs do for execute-api. It is
// written here, apart from internal/sigv4, so that the handler is checked
// against an independent implementation (e2e/sdk checks it against the real
// SDK).
type mgmtSigner struct {
	keyID, secret, region, service string
	at                             time.Time
	declarePayload                 string // x-amz-content-sha256 to send and sign, if any
}

func newMgmtSigner() mgmtSigner {
	return mgmtSigner{keyID: mgmtKeyID, secret: mgmtSecret, region: "eu-west-1", service: "execute-api", at: time.Now()}
}

// awsEscape percent-encodes all but A-Z a-z 0-9 - . _ ~ (and / if asked).
func awsEscape(s string, keepSlash bool) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 || keepSlash && c == '/' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (s mgmtSigner) key(day string) []byte {
	mac := func(k []byte, d string) []byte {
		h := hmac.New(sha256.New, k)
		h.Write([]byte(d))
		return h.Sum(nil)
	}
	return mac(mac(mac(mac([]byte("AWS4"+s.secret), day), s.region), s.service), "aws4_request")
}

func (s mgmtSigner) signature(canonical, amzDate, scope string) string {
	sum := sha256.Sum256([]byte(canonical))
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	h := hmac.New(sha256.New, s.key(amzDate[:8]))
	h.Write([]byte(sts))
	return hex.EncodeToString(h.Sum(nil))
}

// sign adds X-Amz-Date and Authorization to req (a client request) for body.
func (s mgmtSigner) sign(req *http.Request, body []byte) {
	amzDate := s.at.UTC().Format("20060102T150405Z")
	scope := amzDate[:8] + "/" + s.region + "/" + s.service + "/aws4_request"
	req.Header.Set("X-Amz-Date", amzDate)
	payload := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(payload[:])
	headers := map[string]string{"host": req.URL.Host, "x-amz-date": amzDate}
	if s.declarePayload != "" {
		req.Header.Set("X-Amz-Content-Sha256", s.declarePayload)
		headers["x-amz-content-sha256"] = s.declarePayload
		payloadHash = s.declarePayload
	}
	names := make([]string, 0, len(headers))
	for n := range headers {
		names = append(names, n)
	}
	sort.Strings(names)
	canonical := req.Method + "\n" + awsEscape(req.URL.EscapedPath(), true) + "\n\n"
	for _, n := range names {
		canonical += n + ":" + headers[n] + "\n"
	}
	canonical += "\n" + strings.Join(names, ";") + "\n" + payloadHash
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+s.keyID+"/"+scope+
		", SignedHeaders="+strings.Join(names, ";")+", Signature="+s.signature(canonical, amzDate, scope))
}

// presign adds the X-Amz-* query parameters of a presigned URL to req.
func (s mgmtSigner) presign(req *http.Request, expires time.Duration) {
	amzDate := s.at.UTC().Format("20060102T150405Z")
	scope := amzDate[:8] + "/" + s.region + "/" + s.service + "/aws4_request"
	q := map[string]string{
		"X-Amz-Algorithm":     "AWS4-HMAC-SHA256",
		"X-Amz-Credential":    s.keyID + "/" + scope,
		"X-Amz-Date":          amzDate,
		"X-Amz-Expires":       fmt.Sprint(int(expires / time.Second)),
		"X-Amz-SignedHeaders": "host",
	}
	names := make([]string, 0, len(q))
	for n := range q {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, awsEscape(n, false)+"="+awsEscape(q[n], false))
	}
	query := strings.Join(parts, "&")
	empty := sha256.Sum256(nil)
	canonical := req.Method + "\n" + awsEscape(req.URL.EscapedPath(), true) + "\n" + query + "\nhost:" + req.URL.Host +
		"\n\nhost\n" + hex.EncodeToString(empty[:])
	req.URL.RawQuery = query + "&X-Amz-Signature=" + s.signature(canonical, amzDate, scope)
}

func sigv4Options() *wsroute.ManagementOptions {
	return &wsroute.ManagementOptions{Credentials: map[string]string{mgmtKeyID: mgmtSecret, "AKIAOTHER": "other"}}
}

// doSigned sends a request signed by s; tamper, when set, changes it after
// signing.
func (e *mgmtEnv) doSigned(s mgmtSigner, method, path, body string, tamper func(*http.Request)) mgmtResponse {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mgmtWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/octet-stream")
	s.sign(req, []byte(body))
	if tamper != nil {
		tamper(req)
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return mgmtResponse{resp.StatusCode, resp.Header, string(b)}
}

const msgSigMismatch = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method."

// TestManagementSigV4 checks SigV4 authentication through the HTTP API.
func TestManagementSigV4(t *testing.T) {
	e := newMgmtEnv(t, nil, sigv4Options())
	c := e.dial("")
	enc := strings.ReplaceAll(c.id, "=", "%3D")

	// Every path form verifies when signed as sent, and delivers.
	for name, path := range mgmtPathForms(c.id) {
		t.Run(name, func(t *testing.T) {
			r := e.doSigned(newMgmtSigner(), "POST", path, name, nil)
			require.Equal(t, http.StatusOK, r.status, r.body)
			assert.Equal(t, name, c.read(t))
		})
	}

	path := "/prod/@connections/" + enc
	tests := []struct {
		name   string
		signer func(s *mgmtSigner)
		tamper func(r *http.Request)
		status int
		msg    string
	}{
		{name: "valid", status: 200},
		{name: "other key of the set", signer: func(s *mgmtSigner) { s.keyID, s.secret = "AKIAOTHER", "other" }, status: 200},
		{name: "any region", signer: func(s *mgmtSigner) { s.region = "local" }, status: 200},
		{name: "4 minutes old", signer: func(s *mgmtSigner) { s.at = s.at.Add(-4 * time.Minute) }, status: 200},
		{name: "declared payload hash", signer: func(s *mgmtSigner) {
			sum := sha256.Sum256([]byte("payload"))
			s.declarePayload = hex.EncodeToString(sum[:])
		}, status: 200},
		{name: "wrong secret", signer: func(s *mgmtSigner) { s.secret = "nope" }, status: 403, msg: msgSigMismatch},
		{name: "unknown key", signer: func(s *mgmtSigner) { s.keyID = "AKIANOBODY" }, status: 403,
			msg: "The security token included in the request is invalid."},
		{name: "expired", signer: func(s *mgmtSigner) { s.at = s.at.Add(-6 * time.Minute) }, status: 403,
			msg: "Signature expired: X-Amz-Date (or a presigned URL's expiry) is outside the allowed clock skew of the server's time"},
		{name: "from the future", signer: func(s *mgmtSigner) { s.at = s.at.Add(6 * time.Minute) }, status: 403},
		{name: "other service", signer: func(s *mgmtSigner) { s.service = "lambda" }, status: 403,
			msg: "Credential should be scoped to service 'execute-api'"},
		{name: "unsigned payload", signer: func(s *mgmtSigner) { s.declarePayload = "UNSIGNED-PAYLOAD" }, status: 403,
			msg: "Unsigned payloads are not accepted: sign the request body"},
		{name: "declared hash of another body", signer: func(s *mgmtSigner) {
			sum := sha256.Sum256([]byte("other"))
			s.declarePayload = hex.EncodeToString(sum[:])
		}, status: 403, msg: "The x-amz-content-sha256 header does not match the request body"},
		{name: "body changed", tamper: func(r *http.Request) {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("payloaD")), 7
		}, status: 403, msg: msgSigMismatch},
		{name: "path changed to %40", tamper: func(r *http.Request) {
			r.URL.RawPath = strings.Replace(r.URL.EscapedPath(), "@", "%40", 1)
		}, status: 403, msg: msgSigMismatch},
		{name: "date changed", tamper: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", time.Now().Add(time.Second).UTC().Format("20060102T150405Z"))
		}, status: 403},
		{name: "signature cut", tamper: func(r *http.Request) {
			r.Header.Set("Authorization", strings.TrimSuffix(r.Header.Get("Authorization"), "0")[:180])
		}, status: 403, msg: "Malformed SigV4 signature"},
		{name: "bearer token instead", tamper: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+mgmtToken) },
			status: 403, msg: "Missing Authentication Token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMgmtSigner()
			if tt.signer != nil {
				tt.signer(&s)
			}
			r := e.doSigned(s, "POST", path, "payload", tt.tamper)
			if tt.status == 200 {
				require.Equal(t, 200, r.status, r.body)
				assert.Equal(t, "payload", c.read(t))
				return
			}
			requireMgmtError(t, r, tt.status, "ForbiddenException", tt.msg)
		})
	}

	// GET and DELETE, signed, with no body.
	r := e.doSigned(newMgmtSigner(), "GET", path, "", nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, `"connectedAt":"`)

	// A presigned GET.
	req, err := http.NewRequest("GET", e.srv.URL+path, nil)
	require.NoError(t, err)
	newMgmtSigner().presign(req, time.Minute)
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	// Expired.
	old := newMgmtSigner()
	old.at = time.Now().Add(-2 * time.Minute)
	req, err = http.NewRequest("GET", e.srv.URL+path, nil)
	require.NoError(t, err)
	old.presign(req, time.Minute)
	resp, err = e.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	r = e.doSigned(newMgmtSigner(), "DELETE", path, "", nil)
	require.Equal(t, http.StatusNoContent, r.status, r.body)
	c.readClose(t)
	assert.Equal(t, 1000, e.nextDisconnect().RequestContext.DisconnectStatusCode)
	requireMgmtError(t, e.doSigned(newMgmtSigner(), "POST", path, "x", nil), http.StatusGone, "GoneException", "Gone")
}

// TestManagementSigV4Options checks Region and MaxClockSkew.
func TestManagementSigV4Options(t *testing.T) {
	opts := sigv4Options()
	opts.Region = "eu-west-1"
	opts.MaxClockSkew = time.Minute
	e := newMgmtEnv(t, nil, opts)
	c := e.dial("")
	path := "/@connections/" + url.PathEscape(c.id)

	require.Equal(t, 200, e.doSigned(newMgmtSigner(), "GET", path, "", nil).status)
	s := newMgmtSigner()
	s.region = "us-east-1"
	requireMgmtError(t, e.doSigned(s, "GET", path, "", nil), 403, "ForbiddenException",
		"Credential should be scoped to service 'execute-api' and region 'eu-west-1'")
	s = newMgmtSigner()
	s.at = s.at.Add(-2 * time.Minute)
	requireMgmtError(t, e.doSigned(s, "GET", path, "", nil), 403, "ForbiddenException", "")
}

// TestManagementAuthenticateFunc checks the custom authentication hook and
// which method decides a request.
func TestManagementAuthenticateFunc(t *testing.T) {
	var mu sync.Mutex
	var seen []*http.Request
	opts := &wsroute.ManagementOptions{
		Authenticate: func(r *http.Request) error {
			mu.Lock()
			seen = append(seen, r)
			mu.Unlock()
			if r.Body != http.NoBody {
				return errors.New("body not hidden")
			}
			if r.Header.Get("Authorization") == "Bearer jwt-ok" || r.Header.Get("X-Api-Key") == "k1" {
				return nil
			}
			return errors.New("secret reason 42")
		},
	}
	e := newMgmtEnv(t, nil, opts)
	c := e.dial("")
	path := "/@connections/" + url.PathEscape(c.id)

	r := e.do("POST", path, strings.NewReader("via api key"), map[string]string{"Authorization": "", "X-Api-Key": "k1"})
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, "via api key", c.read(t))
	// With no BearerTokens, a bearer token is for Authenticate to judge.
	r = e.do("POST", path, strings.NewReader("via jwt"), map[string]string{"Authorization": "Bearer jwt-ok"})
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, "via jwt", c.read(t))
	// Refused: 403 Forbidden, and the reason stays on the server.
	r = e.do("POST", path, strings.NewReader("x"), map[string]string{"Authorization": ""})
	requireMgmtError(t, r, http.StatusForbidden, "ForbiddenException", "Forbidden")
	assert.NotContains(t, r.body, "secret reason")

	mu.Lock()
	require.Len(t, seen, 3)
	mu.Unlock()

	// With both: bearer tokens are judged by BearerTokens alone, the rest by
	// Authenticate.
	opts2 := &wsroute.ManagementOptions{BearerTokens: []string{mgmtToken}, Authenticate: opts.Authenticate}
	e2 := newMgmtEnv(t, nil, opts2)
	c2 := e2.dial("")
	path2 := "/@connections/" + url.PathEscape(c2.id)
	requireMgmtError(t, e2.do("GET", path2, nil, map[string]string{"Authorization": "Bearer jwt-ok"}),
		http.StatusForbidden, "ForbiddenException", "Invalid bearer token")
	assert.Equal(t, http.StatusOK, e2.do("GET", path2, nil, nil).status)
	assert.Equal(t, http.StatusOK, e2.do("GET", path2, nil, map[string]string{"Authorization": "", "X-Api-Key": "k1"}).status)
	// A lower-case scheme is a bearer token too.
	assert.Equal(t, http.StatusOK, e2.do("GET", path2, nil, map[string]string{"Authorization": "bearer " + mgmtToken}).status)
}

// TestManagementInsecure checks InsecureSkipAuthentication.
func TestManagementInsecure(t *testing.T) {
	e := newMgmtEnv(t, nil, &wsroute.ManagementOptions{InsecureSkipAuthentication: true})
	c := e.dial("")
	r := e.do("POST", "/@connections/"+url.PathEscape(c.id), strings.NewReader("open"), map[string]string{"Authorization": ""})
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, "open", c.read(t))
}

// TestNewManagementHandlerPanics checks that the handler cannot be built
// without authentication, or with contradictory options.
func TestNewManagementHandlerPanics(t *testing.T) {
	r, err := wsroute.New(nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mgmtWait)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	cm := r.Connections()
	tests := []struct {
		name string
		cm   wsroute.ConnectionManager
		opts *wsroute.ManagementOptions
		want string
	}{
		{"nil options", cm, nil, "wsroute: NewManagementHandler: nil *ManagementOptions"},
		{"no authentication", cm, &wsroute.ManagementOptions{MaxBodySize: 10}, "wsroute: NewManagementHandler: no authentication configured"},
		{"empty credentials map", cm, &wsroute.ManagementOptions{Credentials: map[string]string{}}, "no authentication configured"},
		{"insecure and credentials", cm, &wsroute.ManagementOptions{InsecureSkipAuthentication: true, BearerTokens: []string{"t"}},
			"InsecureSkipAuthentication is set together with"},
		{"nil ConnectionManager", nil, &wsroute.ManagementOptions{BearerTokens: []string{"t"}}, "nil ConnectionManager"},
		{"empty token", cm, &wsroute.ManagementOptions{BearerTokens: []string{""}}, "empty bearer token"},
		{"token with a trailing space", cm, &wsroute.ManagementOptions{BearerTokens: []string{"t "}}, "trailing spaces"},
		{"empty secret", cm, &wsroute.ManagementOptions{Credentials: map[string]string{"AKID": ""}}, "invalid credential"},
		{"key ID with a slash", cm, &wsroute.ManagementOptions{Credentials: map[string]string{"A/B": "s"}}, "invalid credential"},
		{"negative body size", cm, &wsroute.ManagementOptions{BearerTokens: []string{"t"}, MaxBodySize: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				p := recover()
				require.NotNil(t, p, "no panic")
				msg := fmt.Sprint(p)
				assert.True(t, strings.HasPrefix(msg, "wsroute: "), msg)
				assert.Contains(t, msg, tt.want)
			}()
			wsroute.NewManagementHandler(tt.cm, tt.opts)
		})
	}
}

// TestManagementOptionsAreCopied changes the options after construction.
func TestManagementOptionsAreCopied(t *testing.T) {
	opts := &wsroute.ManagementOptions{BearerTokens: []string{mgmtToken}, Credentials: map[string]string{mgmtKeyID: mgmtSecret}}
	e := newMgmtEnv(t, nil, opts)
	opts.BearerTokens[0] = "changed"
	opts.Credentials[mgmtKeyID] = "changed"
	c := e.dial("")
	path := "/@connections/" + url.PathEscape(c.id)
	assert.Equal(t, http.StatusOK, e.do("GET", path, nil, nil).status)
	assert.Equal(t, http.StatusOK, e.doSigned(newMgmtSigner(), "GET", path, "", nil).status)
}

// TestManagementContextErrors calls the handler with a request whose context
// is already done: the real router's ConnectionManager returns the context's
// error, answered 503 or 504.
func TestManagementContextErrors(t *testing.T) {
	e := newMgmtEnv(t, nil, nil)
	c := e.dial("")
	h := wsroute.NewManagementHandler(e.router.Connections(), &wsroute.ManagementOptions{BearerTokens: []string{mgmtToken}})

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tt := range []struct {
		ctx    context.Context
		status int
		shape  string
	}{
		{canceled, http.StatusServiceUnavailable, "ServiceUnavailableException"},
		{expired, http.StatusGatewayTimeout, "GatewayTimeoutException"},
	} {
		for _, m := range []string{"POST", "GET", "DELETE"} {
			req := httptest.NewRequest(m, "/@connections/"+url.PathEscape(c.id), strings.NewReader("x")).WithContext(tt.ctx)
			req.Header.Set("Authorization", "Bearer "+mgmtToken)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			requireMgmtError(t, mgmtResponse{w.Code, w.Header(), w.Body.String()}, tt.status, tt.shape, "")
		}
	}
	// The connection is untouched.
	require.Equal(t, http.StatusOK, e.do("POST", "/@connections/"+url.PathEscape(c.id), strings.NewReader("ok"), nil).status)
	assert.Equal(t, "ok", c.read(t))
}

// TestManagementLogsRefusals checks that a refusal is logged with its reason
// and never with the credentials.
func TestManagementLogsRefusals(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	opts := sigv4Options()
	opts.Logger = logger
	e := newMgmtEnv(t, nil, opts)
	s := newMgmtSigner()
	s.secret = "wrong"
	requireMgmtError(t, e.doSigned(s, "GET", "/@connections/AAAAAAAAAAAAAAA%3D", "", nil), 403, "ForbiddenException", msgSigMismatch)
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, buf.String(), "request refused")
	assert.Contains(t, buf.String(), "signature does not match")
	assert.NotContains(t, buf.String(), mgmtSecret)
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestManagementBehindStripPrefix mounts the handler under http.StripPrefix:
// routing reads the end of the path, and SigV4 the path as sent.
func TestManagementBehindStripPrefix(t *testing.T) {
	r, err := wsroute.New(nil)
	require.NoError(t, err)
	r.HandleFunc("whoami", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{StatusCode: 200, Body: req.RequestContext.ConnectionID}, nil
	})
	mux := http.NewServeMux()
	mux.Handle("/ws", r)
	mux.Handle("/api/", http.StripPrefix("/api", wsroute.NewManagementHandler(r.Connections(), sigv4Options())))
	e := &mgmtEnv{t: t, router: r, srv: httptest.NewServer(mux)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mgmtWait)
		defer cancel()
		_ = r.Shutdown(ctx)
		e.srv.Close()
	})
	c := e.dial("")
	resp := e.doSigned(newMgmtSigner(), "POST", "/api/prod/@connections/"+url.PathEscape(c.id), "stripped", nil)
	require.Equal(t, http.StatusOK, resp.status, resp.body)
	assert.Equal(t, "stripped", c.read(t))
}
