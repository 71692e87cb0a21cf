package wsroute_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestManagementRefusesBeforeTheBody sends raw requests that announce a body
// and never send it. Each one the handler refuses on its headers alone (an
// unknown access key in a well-formed signature, a malformed signature, a
// wrong bearer token, no credentials) is answered at once, with
// "Connection: close" so that the server does not wait to read the body
// first, and delivers nothing.
func TestManagementRefusesBeforeTheBody(t *testing.T) {
	opts := sigv4Options()
	opts.BearerTokens = []string{mgmtToken}
	e := newMgmtEnv(t, nil, opts)
	c := e.dial("")
	path := "/prod/@connections/" + url.PathEscape(c.id)
	addr := e.srv.Listener.Addr().String()

	forged := func() string {
		s := newMgmtSigner()
		s.keyID = "AKIAFORGEDFORGED0000"
		req, err := http.NewRequest("POST", "http://"+addr+path, nil)
		require.NoError(t, err)
		s.sign(req, []byte("the body never sent"))
		return "Authorization: " + req.Header.Get("Authorization") + "\r\nX-Amz-Date: " + req.Header.Get("X-Amz-Date") + "\r\n"
	}
	for _, tc := range []struct {
		name, headers, msg string
	}{
		{"unknown access key", forged(), "The security token included in the request is invalid."},
		{"malformed signature", "Authorization: AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=00\r\nX-Amz-Date: 20260101T000000Z\r\n",
			"Malformed SigV4 signature"},
		{"wrong bearer token", "Authorization: Bearer not-the-token\r\n", "Invalid bearer token"},
		{"no credentials", "", "Missing Authentication Token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.DialTimeout("tcp", addr, mgmtWait)
			require.NoError(t, err)
			defer nc.Close()
			require.NoError(t, nc.SetDeadline(time.Now().Add(mgmtWait)))
			_, err = fmt.Fprintf(nc, "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: 100000\r\n\r\n", path, addr, tc.headers)
			require.NoError(t, err)
			resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
			require.NoError(t, err, "no answer before the body was sent")
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.Equal(t, "ForbiddenException", resp.Header.Get("X-Amzn-ErrorType"))
			assert.True(t, resp.Close, "no Connection: close on the refusal")
			assert.JSONEq(t, fmt.Sprintf(`{"message":%q}`, tc.msg), string(b))
		})
	}

	// Nothing was delivered: the next frame the client reads is this post.
	r := e.do("POST", path, strings.NewReader("first"), nil)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Equal(t, "first", c.read(t))
}
