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

// TestBoto3 runs the Python SDK against the handler: boto3 sends "@" raw and
// "=" as "%3D", and signs the path encoded once more, as the Go SDK does. It
// needs a python3 with boto3 (Debian: python3-boto3, which .ci/run installs);
// without one it skips on a developer's machine and fails in CI.
func TestBoto3(t *testing.T) {
	python := pythonWithBoto3()
	if python == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no python3 with boto3, and CI must not skip: apt-get install python3-boto3")
		}
		t.Skip("no python3 with boto3 (Debian: apt-get install python3-boto3)")
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

// pythonWithBoto3 finds a python3 that can import boto3: the one on PATH (it
// may be a pyenv or virtualenv one), else Debian's.
func pythonWithBoto3() string {
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	for _, p := range candidates {
		if exec.Command(p, "-c", "import boto3").Run() == nil {
			return p
		}
	}
	return ""
}
