package sdk_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/internal/devtls"
)

// lambdaEnv sets the environment a Lambda function finds: credentials and
// region in AWS_* variables, no shared config files, no instance metadata.
func lambdaEnv(t *testing.T, caBundle string) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", accessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", region)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_CA_BUNDLE", caBundle) // empty counts as unset
}

// sendMessage is a route written as for AWS Lambda behind API Gateway, in the
// style of AWS's chat samples: it loads the SDK's default configuration from
// the environment, builds the management client from its event
// (scheme://domainName/stage) and answers through PostToConnection.
func sendMessage(scheme string) wsroute.HandlerFunc {
	return func(ctx context.Context, event *wsroute.Request) (*wsroute.Response, error) {
		rc := event.RequestContext
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return &wsroute.Response{Body: "config: " + err.Error()}, nil
		}
		client := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
			o.BaseEndpoint = aws.String(scheme + "://" + rc.DomainName + "/" + rc.Stage)
		})
		var msg struct {
			Data string `json:"data"`
		}
		_ = json.Unmarshal([]byte(event.Body), &msg)
		got, err := client.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(rc.ConnectionID)})
		if err != nil {
			return &wsroute.Response{Body: "callback failed: " + err.Error()}, nil
		}
		reply, _ := json.Marshal(map[string]string{"echo": msg.Data, "sourceIp": aws.ToString(got.Identity.SourceIp)})
		_, err = client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String(rc.ConnectionID),
			Data:         reply,
		})
		if err != nil {
			return &wsroute.Response{Body: "callback failed: " + err.Error()}, nil
		}
		return nil, nil
	}
}

// stageServer serves a router for stage "dev" with MountStage, over TLS when
// tlsConfig is set.
func stageServer(t *testing.T, scheme string, tlsConfig *tls.Config) *httptest.Server {
	r, err := wsroute.New(&wsroute.Options{Stage: "dev"})
	require.NoError(t, err)
	r.Handle("sendmessage", sendMessage(scheme))
	mux := http.NewServeMux()
	r.MountStage(mux, wsroute.NewManagementHandler(r.Connections(), &wsroute.ManagementOptions{
		Credentials: map[string]string{accessKeyID: secretAccessKey},
	}))
	srv := httptest.NewUnstartedServer(mux)
	if tlsConfig != nil {
		srv.TLS = tlsConfig
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = r.Shutdown(c)
		srv.Close()
	})
	return srv
}

func dialStage(t *testing.T, url string, client *http.Client) *websocket.Conn {
	c, _, err := websocket.Dial(ctx(t), url, &websocket.DialOptions{HTTPClient: client})
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func readText(t *testing.T, c *websocket.Conn) string {
	_, b, err := c.Read(ctx(t))
	require.NoError(t, err)
	return string(b)
}

// A function that builds http://{domainName}/{stage} from its event reaches
// the management API with the real SDK, signing with SigV4, unchanged.
func TestCallbackToTheEndpointBuiltFromTheEvent(t *testing.T) {
	lambdaEnv(t, "")
	srv := stageServer(t, "http", nil)
	c := dialStage(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/dev", nil)
	require.NoError(t, c.Write(ctx(t), websocket.MessageText, []byte(`{"action":"sendmessage","data":"hi"}`)))
	assert.JSONEq(t, `{"echo":"hi","sourceIp":"127.0.0.1"}`, readText(t, c))
}

// The same function with https://{domainName}/{stage}: the SDK trusts the
// development CA through AWS_CA_BUNDLE, as boto3 and the AWS CLI do, and
// refuses the server without it.
func TestCallbackOverHTTPSWithTheDevelopmentCA(t *testing.T) {
	files, err := devtls.Generate(t.TempDir())
	require.NoError(t, err)
	serverTLS, err := files.ServerConfig()
	require.NoError(t, err)
	clientTLS, err := files.ClientConfig()
	require.NoError(t, err)
	srv := stageServer(t, "https", serverTLS)
	transport := &http.Transport{TLSClientConfig: clientTLS}
	t.Cleanup(transport.CloseIdleConnections)
	wss := "wss" + strings.TrimPrefix(srv.URL, "https") + "/dev"

	t.Run("with AWS_CA_BUNDLE", func(t *testing.T) {
		lambdaEnv(t, files.CAFile)
		c := dialStage(t, wss, &http.Client{Transport: transport})
		require.NoError(t, c.Write(ctx(t), websocket.MessageText, []byte(`{"action":"sendmessage","data":"secure"}`)))
		assert.JSONEq(t, `{"echo":"secure","sourceIp":"127.0.0.1"}`, readText(t, c))
	})
	t.Run("without it", func(t *testing.T) {
		lambdaEnv(t, "")
		c := dialStage(t, wss, &http.Client{Transport: transport})
		require.NoError(t, c.Write(ctx(t), websocket.MessageText, []byte(`{"action":"sendmessage","data":"secure"}`)))
		got := readText(t, c)
		assert.Contains(t, got, "callback failed")
		assert.Contains(t, got, "certificate signed by unknown authority")
	})
}
