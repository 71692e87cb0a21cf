package wsroute_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// The signed cases (real SDK signers, policies, identity) are in
// e2e/sdk/iam_test.go; these need no signer.
func TestIAMRefusesUnsignedAndMalformedUpgrades(t *testing.T) {
	connects := newRecorder()
	r := newRouter(t, &wsroute.Options{IAM: &wsroute.IAMAuth{
		Credentials: map[string]wsroute.IAMCredential{"AKIDEXAMPLE": {SecretAccessKey: "secret"}},
	}})
	r.Handle(wsroute.RouteConnect, connects)
	srv := serve(t, r)

	tests := []struct {
		name      string
		query     string
		header    http.Header
		errorType string
		body      string
	}{
		{"nothing", "", nil, "MissingAuthenticationTokenException", `{"message":"Missing Authentication Token"}`},
		{"a bearer token", "", http.Header{"Authorization": {"Bearer abc"}}, "MissingAuthenticationTokenException",
			`{"message":"Missing Authentication Token"}`},
		{"a truncated header", "", http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request"}},
			"IncompleteSignatureException", ""},
		{"a presigned URL without its signature", "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260101%2Fus-east-1%2Fexecute-api%2Faws4_request",
			nil, "IncompleteSignatureException", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, wsURL(srv)+tt.query, &websocket.DialOptions{HTTPHeader: tt.header})
			if c != nil {
				c.CloseNow()
			}
			require.Error(t, err)
			require.NotNil(t, resp)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.Equal(t, tt.errorType, resp.Header.Get("x-amzn-ErrorType"))
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			b, _ := io.ReadAll(resp.Body)
			if tt.body != "" {
				assert.JSONEq(t, tt.body, string(b))
			} else {
				assert.Contains(t, string(b), `"message":`)
			}
		})
	}
	assert.Empty(t, connects.ch, "$connect ran for a refused upgrade")
}
