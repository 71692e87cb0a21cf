package sdk_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// Callers of the IAM tests. Each is in the router's credentials table but
// tempKey, which IAMAuth.Lookup finds, as a credentials broker would.
const (
	iamKey       = "AKIAWSROUTEIAMTEST01"
	iamSecret    = "iam/test+secret/0123456789abcdefghijklmn"
	tempKey      = "ASIAWSROUTETEMPKEY01"
	tempSecret   = "temporary/secret/0123456789abcdefghijklm"
	tempToken    = "FwoGZXIvYXdzEXAMPLEsessionTOKEN/+=="
	deniedKey    = "AKIAWSROUTEDENIED001"
	otherKey     = "AKIAWSROUTEOTHER0001"
	refusedByFn  = "AKIAWSROUTEREFUSED01"
	routesKey    = "AKIAWSROUTEROUTES001"
	brokenKey    = "AKIAWSROUTEBROKEN001"
	iamRegion    = "eu-west-1"
	iamAPIID     = "abcdef1234"
	iamStage     = "prod"
	iamAccountID = "123456789012"
)

var emptySHA256 = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

// iamClock is the router's clock, which the tests move past expiries.
type iamClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *iamClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *iamClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *iamClock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }

type iamEnv struct {
	srv      *httptest.Server
	clock    *iamClock
	connects chan *wsroute.Request
	events   chan *wsroute.Request
}

func newIAMEnv(t *testing.T) *iamEnv {
	t.Helper()
	e := &iamEnv{clock: &iamClock{t: time.Now().Truncate(time.Second)}, connects: make(chan *wsroute.Request, 64), events: make(chan *wsroute.Request, 64)}
	denyConnect, err := wsroute.ParsePolicy([]byte(`{"Version": "2012-10-17", "Statement": [
		{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:` + iamAPIID + `/prod/*"},
		{"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:*/*/$connect"}]}`))
	require.NoError(t, err)
	otherStage, err := wsroute.ParsePolicy([]byte(`{"Statement": {"Effect": "Allow", "Action": "execute-api:*",
		"Resource": "arn:aws:execute-api:eu-west-1:123456789012:` + iamAPIID + `/dev/*"}}`))
	require.NoError(t, err)
	onlyThisAPI, err := wsroute.ParsePolicy([]byte(`{"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke",
		"Resource": "arn:aws:execute-api:eu-west-?:123456789012:` + iamAPIID + `/*/$connect"}]}`))
	require.NoError(t, err)

	// The example of AWS's "Control access to WebSocket APIs with IAM
	// authorization": every route of the prod stage but "secret".
	awsExample, err := wsroute.ParsePolicy([]byte(`{"Version": "2012-10-17", "Statement": [
		{"Effect": "Allow", "Action": ["execute-api:Invoke"], "Resource": ["arn:aws:execute-api:eu-west-1:123456789012:` + iamAPIID + `/prod/*"]},
		{"Effect": "Deny", "Action": ["execute-api:Invoke"], "Resource": ["arn:aws:execute-api:eu-west-1:123456789012:` + iamAPIID + `/prod/secret"]},
		{"Effect": "Deny", "Action": ["execute-api:ManageConnections"], "Resource": ["arn:aws:execute-api:eu-west-1:123456789012:` + iamAPIID + `/*"]}]}`))
	require.NoError(t, err)

	r, err := wsroute.New(&wsroute.Options{
		Stage: iamStage, APIID: iamAPIID,
		IAM: &wsroute.IAMAuth{
			Region:    iamRegion,
			AccountID: iamAccountID,
			Now:       e.clock.now,
			Credentials: map[string]wsroute.IAMCredential{
				iamKey: {SecretAccessKey: iamSecret, AccountID: iamAccountID, Caller: "AIDAEXAMPLECALLER",
					User: "AIDAEXAMPLECALLER", UserARN: "arn:aws:iam::123456789012:user/alice", Policy: onlyThisAPI},
				deniedKey:   {SecretAccessKey: iamSecret, UserARN: "arn:aws:iam::123456789012:user/mallory", Policy: denyConnect},
				otherKey:    {SecretAccessKey: iamSecret, UserARN: "arn:aws:iam::123456789012:user/bob", Policy: otherStage},
				refusedByFn: {SecretAccessKey: iamSecret},
				routesKey:   {SecretAccessKey: iamSecret, Policy: awsExample},
			},
			Lookup: func(_ context.Context, id string) (*wsroute.IAMCredential, error) {
				if id == brokenKey {
					return nil, errors.New("the credentials database is down")
				}
				if id != tempKey {
					return nil, nil
				}
				return &wsroute.IAMCredential{SecretAccessKey: tempSecret, SessionToken: tempToken, AccountID: iamAccountID,
					Caller: "AROAEXAMPLE:CognitoIdentityCredentials", UserARN: "arn:aws:sts::123456789012:assumed-role/Cognito_Unauth/CognitoIdentityCredentials",
					CognitoIdentityID: "eu-west-1:1111-2222", CognitoIdentityPoolID: "eu-west-1:pool-3333",
					CognitoAuthenticationType: "unauthenticated"}, nil
			},
			Authorize: func(_ context.Context, c *wsroute.IAMCaller, arn string) error {
				if c.AccessKeyID == refusedByFn {
					return wsroute.ErrAccessDenied
				}
				if want := "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/$connect"; arn != want {
					return errors.New("unexpected ARN " + arn)
				}
				return nil
			},
		},
	})
	require.NoError(t, err)
	r.HandleFunc(wsroute.RouteConnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		e.connects <- req
		return nil, nil
	})
	r.HandleFunc("whoami", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		e.events <- req
		return &wsroute.Response{Body: req.RequestContext.ConnectionID}, nil
	})
	r.HandleFunc("secret", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		e.events <- req
		return &wsroute.Response{Body: "the secret"}, nil
	})
	r.HandleFunc(wsroute.RouteDisconnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		e.events <- req
		return nil, nil
	})
	mux := http.NewServeMux()
	mux.Handle("/ws", r)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = r.Shutdown(ctx)
		e.srv.Close()
	})
	return e
}

// presign presigns the upgrade URL with the SDK's v4 signer, valid for
// expires from signedAt, and returns it as a ws:// URL.
func (e *iamEnv) presign(t *testing.T, creds aws.Credentials, payloadHash, service, region string, signedAt time.Time, expires string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/ws?X-Amz-Expires="+expires, nil)
	require.NoError(t, err)
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, payloadHash, service, region, signedAt)
	require.NoError(t, err)
	return "ws" + strings.TrimPrefix(u, "http")
}

// signHeaders signs the upgrade request in its headers with the SDK's v4
// signer and returns the headers to send.
func (e *iamEnv) signHeaders(t *testing.T, creds aws.Credentials, service, region string, signedAt time.Time) http.Header {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/ws", nil)
	require.NoError(t, err)
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), creds, req, emptySHA256, service, region, signedAt))
	h := http.Header{}
	for _, k := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
		if v := req.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	return h
}

// upgrade dials; on refusal it returns the status, error type and body.
func upgrade(t *testing.T, url string, h http.Header) (*websocket.Conn, int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
		return c, http.StatusSwitchingProtocols, "", ""
	}
	require.NotNil(t, resp, "dial: %v", err)
	b, _ := io.ReadAll(resp.Body)
	return nil, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), string(b)
}

func creds(id, secret, token string) aws.Credentials {
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: token}
}

const msgMismatch = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// TestIAMUpgradesSignedByTheGoSDK: presigned URLs (with the empty body's hash
// and with UNSIGNED-PAYLOAD) and header-signed upgrades are accepted; every
// wrong one is refused with 403 and API Gateway's body, before $connect.
func TestIAMUpgradesSignedByTheGoSDK(t *testing.T) {
	e := newIAMEnv(t)
	now := e.clock.now()
	good := creds(iamKey, iamSecret, "")

	accepted := map[string]func() (string, http.Header){
		"presigned, empty body's hash": func() (string, http.Header) {
			return e.presign(t, good, emptySHA256, "execute-api", iamRegion, now, "60"), nil
		},
		"presigned, UNSIGNED-PAYLOAD": func() (string, http.Header) {
			return e.presign(t, good, "UNSIGNED-PAYLOAD", "execute-api", iamRegion, now, "60"), nil
		},
		"header-signed": func() (string, http.Header) {
			return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws", e.signHeaders(t, good, "execute-api", iamRegion, now)
		},
		"temporary credentials from Lookup, presigned": func() (string, http.Header) {
			return e.presign(t, creds(tempKey, tempSecret, tempToken), emptySHA256, "execute-api", iamRegion, now, "60"), nil
		},
		"temporary credentials from Lookup, header-signed": func() (string, http.Header) {
			return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws", e.signHeaders(t, creds(tempKey, tempSecret, tempToken), "execute-api", iamRegion, now)
		},
	}
	for name, mk := range accepted {
		t.Run(name, func(t *testing.T) {
			url, h := mk()
			c, status, _, body := upgrade(t, url, h)
			require.Equal(t, http.StatusSwitchingProtocols, status, body)
			<-e.connects
			c.CloseNow()
		})
	}

	wsBase := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws"
	valid := e.presign(t, good, emptySHA256, "execute-api", iamRegion, now, "60")
	refused := []struct {
		name      string
		url       string
		h         http.Header
		errorType string
		key, msg  string
	}{
		{"unsigned", wsBase, nil, "MissingAuthenticationTokenException", "message", "Missing Authentication Token"},
		{"wrong secret", e.presign(t, creds(iamKey, "wrong", ""), emptySHA256, "execute-api", iamRegion, now, "60"), nil,
			"InvalidSignatureException", "message", msgMismatch},
		{"unknown key", e.presign(t, creds("AKIAUNKNOWN000000000", iamSecret, ""), emptySHA256, "execute-api", iamRegion, now, "60"), nil,
			"InvalidSignatureException", "message", msgMismatch},
		{"wrong secret, header-signed", wsBase, e.signHeaders(t, creds(iamKey, "wrong", ""), "execute-api", iamRegion, now),
			"InvalidSignatureException", "message", msgMismatch},
		{"expired", e.presign(t, good, emptySHA256, "execute-api", iamRegion, now.Add(-2*time.Minute), "60"), nil,
			"InvalidSignatureException", "message", "Signature expired: X-Amz-Date is outside the allowed clock skew, or the presigned URL has expired."},
		{"header-signed 6 minutes ago", wsBase, e.signHeaders(t, good, "execute-api", iamRegion, now.Add(-6*time.Minute)),
			"InvalidSignatureException", "message", "Signature expired: X-Amz-Date is outside the allowed clock skew, or the presigned URL has expired."},
		{"wrong service", e.presign(t, good, emptySHA256, "s3", iamRegion, now, "60"), nil,
			"InvalidSignatureException", "message", "Credential should be scoped to correct service: 'execute-api'. "},
		{"wrong region", e.presign(t, good, emptySHA256, "execute-api", "us-east-1", now, "60"), nil,
			"InvalidSignatureException", "message", "Credential should be scoped to a valid region. "},
		{"tampered query: a parameter added", valid + "&admin=true", nil, "InvalidSignatureException", "message", msgMismatch},
		{"tampered query: expiry extended", strings.Replace(valid, "X-Amz-Expires=60", "X-Amz-Expires=600", 1), nil,
			"InvalidSignatureException", "message", msgMismatch},
		{"no expiry", e.presignNoExpiry(t, good, now), nil, "IncompleteSignatureException", "message",
			"Authorization header or presigned URL is not a well-formed AWS4-HMAC-SHA256 signature."},
		{"wrong session token", e.presign(t, creds(tempKey, tempSecret, "forged"), emptySHA256, "execute-api", iamRegion, now, "60"), nil,
			"UnrecognizedClientException", "message", "The security token included in the request is invalid."},
		{"temporary credentials without their token", e.presign(t, creds(tempKey, tempSecret, ""), emptySHA256, "execute-api", iamRegion, now, "60"), nil,
			"UnrecognizedClientException", "message", "The security token included in the request is invalid."},
		{"a token with long-term credentials", e.presign(t, creds(iamKey, iamSecret, "token"), emptySHA256, "execute-api", iamRegion, now, "60"), nil,
			"UnrecognizedClientException", "message", "The security token included in the request is invalid."},
		{"policy: explicit deny over allow", e.presign(t, creds(deniedKey, iamSecret, ""), emptySHA256, "execute-api", iamRegion, now, "60"), nil,
			"AccessDeniedException", "Message", "User: arn:aws:iam::123456789012:user/mallory is not authorized to perform: execute-api:Invoke " +
				"on resource: arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/$connect with an explicit deny"},
		{"policy: allowed on another stage only", e.presign(t, creds(otherKey, iamSecret, ""), emptySHA256, "execute-api", iamRegion, now, "60"), nil,
			"AccessDeniedException", "Message", "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: execute-api:Invoke " +
				"on resource: arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/$connect"},
		{"Authorize refuses", e.presign(t, creds(refusedByFn, iamSecret, ""), emptySHA256, "execute-api", iamRegion, now, "60"), nil,
			"AccessDeniedException", "Message", "User: " + refusedByFn + " is not authorized to perform: execute-api:Invoke " +
				"on resource: arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/$connect"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, status, errorType, body := upgrade(t, tt.url, tt.h)
			assert.Equal(t, http.StatusForbidden, status)
			assert.Equal(t, tt.errorType, errorType)
			want, _ := json.Marshal(map[string]string{tt.key: tt.msg})
			assert.JSONEq(t, string(want), body)
		})
	}

	// A Lookup that fails is the server's fault: 500, and no $connect.
	_, status, errorType, body := upgrade(t, e.presign(t, creds(brokenKey, iamSecret, ""), emptySHA256, "execute-api", iamRegion, now, "60"), nil)
	assert.Equal(t, http.StatusInternalServerError, status)
	assert.Equal(t, "InternalServerErrorException", errorType)
	assert.JSONEq(t, `{"message":"Internal server error"}`, body)

	// Replayed after expiry: the URL that worked is refused once the
	// server's clock passes X-Amz-Date + X-Amz-Expires.
	c, status, _, body := upgrade(t, valid, nil)
	require.Equal(t, http.StatusSwitchingProtocols, status, body)
	<-e.connects
	c.CloseNow()
	e.clock.add(60 * time.Second)
	c, status, _, body = upgrade(t, valid, nil)
	require.Equal(t, http.StatusSwitchingProtocols, status, "valid through its last second: %s", body)
	<-e.connects
	c.CloseNow()
	e.clock.add(time.Second)
	_, status, errorType, _ = upgrade(t, valid, nil)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, "InvalidSignatureException", errorType)

	assert.Empty(t, e.connects, "$connect ran for a refused upgrade")
}

func (e *iamEnv) presignNoExpiry(t *testing.T, c aws.Credentials, at time.Time) string {
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/ws", nil)
	require.NoError(t, err)
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), c, req, emptySHA256, "execute-api", iamRegion, at)
	require.NoError(t, err)
	return "ws" + strings.TrimPrefix(u, "http")
}

// TestIAMIdentityOnEveryEvent: what API Gateway fills in for IAM callers
// appears on $connect, on messages and on $disconnect.
func TestIAMIdentityOnEveryEvent(t *testing.T) {
	e := newIAMEnv(t)
	c, status, _, body := upgrade(t, e.presign(t, creds(tempKey, tempSecret, tempToken), emptySHA256, "execute-api", iamRegion, e.clock.now(), "60"), nil)
	require.Equal(t, http.StatusSwitchingProtocols, status, body)
	require.NoError(t, c.Write(ctx(t), websocket.MessageText, []byte(`{"action":"whoami"}`)))
	_, _, err := c.Read(ctx(t))
	require.NoError(t, err)
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	evs := []*wsroute.Request{<-e.connects, <-e.events, <-e.events}
	for _, ev := range evs {
		raw, err := json.Marshal(ev)
		require.NoError(t, err)
		var got struct {
			RequestContext struct {
				Identity map[string]string `json:"identity"`
			} `json:"requestContext"`
		}
		require.NoError(t, json.Unmarshal(raw, &got))
		assert.Equal(t, map[string]string{
			"sourceIp":                  "127.0.0.1",
			"userAgent":                 got.RequestContext.Identity["userAgent"],
			"accessKey":                 tempKey,
			"accountId":                 iamAccountID,
			"caller":                    "AROAEXAMPLE:CognitoIdentityCredentials",
			"userArn":                   "arn:aws:sts::123456789012:assumed-role/Cognito_Unauth/CognitoIdentityCredentials",
			"cognitoIdentityId":         "eu-west-1:1111-2222",
			"cognitoIdentityPoolId":     "eu-west-1:pool-3333",
			"cognitoAuthenticationType": "unauthenticated",
		}, got.RequestContext.Identity, ev.RequestContext.EventType)
	}
}

// botocoreScript presigns the upgrade URL with botocore's SigV4QueryAuth,
// once right and once for each mistake, one URL a line.
const botocoreScript = `
import os
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

def presign(url, key, secret, service, region, token=None):
    req = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(Credentials(key, secret, token), service, region, expires=60).add_auth(req)
    return req.url

http, https = os.environ["URL"], os.environ["URL"].replace("http://", "https://")
k, s, r = os.environ["KEY_ID"], os.environ["SECRET"], os.environ["REGION"]
print(presign(http, k, s, "execute-api", r))
print(presign(https, k, s, "execute-api", r))
print(presign(http, os.environ["TEMP_KEY_ID"], os.environ["TEMP_SECRET"], "execute-api", r, os.environ["TEMP_TOKEN"]))
print(presign(http, k, "wrong", "execute-api", r))
print(presign(http, k, s, "s3", r))
print(presign(http, k, s, "execute-api", "us-east-1"))
`

// TestIAMUpgradesPresignedByBotocore: URLs presigned by Python's botocore
// (SigV4QueryAuth, over http and https, long-term and temporary
// credentials) connect; the wrong ones are refused. It needs a python3 with
// botocore (Debian: python3-boto3, which .ci/install-packages installs);
// without one it skips on a developer's machine and fails in CI.
func TestIAMUpgradesPresignedByBotocore(t *testing.T) {
	python := pythonWithBoto3()
	if python == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no python3 with botocore, and CI must not skip: apt-get install python3-boto3")
		}
		t.Skip("no python3 with botocore (Debian: apt-get install python3-boto3)")
	}
	e := newIAMEnv(t)
	script := filepath.Join(t.TempDir(), "presign.py")
	require.NoError(t, os.WriteFile(script, []byte(botocoreScript), 0o600))
	cmd := exec.CommandContext(ctx(t), python, script)
	cmd.Env = append(os.Environ(), "URL="+e.srv.URL+"/ws", "KEY_ID="+iamKey, "SECRET="+iamSecret, "REGION="+iamRegion,
		"TEMP_KEY_ID="+tempKey, "TEMP_SECRET="+tempSecret, "TEMP_TOKEN="+tempToken)
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	urls := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, urls, 6)
	toWS := func(u string) string {
		u = strings.Replace(u, "https://", "http://", 1)
		return "ws" + strings.TrimPrefix(u, "http")
	}
	for i, name := range []string{"http", "https", "temporary credentials"} {
		c, status, _, body := upgrade(t, toWS(urls[i]), nil)
		require.Equal(t, http.StatusSwitchingProtocols, status, "%s: %s", name, body)
		<-e.connects
		c.CloseNow()
	}
	for i, want := range []string{msgMismatch, "Credential should be scoped to correct service: 'execute-api'. ",
		"Credential should be scoped to a valid region. "} {
		_, status, _, body := upgrade(t, toWS(urls[3+i]), nil)
		assert.Equal(t, http.StatusForbidden, status)
		assert.JSONEq(t, `{"message":`+strconvQuote(want)+`}`, body)
	}
	// Replayed after its expiry (botocore signed with its own clock).
	u, err := url.Parse(urls[0])
	require.NoError(t, err)
	signedAt, err := time.Parse("20060102T150405Z", u.Query().Get("X-Amz-Date"))
	require.NoError(t, err)
	e.clock.set(signedAt.Add(61 * time.Second))
	_, status, _, _ := upgrade(t, toWS(urls[0]), nil)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Empty(t, e.connects, "$connect ran for a refused upgrade")
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestIAMPolicyOnEveryRoute: the caller's policy is evaluated on each
// message's route ARN, as in AWS's example that denies one route.
func TestIAMPolicyOnEveryRoute(t *testing.T) {
	e := newIAMEnv(t)
	c, status, _, body := upgrade(t, e.presign(t, creds(routesKey, iamSecret, ""), emptySHA256, "execute-api", iamRegion, e.clock.now(), "60"), nil)
	require.Equal(t, http.StatusSwitchingProtocols, status, body)
	<-e.connects
	ask := func(msg string) string {
		require.NoError(t, c.Write(ctx(t), websocket.MessageText, []byte(msg)))
		_, b, err := c.Read(ctx(t))
		require.NoError(t, err)
		return string(b)
	}
	assert.Len(t, ask(`{"action":"whoami"}`), 16, "an allowed route answers with the connection ID")
	var frame map[string]string
	require.NoError(t, json.Unmarshal([]byte(ask(`{"action":"secret"}`)), &frame))
	assert.Equal(t, "Forbidden", frame["message"], "the denied route")
	assert.Len(t, frame["requestId"], 16)
	assert.Len(t, ask(`{"action":"whoami"}`), 16, "the connection stays open")
	ev := <-e.events
	assert.Equal(t, "whoami", ev.RequestContext.RouteKey)
	ev = <-e.events
	assert.Equal(t, "whoami", ev.RequestContext.RouteKey, "the secret route never ran")
}

// TestIAMWithUsagePlan: an IAM-signed upgrade that also carries an API key
// is verified, then metered; its events carry both identities.
func TestIAMWithUsagePlan(t *testing.T) {
	plans := &wsroute.UsagePlans{}
	require.NoError(t, plans.PutPlan(wsroute.UsagePlan{ID: "p", Quota: &wsroute.QuotaSettings{Limit: 2, Period: wsroute.QuotaMonth}}))
	require.NoError(t, plans.AddKey(wsroute.APIKey{ID: "k1", Value: "key-0123456789abcdefghij", PlanID: "p"}))
	r, err := wsroute.New(&wsroute.Options{
		IAM:        &wsroute.IAMAuth{Credentials: map[string]wsroute.IAMCredential{iamKey: {SecretAccessKey: iamSecret}}},
		UsagePlans: plans,
	})
	require.NoError(t, err)
	r.HandleFunc("whoami", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		id := req.RequestContext.Identity
		return &wsroute.Response{Body: id.AccessKey + " " + id.APIKeyID}, nil
	})
	srv := httptest.NewServer(r)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = r.Shutdown(ctx)
		srv.Close()
	})
	e := &iamEnv{srv: srv}
	key := http.Header{"X-Api-Key": {"key-0123456789abcdefghij"}}

	// Signed but without the key: 403 Forbidden; unsigned with the key:
	// the signature is checked first.
	_, status, _, body := upgrade(t, e.presign(t, creds(iamKey, iamSecret, ""), emptySHA256, "execute-api", iamRegion, time.Now(), "60"), nil)
	assert.Equal(t, http.StatusForbidden, status)
	assert.JSONEq(t, `{"message":"Forbidden"}`, body)
	_, status, errorType, _ := upgrade(t, "ws"+strings.TrimPrefix(srv.URL, "http"), key)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, "MissingAuthenticationTokenException", errorType)

	c, status, _, body := upgrade(t, e.presign(t, creds(iamKey, iamSecret, ""), emptySHA256, "execute-api", iamRegion, time.Now(), "60"), key)
	require.Equal(t, http.StatusSwitchingProtocols, status, body)
	require.NoError(t, c.Write(ctx(t), websocket.MessageText, []byte(`{"action":"whoami"}`)))
	_, got, err := c.Read(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, iamKey+" k1", string(got))
	require.NoError(t, c.Write(ctx(t), websocket.MessageText, []byte(`{"action":"whoami"}`)))
	_, got, err = c.Read(ctx(t))
	require.NoError(t, err)
	assert.Contains(t, string(got), `{"message": "Limit Exceeded", "connectionId":"`)
}
