package wsroute_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// writeFrames sends one text message as the given frames, in order.
func writeFrames(t *testing.T, c *websocket.Conn, frames ...[]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	w, err := c.Writer(ctx, websocket.MessageText)
	require.NoError(t, err)
	for _, f := range frames {
		_, err := w.Write(f) // coder/websocket writes one frame per Write
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
}

// quotaRouter serves an echo $default and records $disconnect.
func quotaRouter(t *testing.T, q *wsroute.Quotas) (*wsroute.Router, *recorder) {
	t.Helper()
	r := newRouter(t, &wsroute.Options{Quotas: q})
	r.HandleFunc(wsroute.RouteDefault, echo)
	rec := newRecorder()
	r.Handle(wsroute.RouteDisconnect, rec)
	return r, rec
}

func TestQuotaFrameSize(t *testing.T) {
	const kb32 = 32 << 10
	r, rec := quotaRouter(t, &wsroute.Quotas{})
	srv := serve(t, r)

	c := dial(t, srv, nil)
	c.SetReadLimit(-1)
	at := strings.Repeat("a", kb32)
	send(t, c, at) // one frame of exactly 32 KB
	assert.Len(t, read(t, c), kb32)

	// 128 KB in four frames of 32 KB: the message quota, reached exactly.
	chunk := []byte(at)
	writeFrames(t, c, chunk, chunk, chunk, chunk)
	assert.Len(t, read(t, c), 4*kb32)

	// One byte over, in one frame: closed with 1009, as API Gateway does.
	send(t, c, at+"b")
	ce := readClose(t, c)
	assert.Equal(t, websocket.StatusMessageTooBig, ce.Code)
	ev := rec.next(t)
	assert.Equal(t, 1009, ev.RequestContext.DisconnectStatusCode)
	assert.Equal(t, "Message too big", ev.RequestContext.DisconnectReason)

	// A frame of 32 KB + 1 after frames within the quota, in one message.
	c2 := dial(t, srv, nil)
	writeFrames(t, c2, []byte("x"), []byte(at+"b"))
	assert.Equal(t, websocket.StatusMessageTooBig, readClose(t, c2).Code)
	assert.Equal(t, 1009, rec.next(t).RequestContext.DisconnectStatusCode)

	// 128 KB + 1 in frames within the frame quota: the message quota.
	c3 := dial(t, srv, nil)
	writeFrames(t, c3, chunk, chunk, chunk, chunk, []byte("b"))
	assert.Equal(t, websocket.StatusMessageTooBig, readClose(t, c3).Code)
	assert.Equal(t, 1009, rec.next(t).RequestContext.DisconnectStatusCode)
}

func TestWithoutQuotasLargeFramesPass(t *testing.T) {
	r, _ := quotaRouter(t, nil)
	srv := serve(t, r)
	c := dial(t, srv, nil)
	c.SetReadLimit(-1)
	big := strings.Repeat("a", 100<<10) // one frame of 100 KB
	send(t, c, big)
	assert.Len(t, read(t, c), len(big))
}

func TestQuotaURLLength(t *testing.T) {
	r, _ := quotaRouter(t, &wsroute.Quotas{})
	srv := serve(t, r)
	host := strings.TrimPrefix(srv.URL, "http://")
	// wss://host + "/?q=" + padding, counted as API Gateway counts the URL.
	urlOfLength := func(n int) string {
		pad := n - len("wss://"+host+"/?q=")
		return wsURL(srv) + "/?q=" + strings.Repeat("x", pad)
	}
	status, _ := dialStatus(t, urlOfLength(4096), nil)
	assert.Equal(t, 101, status)
	status, body := dialStatus(t, urlOfLength(4097), nil)
	assert.Equal(t, 414, status)
	assert.JSONEq(t, `{"message":"Request-URI Too Long"}`, body)
}

func TestQuotaAuthorizerResultSize(t *testing.T) {
	// {"principalId":"p","context":{"k":"…"}} is 35 bytes plus the value.
	const overhead = len(`{"principalId":"p","context":{"k":""}}`)
	r := newRouter(t, &wsroute.Options{
		Quotas: &wsroute.Quotas{},
		Authorizer: func(ctx context.Context, req *wsroute.Request) (*wsroute.AuthorizerResult, error) {
			n, _ := strconv.Atoi(req.QueryStringParameters["size"])
			return &wsroute.AuthorizerResult{PrincipalID: "p", Context: map[string]any{"k": strings.Repeat("v", n-overhead)}}, nil
		},
	})
	srv := serve(t, r)
	status, _ := dialStatus(t, wsURL(srv)+"?size=8192", nil)
	assert.Equal(t, 101, status)
	status, body := dialStatus(t, wsURL(srv)+"?size=8193", nil)
	assert.Equal(t, 500, status)
	assert.JSONEq(t, `{"message":"Internal server error"}`, body)
}

func TestQuotaIntegrationTimeout(t *testing.T) {
	r := newRouter(t, &wsroute.Options{Quotas: &wsroute.Quotas{IntegrationTimeout: 300 * time.Millisecond}})
	slow := func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		if req.RequestContext.EventType == wsroute.EventConnect && req.QueryStringParameters["slow"] == "" {
			return nil, nil
		}
		<-ctx.Done() // the deadline the quota set
		return &wsroute.Response{StatusCode: 200, Body: "too late"}, nil
	}
	r.HandleFunc(wsroute.RouteConnect, slow)
	r.HandleFunc("slow", slow)
	whoamiRoute(r)
	srv := serve(t, r)

	status, body := dialStatus(t, wsURL(srv)+"?slow=1", nil)
	assert.Equal(t, 504, status)
	assert.JSONEq(t, `{"message":"Endpoint request timed out"}`, body)

	c := dial(t, srv, nil)
	send(t, c, `{"action":"whoami"}`)
	id := read(t, c)
	send(t, c, `{"action":"slow"}`)
	assert.Regexp(t, `^\{"message": "Endpoint request timed out", "connectionId":"`+id+`", "requestId":"[^"]+"\}$`, read(t, c))
	send(t, c, `{"action":"whoami"}`)
	assert.Equal(t, id, read(t, c))
}

func TestQuotaIntegrationTimeoutDefaultIs29s(t *testing.T) {
	r := newRouter(t, &wsroute.Options{Quotas: &wsroute.Quotas{}})
	r.HandleFunc("deadline", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		d, ok := ctx.Deadline()
		if !ok {
			return &wsroute.Response{Body: "none"}, nil
		}
		return &wsroute.Response{Body: fmt.Sprint(time.Until(d).Round(time.Second))}, nil
	})
	srv := serve(t, r)
	c := dial(t, srv, nil)
	send(t, c, `{"action":"deadline"}`)
	assert.Equal(t, "29s", read(t, c))
}

func TestQuotaRoutes(t *testing.T) {
	r := newRouter(t, &wsroute.Options{Quotas: &wsroute.Quotas{}})
	r.HandleFunc(wsroute.RouteDefault, echo)
	for i := 2; i <= 300; i++ {
		r.HandleFunc(fmt.Sprintf("r%d", i), echo)
	}
	assert.PanicsWithValue(t, "wsroute: route 301 is over the quota of 300 routes per API", func() {
		r.HandleFunc("r301", echo)
	})
	// Without quotas there is no such limit.
	r2 := newRouter(t, nil)
	for i := 1; i <= 301; i++ {
		r2.HandleFunc(fmt.Sprintf("r%d", i), echo)
	}
}

func TestQuotasRejectNegativeValues(t *testing.T) {
	_, err := wsroute.New(&wsroute.Options{Quotas: &wsroute.Quotas{FrameSize: -1}})
	require.Error(t, err)
}

func TestQuotaPostSize(t *testing.T) {
	r, _ := quotaRouter(t, &wsroute.Quotas{MessageSize: 1000})
	whoamiRoute(r)
	srv := serve(t, r)
	c := dial(t, srv, nil)
	send(t, c, `{"action":"whoami"}`)
	id := read(t, c)
	ctx := context.Background()
	require.NoError(t, r.Connections().PostToConnection(ctx, id, []byte(strings.Repeat("p", 1000))))
	assert.Len(t, read(t, c), 1000)
	assert.ErrorIs(t, r.Connections().PostToConnection(ctx, id, []byte(strings.Repeat("p", 1001))), wsroute.ErrPayloadTooLarge)
}
