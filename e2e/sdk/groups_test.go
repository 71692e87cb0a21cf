package sdk_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGroupsSigned calls the management API's group paths with requests
// signed by the SDK's v4 signer, as a client of the @connections API would
// sign them, and checks their effect on real connections.
func TestGroupsSigned(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.dial("a"), e.dial("b")
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey}
	httpc := &http.Client{Transport: e.transport}
	do := func(method, path, body string, secret string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx(t), method, e.srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		sum := sha256.Sum256([]byte(body))
		c := creds
		c.SecretAccessKey = secret
		sg := signer
		if secret != secretAccessKey {
			sg = v4.NewSigner() // the signer caches signing keys by access key ID
		}
		require.NoError(t, sg.SignHTTP(ctx(t), c, req, hex.EncodeToString(sum[:]), "execute-api", region, time.Now()))
		resp, err := httpc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	enc := func(id string) string { return strings.ReplaceAll(id, "=", "%3D") }

	for _, c := range []*wsClient{a, b} {
		status, body := do("PUT", "/prod/@groups/room/members/"+enc(c.id), "", secretAccessKey)
		require.Equal(t, http.StatusNoContent, status, body)
	}
	status, body := do("GET", "/prod/@groups/room/members", "", secretAccessKey)
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, a.id)
	assert.Contains(t, body, b.id)

	status, body = do("POST", "/prod/%40groups/room", "signed group post", secretAccessKey)
	require.Equal(t, http.StatusOK, status, body)
	assert.JSONEq(t, `{"delivered":2,"skipped":0,"gone":0}`, body)
	assert.Equal(t, "signed group post", a.read(t))
	assert.Equal(t, "signed group post", b.read(t))

	// A wrong secret changes nothing.
	status, body = do("DELETE", "/prod/@groups/room/members/"+enc(a.id), "", "wrong-secret")
	require.Equal(t, http.StatusForbidden, status, body)
	status, body = do("POST", "/prod/@broadcast", "x", "wrong-secret")
	require.Equal(t, http.StatusForbidden, status, body)

	status, body = do("DELETE", "/prod/@groups/room/members/"+enc(a.id), "", secretAccessKey)
	require.Equal(t, http.StatusNoContent, status, body)
	status, body = do("POST", "/prod/@broadcast", "to all", secretAccessKey)
	require.Equal(t, http.StatusOK, status, body)
	assert.JSONEq(t, `{"delivered":2,"skipped":0,"gone":0}`, body)
	assert.Equal(t, "to all", a.read(t), "a got nothing between: the wrong secret's post was refused")
	assert.Equal(t, "to all", b.read(t))
}
