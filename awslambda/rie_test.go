package awslambda_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/awslambda"
	"github.com/wsroute/wsroute/awslambda/rie"
	"github.com/wsroute/wsroute/wsroutetest"
)

// rieEnv is a router whose every route is served by the Go test function
// (internal/testfunction) running under the Runtime Interface Emulator.
type rieEnv struct {
	srv           *wsroutetest.Server
	disconnectLog string
}

func newRIEEnv(t *testing.T, opts *awslambda.Options, env ...string) *rieEnv {
	t.Helper()
	log := filepath.Join(t.TempDir(), "disconnects.jsonl")
	e := startFunction(t, append(env, "DISCONNECT_LOG="+log)...)
	inv := awslambda.New(lambdaClient(t, e.URL), opts)
	h := inv.Handler(rie.FunctionName)
	r := wsroutetest.NewRouter(t, &wsroute.Options{Stage: "dev", APIID: "api1"})
	r.Handle(wsroute.RouteConnect, h)
	r.Handle(wsroute.RouteDefault, h)
	r.Handle(wsroute.RouteDisconnect, h)
	return &rieEnv{srv: wsroutetest.NewServer(t, r, nil), disconnectLog: log}
}

func (e *rieEnv) dial(t *testing.T) *wsroutetest.Client {
	c := wsroutetest.Dial(t, e.srv.URL, &wsroutetest.DialOptions{Header: http.Header{"User-Agent": {"rie-test/1.0"}}})
	c.Timeout = 20 * time.Second
	return c
}

// waitDisconnect waits until the function has logged the DISCONNECT event of
// connectionID, and returns it.
func (e *rieEnv) waitDisconnect(t *testing.T, connectionID string) events.APIGatewayWebsocketProxyRequest {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if f, err := os.Open(e.disconnectLog); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var ev events.APIGatewayWebsocketProxyRequest
				if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.RequestContext.ConnectionID == connectionID {
					f.Close()
					return ev
				}
			}
			f.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no $disconnect event for %s", connectionID)
	return events.APIGatewayWebsocketProxyRequest{}
}

// TestInvokeEmulator runs every route through the Invoke API of the real
// Lambda runtime stack: the Runtime Interface Emulator running a function
// built with aws-lambda-go.
func TestInvokeEmulator(t *testing.T) {
	e := newRIEEnv(t, &awslambda.Options{MaxConcurrency: 1})
	ctx := context.Background()

	t.Run("events reach the function as API Gateway sends them", func(t *testing.T) {
		c := e.dial(t)
		c.SendText(ctx, `{"action":"event","n":1}`)
		var first events.APIGatewayWebsocketProxyRequest
		require.NoError(t, json.Unmarshal(c.Next(ctx).Data, &first))
		rc := first.RequestContext
		assert.Equal(t, `{"action":"event","n":1}`, first.Body)
		assert.Equal(t, "$default", rc.RouteKey)
		assert.Equal(t, "MESSAGE", rc.EventType)
		assert.Equal(t, "IN", rc.MessageDirection)
		assert.Equal(t, "dev", rc.Stage)
		assert.Equal(t, "api1", rc.APIID)
		assert.Equal(t, strings.TrimPrefix(e.srv.HTTP.URL, "http://"), rc.DomainName)
		assert.Equal(t, "127.0.0.1", rc.Identity.SourceIP)
		assert.Equal(t, "rie-test/1.0", rc.Identity.UserAgent)
		assert.Len(t, rc.ConnectionID, 16)
		assert.Len(t, rc.MessageID, 16)
		assert.Equal(t, rc.RequestID, rc.ExtendedRequestID)
		assert.NotZero(t, rc.ConnectedAt)
		assert.GreaterOrEqual(t, rc.RequestTimeEpoch, rc.ConnectedAt)
		assert.Nil(t, first.Headers, "MESSAGE events carry no headers")

		c.SendText(ctx, `{"action":"event","n":2}`)
		var second events.APIGatewayWebsocketProxyRequest
		require.NoError(t, json.Unmarshal(c.Next(ctx).Data, &second))
		assert.Equal(t, rc.ConnectionID, second.RequestContext.ConnectionID)
		assert.NotEqual(t, rc.MessageID, second.RequestContext.MessageID)

		c.Close(4001, "bye")
		ev := e.waitDisconnect(t, rc.ConnectionID)
		assert.Equal(t, "DISCONNECT", ev.RequestContext.EventType)
		assert.Equal(t, int64(4001), ev.RequestContext.DisconnectStatusCode)
		require.NotNil(t, ev.RequestContext.DisconnectReason)
		assert.Equal(t, "bye", *ev.RequestContext.DisconnectReason)
	})

	t.Run("a function error gives the Internal server error frame, and the connection stays", func(t *testing.T) {
		c := e.dial(t)
		c.SendText(ctx, `{"action":"fail"}`)
		c.ExpectInternalServerError(ctx)
		c.SendText(ctx, `{"action":"invalid"}`)
		c.ExpectInternalServerError(ctx)
		c.SendText(ctx, `{"action":"null"}`)
		c.SendText(ctx, `{"action":"sleep","ms":1}`)
		c.ExpectText(ctx, "slept") // null sent nothing back
	})

	t.Run("$connect refused by the function's status", func(t *testing.T) {
		resp := wsroutetest.DialRefused(t, e.srv.URL, &wsroutetest.DialOptions{Query: url.Values{"status": {"403"}}})
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		body, _ := io.ReadAll(resp.Body)
		assert.Equal(t, "refused by the function", string(body))
	})

	t.Run("$connect refused with 502 when the function fails", func(t *testing.T) {
		resp := wsroutetest.DialRefused(t, e.srv.URL, &wsroutetest.DialOptions{Query: url.Values{"fail": {""}}})
		assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		body, _ := io.ReadAll(resp.Body)
		assert.JSONEq(t, `{"message":"Internal server error"}`, string(body))
	})

	t.Run("MaxConcurrency keeps concurrent events from crashing the emulator", func(t *testing.T) {
		// The emulator has one execution environment and dies on a second
		// concurrent invocation; with MaxConcurrency 1 every event waits
		// for its turn and succeeds.
		const n = 4
		clients := make([]*wsroutetest.Client, n)
		for i := range clients {
			clients[i] = e.dial(t)
		}
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Go(func() { c.SendText(ctx, `{"action":"sleep","ms":150}`) })
		}
		wg.Wait()
		for _, c := range clients {
			c.ExpectText(ctx, "slept")
		}
	})
}

// TestInvokeEmulatorTimeouts: a function that outlives its own timeout is a
// function error (502), one that outlives the integration timeout is 504.
func TestInvokeEmulatorTimeouts(t *testing.T) {
	ctx := context.Background()
	t.Run("function timeout", func(t *testing.T) {
		e := newRIEEnv(t, &awslambda.Options{MaxConcurrency: 1}, "AWS_LAMBDA_FUNCTION_TIMEOUT=1")
		c := e.dial(t)
		c.SendText(ctx, `{"action":"sleep","ms":3000}`)
		c.ExpectInternalServerError(ctx)
		c.SendText(ctx, `{"action":"sleep","ms":1}`)
		c.ExpectText(ctx, "slept")
	})
	// The emulator dies when a caller gives up on an invocation, so each
	// integration timeout gets an emulator of its own.
	t.Run("integration timeout on a message route", func(t *testing.T) {
		e := newRIEEnv(t, &awslambda.Options{MaxConcurrency: 1, Timeout: time.Second})
		c := e.dial(t)
		c.SendText(ctx, `{"action":"sleep","ms":3000}`)
		f, ok := wsroutetest.ParseErrorFrame(c.Next(ctx).Data)
		require.True(t, ok)
		assert.Equal(t, "Endpoint request timed out", f.Message)
		c.Close(websocket.StatusNormalClosure, "")
	})
	t.Run("integration timeout on $connect", func(t *testing.T) {
		e := newRIEEnv(t, &awslambda.Options{MaxConcurrency: 1, Timeout: time.Second})
		resp := wsroutetest.DialRefused(t, e.srv.URL, &wsroutetest.DialOptions{Query: url.Values{"sleep": {"3000"}}})
		assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
		body, _ := io.ReadAll(resp.Body)
		assert.JSONEq(t, `{"message":"Endpoint request timed out"}`, string(body))
	})
}
