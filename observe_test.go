package wsroute_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// callLog is an Observer that writes down every call, in order, per
// connection state.
type callLog struct {
	mu    sync.Mutex
	n     int
	calls map[int][]string // by state
	mgmt  []string
}

type logState struct{ n int }

func (l *callLog) add(state any, s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := state.(*logState).n
	l.calls[k] = append(l.calls[k], s)
}

func (l *callLog) get(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls[n]...)
}

type spanKey struct{}

func (l *callLog) Upgrade(ctx context.Context, req *http.Request) (context.Context, any) {
	l.mu.Lock()
	l.n++
	s := &logState{n: l.n}
	l.mu.Unlock()
	l.add(s, "upgrade")
	return context.WithValue(ctx, spanKey{}, "upgrade"), s
}

func (l *callLog) Start(ctx context.Context, state any, ev *wsroute.Request) context.Context {
	l.add(state, "start "+ev.RequestContext.RouteKey)
	return context.WithValue(ctx, spanKey{}, "start "+ev.RequestContext.RouteKey)
}

func (l *callLog) End(ctx context.Context, state any, ev *wsroute.Request, res *wsroute.EventResult) {
	what := "<nil>"
	if ev != nil {
		what = ev.RequestContext.EventType + " " + ev.RequestContext.RouteKey
	}
	span, _ := ctx.Value(spanKey{}).(string)
	l.add(state, fmt.Sprintf("end %s %d integrated=%v ctx=%q client=%v integration=%v execution=%v", what, res.Status,
		res.Integrated, span, res.ClientError(), res.IntegrationError(), res.ExecutionError()))
}

func (l *callLog) Frame(state any, f wsroute.FrameInfo) {
	l.add(state, fmt.Sprintf("frame out=%v size=%d err=%v", f.Outbound, f.Size, f.Err))
}

func (l *callLog) Closed(state any, _ string, code int, reason string) {
	l.add(state, fmt.Sprintf("closed %d %s", code, reason))
}

func (l *callLog) ManagementCall(req *http.Request, call *wsroute.ManagementCall) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mgmt = append(l.mgmt, fmt.Sprintf("%s %s %d", call.Method, call.ConnectionID, call.Status))
}

func TestObserverCallsInOrder(t *testing.T) {
	log := &callLog{calls: map[int][]string{}}
	r := newRouter(t, &wsroute.Options{Observer: log, APIKeys: []string{"k"}})
	var handlerCtx sync.Map
	r.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		handlerCtx.Store("$connect", ctx.Value(spanKey{}))
		if req.QueryStringParameters["deny"] != "" {
			return &wsroute.Response{StatusCode: http.StatusForbidden}, nil
		}
		return nil, nil
	})
	r.HandleFunc("echo", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		handlerCtx.Store("echo", ctx.Value(spanKey{}))
		return &wsroute.Response{Body: req.Body}, nil
	})
	r.HandleFunc("boom", func(context.Context, *wsroute.Request) (*wsroute.Response, error) { panic("boom") })
	r.HandleFunc("bad", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return nil, &wsroute.IntegrationError{StatusCode: 504, Message: "Endpoint request timed out"}
	})
	r.HandleFunc(wsroute.RouteDisconnect, func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return nil, errors.New("disconnect failed")
	})
	srv := serve(t, r)
	ctx := context.Background()
	key := &websocket.DialOptions{HTTPHeader: http.Header{"X-Api-Key": {"k"}}}

	// 1: no API key: refused before the CONNECT event exists.
	_, resp, err := websocket.Dial(ctx, wsURL(srv), nil)
	require.Error(t, err)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	// 2: refused by $connect.
	_, resp, err = websocket.Dial(ctx, wsURL(srv)+"?deny=1", key)
	require.Error(t, err)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	// 3: accepted.
	c, _, err := websocket.Dial(ctx, wsURL(srv), key)
	require.NoError(t, err)
	defer c.CloseNow()
	send(t, c, `{"action":"echo"}`)
	read(t, c)
	send(t, c, `{"action":"boom"}`)
	read(t, c)
	send(t, c, `{"action":"bad"}`)
	require.Contains(t, read(t, c), "Endpoint request timed out")
	send(t, c, `{"action":"x"}`)
	read(t, c)
	require.NoError(t, c.Close(websocket.StatusGoingAway, "bye"))
	waitUntil(t, testTimeout, func() bool {
		calls := log.get(3)
		return len(calls) > 0 && strings.HasPrefix(calls[len(calls)-1], "end DISCONNECT")
	}, func() string { return strings.Join(log.get(3), "\n") })

	require.Equal(t, []string{"upgrade", `end <nil> 403 integrated=false ctx="upgrade" client=true integration=false execution=false`}, log.get(1))
	require.Equal(t, []string{"upgrade", `end CONNECT $connect 403 integrated=true ctx="upgrade" client=false integration=true execution=false`}, log.get(2))
	require.Equal(t, []string{
		"upgrade",
		`end CONNECT $connect 200 integrated=true ctx="upgrade" client=false integration=false execution=false`,
		"frame out=false size=17 err=<nil>",
		"start echo",
		`end MESSAGE echo 200 integrated=true ctx="start echo" client=false integration=false execution=false`,
		"frame out=true size=17 err=<nil>",
		"frame out=false size=17 err=<nil>",
		"start boom",
		`end MESSAGE boom 500 integrated=true ctx="start boom" client=false integration=false execution=true`,
		"frame out=true size=103 err=<nil>",
		"frame out=false size=16 err=<nil>",
		"start bad",
		`end MESSAGE bad 504 integrated=true ctx="start bad" client=false integration=true execution=false`,
		"frame out=true size=108 err=<nil>",
		"frame out=false size=14 err=<nil>",
		`end MESSAGE $default 403 integrated=false ctx="" client=true integration=false execution=false`,
		"frame out=true size=91 err=<nil>",
		"closed 1001 bye",
		"start $disconnect",
		`end DISCONNECT $disconnect 500 integrated=true ctx="start $disconnect" client=false integration=true execution=false`,
	}, log.get(3))
	v, _ := handlerCtx.Load("$connect")
	require.Equal(t, "upgrade", v, "$connect runs with the context Upgrade returned")
	v, _ = handlerCtx.Load("echo")
	require.Equal(t, "start echo", v, "a handler runs with the context Start returned")
}

func TestObserverSeesGroupPosts(t *testing.T) {
	log := &callLog{calls: map[int][]string{}}
	r := newRouter(t, &wsroute.Options{Observer: log})
	srv := serve(t, r)
	c := dial(t, srv, nil)
	var id string
	waitUntil(t, testTimeout, func() bool {
		for conn := range r.OpenConnections() {
			id = conn.ConnectionID
		}
		return id != ""
	}, func() string { return "no connection" })
	ctx := context.Background()
	require.NoError(t, r.Groups().Join(ctx, "room", id))
	res, err := r.Groups().PostToGroup(ctx, "room", []byte("to the room"))
	require.NoError(t, err)
	require.Equal(t, 1, res.Delivered)
	require.Equal(t, "to the room", read(t, c))
	require.Contains(t, log.get(1), "frame out=true size=11 err=<nil>")
}
