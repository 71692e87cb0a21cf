package sdk_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// boto3Script calls every operation with boto3, given the stage URL, and
// prints one line per outcome.
const boto3Script = `
import os, boto3
kw = dict(endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
          aws_access_key_id=os.environ["KEY_ID"])
c = boto3.client("apigatewaymanagementapi", aws_secret_access_key=os.environ["SECRET"], **kw)
cid = os.environ["CONNECTION_ID"]
c.post_to_connection(ConnectionId=cid, Data=b'{"from":"boto3"}')
print("posted")
info = c.get_connection(ConnectionId=cid)
print("identity", info["Identity"]["SourceIp"], info["ConnectedAt"] <= info["LastActiveAt"])
try:
    c.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x")
except c.exceptions.GoneException:
    print("gone")
try:
    c.post_to_connection(ConnectionId=cid, Data=b"x" * 131073)
except c.exceptions.PayloadTooLargeException:
    print("too large")
bad = boto3.client("apigatewaymanagementapi", aws_secret_access_key="wrong", **kw)
try:
    bad.get_connection(ConnectionId=cid)
except bad.exceptions.ForbiddenException:
    print("forbidden")
c.delete_connection(ConnectionId=cid)
print("deleted")
`

// TestBoto3 runs the Python SDK against the handler when python3 with boto3
// is installed (it is skipped otherwise): boto3 sends "@" raw and "=" as
// "%3D", and signs the path encoded once more, as the Go SDK does.
func TestBoto3(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	if err := exec.Command(python, "-c", "import boto3").Run(); err != nil {
		t.Skip("boto3 is not installed (Debian: python3-boto3)")
	}
	e := newEnv(t, nil)
	c := e.dial("sdk-test/1.0")
	script := filepath.Join(t.TempDir(), "mgmt.py")
	require.NoError(t, os.WriteFile(script, []byte(boto3Script), 0o600))

	cmd := exec.CommandContext(ctx(t), python, script)
	cmd.Env = append(os.Environ(),
		"ENDPOINT="+e.srv.URL+"/prod", "KEY_ID="+accessKeyID, "SECRET="+secretAccessKey, "CONNECTION_ID="+c.id,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_MAX_ATTEMPTS=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, []string{"posted", "identity 127.0.0.1 True", "gone", "too large", "forbidden", "deleted"},
		strings.Split(strings.TrimSpace(string(out)), "\n"))

	assert.Equal(t, `{"from":"boto3"}`, c.read(t))
	assert.Equal(t, websocket.StatusNormalClosure, c.readClose(t).Code)
	ev := e.nextDisconnect()
	assert.Equal(t, 1000, ev.RequestContext.DisconnectStatusCode)
}
