package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute/internal/leakcheck"
	"github.com/wsroute/wsroute/wsroutetest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// syncBuffer collects a writer's output for a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The program as a user runs it: it prints where it serves and the
// management credentials, serves the page, the WebSocket endpoint and the
// @connections API on one port, and stops cleanly when told to.
func TestRun(t *testing.T) {
	const keyID, secret, token = "AKIDEXAMPLE0000000001", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "test-token"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-access-key-id", keyID, "-secret-access-key", secret, "-bearer-token", token}, pw, &logs)
		pw.Close()
	}()

	// Read the banner up to its last line.
	var banner strings.Builder
	lines := bufio.NewScanner(pr)
	for lines.Scan() {
		banner.WriteString(lines.Text() + "\n")
		if strings.HasPrefix(lines.Text(), "Press Ctrl+C") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	out := banner.String()
	m := regexp.MustCompile(`Chat page:\s+(http://127\.0\.0\.1:\d+)/`).FindStringSubmatch(out)
	require.NotNil(t, m, "banner:\n%s", out)
	base := m[1]
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	assert.Contains(t, out, "WebSocket:        "+wsURL+"\n")
	assert.Contains(t, out, "Management API:   "+base+"/ws ")
	assert.Contains(t, out, "SigV4 access key ID:      "+keyID+"\n")
	assert.Contains(t, out, "SigV4 secret access key:  "+secret+"\n")
	assert.Contains(t, out, "Bearer token:             "+token+"\n")

	resp, err := http.Get(base + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// A user registers; the management API reaches their connection.
	c := wsroutetest.Dial(t, wsURL, nil)
	c.SendAction(ctx, "registerUser", map[string]any{"userId": "alice"})
	c.ExpectText(ctx, `{"type":"registrationSuccess","userId":"alice"}`)
	c.ExpectText(ctx, `{"type":"presence","users":["alice"]}`)
	logged := regexp.MustCompile(`msg="chat: user registered" userId=alice connectionId=(\S+)`).FindStringSubmatch(logs.String())
	require.NotNil(t, logged, "logs:\n%s", logs.String())
	// Logged without quotes: pasted as is into the URL, it works.
	require.Regexp(t, `^[A-Za-z0-9_-]{15}=$`, logged[1], "logs:\n%s", logs.String())
	connURL := base + "/ws/@connections/" + logged[1]

	call := func(method, url string, body []byte, auth func(*http.Request)) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		require.NoError(t, err)
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}

	resp, body := call(http.MethodPost, connURL, []byte(`{"type":"notice","message":"hello"}`), bearer(token))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	c.ExpectText(ctx, `{"type":"notice","message":"hello"}`)

	msg := []byte(`{"type":"notice","message":"signed"}`)
	resp, body = call(http.MethodPost, connURL, msg, func(r *http.Request) { signV4(r, msg, keyID, secret, "us-east-1", time.Now()) })
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	c.ExpectText(ctx, string(msg))

	resp, _ = call(http.MethodPost, connURL, msg, bearer("wrong"))
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "ForbiddenException", resp.Header.Get("x-amzn-ErrorType"))
	resp, _ = call(http.MethodPost, connURL, msg, func(r *http.Request) { signV4(r, msg, keyID, "not-the-secret", "us-east-1", time.Now()) })
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = call(http.MethodPost, connURL, msg, nil)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	resp, body = call(http.MethodGet, connURL, nil, bearer(token))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var info map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	assert.Contains(t, info, "connectedAt")
	assert.Contains(t, info, "lastActiveAt")

	resp, body = call(http.MethodDelete, connURL, nil, bearer(token))
	require.Equal(t, http.StatusNoContent, resp.StatusCode, body)
	c.ExpectClose(ctx, websocket.StatusNormalClosure)
	resp, _ = call(http.MethodPost, connURL, msg, bearer(token))
	assert.Equal(t, http.StatusGone, resp.StatusCode)

	// Graceful shutdown: open connections get 1001.
	c2 := wsroutetest.Dial(t, wsURL, nil)
	c2.SendAction(ctx, "registerUser", map[string]any{"userId": "bob"})
	c2.ExpectText(ctx, `{"type":"registrationSuccess","userId":"bob"}`)
	cancel()
	c2.ExpectClose(context.Background(), websocket.StatusGoingAway)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestRunFlags(t *testing.T) {
	var out, logs syncBuffer
	err := run(context.Background(), []string{"-access-key-id", "AKID"}, &out, &logs)
	assert.ErrorContains(t, err, "go together")
	err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "extra"}, &out, &logs)
	assert.ErrorContains(t, err, "unexpected arguments")
}

func TestGeneratedCredentials(t *testing.T) {
	id, secret := newAccessKey()
	assert.Regexp(t, `^AKIA[A-Z2-7]{16}$`, id)
	assert.Len(t, secret, 40)
	id2, secret2 := newAccessKey()
	assert.NotEqual(t, id, id2)
	assert.NotEqual(t, secret, secret2)
}

// signV4 signs r for service execute-api as the AWS SDKs do, written here
// from AWS's documentation rather than with the server's own code.
func signV4(r *http.Request, body []byte, keyID, secret, region string, now time.Time) {
	amzDate := now.UTC().Format("20060102T150405Z")
	day := amzDate[:8]
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	r.Header.Set("X-Amz-Date", amzDate)
	r.Header.Set("X-Amz-Content-Sha256", payload)

	// The canonical URI: the path as sent, each byte other than an
	// unreserved character or "/" percent-encoded once more.
	var uri strings.Builder
	for _, b := range []byte(r.URL.EscapedPath()) {
		switch {
		case 'A' <= b && b <= 'Z', 'a' <= b && b <= 'z', '0' <= b && b <= '9', strings.IndexByte("-._~/", b) >= 0:
			uri.WriteByte(b)
		default:
			fmt.Fprintf(&uri, "%%%02X", b)
		}
	}
	const signed = "host;x-amz-content-sha256;x-amz-date"
	canonical := strings.Join([]string{
		r.Method, uri.String(), "",
		"host:" + r.URL.Host, "x-amz-content-sha256:" + payload, "x-amz-date:" + amzDate, "",
		signed, payload,
	}, "\n")
	scope := day + "/" + region + "/execute-api/aws4_request"
	crSum := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(crSum[:])
	mac := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	k := mac([]byte("AWS4"+secret), day)
	k = mac(k, region)
	k = mac(k, "execute-api")
	k = mac(k, "aws4_request")
	r.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		keyID, scope, signed, hex.EncodeToString(mac(k, toSign))))
}
