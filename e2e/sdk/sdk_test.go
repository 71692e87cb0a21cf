// Package sdk_test drives wsroute's @connections management API with the
// real AWS SDK for Go v2 (service/apigatewaymanagementapi and the v4
// signer), against a real router with real WebSocket clients, all on
// 127.0.0.1. It lives in a module of its own so that the core module never
// requires the SDK.
package sdk_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// wait bounds every wait in these tests.
const wait = 10 * time.Second

const (
	accessKeyID     = "AKIAWSROUTESDKTEST01"
	secretAccessKey = "sdk/test+secret/abcdefghijklmnopqrstuvwx"
	region          = "eu-west-1"
)

// env is a router and its management API on one loopback server: clients
// dial /ws; the management handler, mounted at "/", answers under any stage.
type env struct {
	t           testing.TB
	router      *wsroute.Router
	srv         *httptest.Server
	transport   *http.Transport
	disconnects chan *wsroute.Request
}

func newEnv(t testing.TB, opts *wsroute.Options) *env {
	t.Helper()
	r, err := wsroute.New(opts)
	require.NoError(t, err)
	e := &env{t: t, router: r, transport: &http.Transport{}, disconnects: make(chan *wsroute.Request, 64)}
	r.HandleFunc("whoami", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{StatusCode: 200, Body: req.RequestContext.ConnectionID}, nil
	})
	r.HandleFunc(wsroute.RouteDisconnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		e.disconnects <- req
		return nil, nil
	})
	mux := http.NewServeMux()
	mux.Handle("/ws", r)
	mux.Handle("/", wsroute.NewManagementHandler(r.Connections(), &wsroute.ManagementOptions{
		Credentials: map[string]string{accessKeyID: secretAccessKey},
	}))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = r.Shutdown(ctx)
		e.transport.CloseIdleConnections()
		e.srv.Close()
	})
	return e
}

// client returns an SDK client whose endpoint is the stage URL
// http://127.0.0.1:PORT/<stage>, signing with the given secret.
func (e *env) client(stage, secret string) *apigatewaymanagementapi.Client {
	endpoint := e.srv.URL
	if stage != "" {
		endpoint += "/" + stage
	}
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		BaseEndpoint:     aws.String(endpoint),
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider(accessKeyID, secret, ""),
		HTTPClient:       &http.Client{Transport: e.transport},
		RetryMaxAttempts: 1, // see every error as the server sent it
	})
}

type wsClient struct {
	c  *websocket.Conn
	id string
}

func (e *env) dial(userAgent string) *wsClient {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"User-Agent": {userAgent}},
	})
	require.NoError(e.t, err)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	e.t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(1 << 20)
	require.NoError(e.t, c.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`)))
	_, id, err := c.Read(ctx)
	require.NoError(e.t, err)
	return &wsClient{c: c, id: string(id)}
}

func (c *wsClient) read(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, b, err := c.c.Read(ctx)
	require.NoError(t, err)
	return string(b)
}

func (c *wsClient) readClose(t testing.TB) websocket.CloseError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		_, _, err := c.c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		require.ErrorAs(t, err, &ce, "want a close frame, got %v", err)
		return ce
	}
}

func (e *env) nextDisconnect() *wsroute.Request {
	e.t.Helper()
	select {
	case ev := <-e.disconnects:
		return ev
	case <-time.After(wait):
		e.t.Fatal("no $disconnect within the timeout")
		return nil
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

// TestPostToConnection posts with endpoints with and without a stage.
func TestPostToConnection(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("sdk-test/1.0")
	for _, stage := range []string{"", "prod", "v1/a", "ws"} {
		t.Run("stage "+stage, func(t *testing.T) {
			msg := `{"stage":"` + stage + `"}`
			_, err := e.client(stage, secretAccessKey).PostToConnection(ctx(t), &apigatewaymanagementapi.PostToConnectionInput{
				ConnectionId: aws.String(c.id),
				Data:         []byte(msg),
			})
			require.NoError(t, err)
			assert.Equal(t, msg, c.read(t))
		})
	}
}

// TestGetConnection checks the fields and the times.
func TestGetConnection(t *testing.T) {
	e := newEnv(t, nil)
	before := time.Now().Truncate(time.Millisecond)
	c := e.dial("sdk-test/1.0")
	after := time.Now()
	api := e.client("prod", secretAccessKey)

	out, err := api.GetConnection(ctx(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(c.id)})
	require.NoError(t, err)
	require.NotNil(t, out.ConnectedAt)
	require.NotNil(t, out.LastActiveAt)
	require.NotNil(t, out.Identity)
	assert.Equal(t, "127.0.0.1", aws.ToString(out.Identity.SourceIp))
	assert.Equal(t, "sdk-test/1.0", aws.ToString(out.Identity.UserAgent))
	assert.Equal(t, time.UTC, out.ConnectedAt.Location())
	assert.Zero(t, out.ConnectedAt.Nanosecond()%int(time.Millisecond), "connectedAt has more than millisecond precision")
	assert.False(t, out.ConnectedAt.Before(before), "connectedAt %v before the dial at %v", out.ConnectedAt, before)
	assert.False(t, out.ConnectedAt.After(after), "connectedAt %v after the dial ended at %v", out.ConnectedAt, after)
	assert.False(t, out.LastActiveAt.Before(*out.ConnectedAt))

	// A post moves lastActiveAt.
	time.Sleep(20 * time.Millisecond)
	posted := time.Now().Truncate(time.Millisecond)
	_, err = api.PostToConnection(ctx(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(c.id), Data: []byte("x")})
	require.NoError(t, err)
	c.read(t)
	// The router records the time when its write returns, which can be just
	// after the client has read the frame: allow it a moment.
	var out2 *apigatewaymanagementapi.GetConnectionOutput
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		out2, err = api.GetConnection(ctx(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(c.id)})
		require.NoError(t, err)
		if !out2.LastActiveAt.Before(posted) || time.Now().After(deadline) {
			break
		}
	}
	assert.Equal(t, *out.ConnectedAt, *out2.ConnectedAt)
	assert.False(t, out2.LastActiveAt.Before(posted), "lastActiveAt %v, posted at %v", out2.LastActiveAt, posted)
	assert.False(t, out2.LastActiveAt.After(time.Now()))
}

// TestDeleteConnection checks DELETE, the close code both ends see, and the
// typed GoneException afterwards.
func TestDeleteConnection(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("sdk-test/1.0")
	api := e.client("prod", secretAccessKey)

	_, err := api.DeleteConnection(ctx(t), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(c.id)})
	require.NoError(t, err)
	assert.Equal(t, websocket.StatusNormalClosure, c.readClose(t).Code)
	ev := e.nextDisconnect()
	assert.Equal(t, c.id, ev.RequestContext.ConnectionID)
	assert.Equal(t, 1000, ev.RequestContext.DisconnectStatusCode)
	assert.Equal(t, "Connection Closed Normally", ev.RequestContext.DisconnectReason)

	var gone *types.GoneException
	_, err = api.PostToConnection(ctx(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(c.id), Data: []byte("x")})
	require.ErrorAs(t, err, &gone, "%v", err)
	_, err = api.GetConnection(ctx(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(c.id)})
	require.ErrorAs(t, err, &gone, "%v", err)
	_, err = api.DeleteConnection(ctx(t), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(c.id)})
	require.ErrorAs(t, err, &gone, "%v", err)
	// A made-up ID is gone too.
	_, err = api.PostToConnection(ctx(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("AAAAAAAAAAAAAAA="), Data: []byte("x")})
	require.ErrorAs(t, err, &gone, "%v", err)
}

// TestPayloadTooLarge posts one byte over API Gateway's 131072.
func TestPayloadTooLarge(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("sdk-test/1.0")
	api := e.client("prod", secretAccessKey)

	data := []byte(strings.Repeat("a", 131072))
	_, err := api.PostToConnection(ctx(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(c.id), Data: data})
	require.NoError(t, err)
	assert.Len(t, c.read(t), 131072)

	_, err = api.PostToConnection(ctx(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(c.id), Data: append(data, 'b')})
	var tooLarge *types.PayloadTooLargeException
	require.ErrorAs(t, err, &tooLarge, "%v", err)
	assert.NotEmpty(t, tooLarge.ErrorMessage())
}

// TestLimitExceeded fills the send queue of a client that never reads.
func TestLimitExceeded(t *testing.T) {
	e := newEnv(t, &wsroute.Options{SendQueueSize: 2})
	c := e.dial("sdk-test/1.0") // never reads again
	api := e.client("prod", secretAccessKey)
	data := []byte(strings.Repeat("x", 128<<10))
	deadline := time.Now().Add(wait)
	var err error
	for i := 0; err == nil && i < 10000 && time.Now().Before(deadline); i++ {
		_, err = api.PostToConnection(ctx(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(c.id), Data: data})
	}
	var limit *types.LimitExceededException
	require.ErrorAs(t, err, &limit, "%v", err)
}

// TestForbidden signs with a wrong secret and with an unknown key.
func TestForbidden(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("sdk-test/1.0")
	var forbidden *types.ForbiddenException

	_, err := e.client("prod", "wrong-secret").PostToConnection(ctx(t), &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(c.id), Data: []byte("x"),
	})
	require.ErrorAs(t, err, &forbidden, "%v", err)
	_, err = e.client("prod", "wrong-secret").GetConnection(ctx(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(c.id)})
	require.ErrorAs(t, err, &forbidden, "%v", err)
	_, err = e.client("prod", "wrong-secret").DeleteConnection(ctx(t), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(c.id)})
	require.ErrorAs(t, err, &forbidden, "%v", err)

	other := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		BaseEndpoint: aws.String(e.srv.URL + "/prod"),
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIAUNKNOWN", secretAccessKey, ""),
		HTTPClient:   &http.Client{Transport: e.transport},
	})
	_, err = other.PostToConnection(ctx(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(c.id), Data: []byte("x")})
	require.ErrorAs(t, err, &forbidden, "%v", err)

	// Nothing reached the client; the right secret still works.
	_, err = e.client("prod", secretAccessKey).PostToConnection(ctx(t), &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(c.id), Data: []byte("only this"),
	})
	require.NoError(t, err)
	assert.Equal(t, "only this", c.read(t))
}

// TestV4SignerDirectly signs raw requests with the SDK's v4 signer: the path
// forms "@" and "%40", and a presigned URL.
func TestV4SignerDirectly(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial("sdk-test/1.0")
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey}
	httpc := &http.Client{Transport: e.transport}
	enc := strings.ReplaceAll(c.id, "=", "%3D")

	for _, path := range []string{
		"/prod/%40connections/" + enc, // as awscurl sends it
		"/prod/@connections/" + enc,   // as the SDKs send it
		"/prod/%40connections/" + c.id,
		"/@connections/" + enc,
	} {
		t.Run(path, func(t *testing.T) {
			body := "signed " + path
			req, err := http.NewRequestWithContext(ctx(t), "POST", e.srv.URL+path, strings.NewReader(body))
			require.NoError(t, err)
			require.Equal(t, path, req.URL.EscapedPath(), "the path must go out as written")
			sum := sha256.Sum256([]byte(body))
			require.NoError(t, signer.SignHTTP(ctx(t), creds, req, hex.EncodeToString(sum[:]), "execute-api", region, time.Now()))
			resp, err := httpc.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
			assert.Equal(t, body, c.read(t))
		})
	}

	// The same signature sent to the other form of the path does not verify.
	req, err := http.NewRequestWithContext(ctx(t), "POST", e.srv.URL+"/prod/@connections/"+enc, strings.NewReader("x"))
	require.NoError(t, err)
	sum := sha256.Sum256([]byte("x"))
	require.NoError(t, signer.SignHTTP(ctx(t), creds, req, hex.EncodeToString(sum[:]), "execute-api", region, time.Now()))
	req.URL, err = url.Parse(e.srv.URL + "/prod/%40connections/" + enc)
	require.NoError(t, err)
	resp, err := httpc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "ForbiddenException", resp.Header.Get("X-Amzn-ErrorType"))

	// A presigned GET.
	req, err = http.NewRequestWithContext(ctx(t), "GET", e.srv.URL+"/prod/@connections/"+enc, nil)
	require.NoError(t, err)
	empty := sha256.Sum256(nil)
	q := req.URL.Query()
	q.Set("X-Amz-Expires", "60")
	req.URL.RawQuery = q.Encode()
	signed, _, err := signer.PresignHTTP(ctx(t), creds, req, hex.EncodeToString(empty[:]), "execute-api", region, time.Now())
	require.NoError(t, err)
	preq, err := http.NewRequestWithContext(ctx(t), "GET", signed, nil)
	require.NoError(t, err)
	resp, err = httpc.Do(preq)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	assert.Contains(t, string(b), `"connectedAt":"`)
}

// TestSDKErrorsAreTyped checks that errors.As works through the SDK's
// operation error wrapping for every shape the SDK models.
func TestSDKErrorsAreTyped(t *testing.T) {
	e := newEnv(t, nil)
	api := e.client("", secretAccessKey)
	_, err := api.GetConnection(ctx(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String("nope")})
	var gone *types.GoneException
	require.True(t, errors.As(err, &gone), "%v", err)
	assert.Equal(t, "GoneException", gone.ErrorCode())
}
