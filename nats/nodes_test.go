package wsnats_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"github.com/wsroute/wsroute"
	wsnats "github.com/wsroute/wsroute/nats"
)

// Test timing: heartbeats are fast so that tests about dead nodes are short.
const (
	testHeartbeat = 100 * time.Millisecond
	testDeadAfter = 500 * time.Millisecond
	eventually    = 20 * time.Second // generous: the machine may be loaded
)

// node is one router with its backplane, served by an httptest server.
type node struct {
	name   string
	router *wsroute.Router
	bp     *wsnats.Backplane
	srv    *httptest.Server

	mu          sync.Mutex
	disconnects map[string]int // connection ID → $disconnect runs
	disc        chan string
}

type nodeConfig struct {
	api     string
	options *wsroute.Options
	nats    []nats.Option
}

func startNode(t testing.TB, name, natsURL string, cfg *nodeConfig) *node {
	t.Helper()
	if cfg == nil {
		cfg = &nodeConfig{}
	}
	api := cfg.api
	if api == "" {
		api = "test"
	}
	natsOpts := append([]nats.Option{nats.Name(name), nats.ReconnectWait(50 * time.Millisecond)}, cfg.nats...)
	bp, err := wsnats.Connect(natsURL, &wsnats.Options{API: api, HeartbeatInterval: testHeartbeat, DeadAfter: testDeadAfter}, natsOpts...)
	require.NoError(t, err)
	var ro wsroute.Options
	if cfg.options != nil {
		ro = *cfg.options
	}
	ro.Backplane = bp
	r, err := wsroute.New(&ro)
	require.NoError(t, err)
	n := &node{name: name, router: r, bp: bp, disconnects: map[string]int{}, disc: make(chan string, 1000)}
	r.HandleFunc("whoami", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: "id:" + req.RequestContext.ConnectionID}, nil
	})
	r.HandleFunc(wsroute.RouteDisconnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		n.mu.Lock()
		n.disconnects[req.RequestContext.ConnectionID]++
		n.mu.Unlock()
		n.disc <- req.RequestContext.ConnectionID
		return nil, nil
	})
	n.srv = httptest.NewServer(r)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
		n.srv.Close()
	})
	return n
}

func (n *node) cm() wsroute.ConnectionManager { return n.router.Connections() }

func (n *node) disconnectCount(id string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.disconnects[id]
}

// client is a real WebSocket client of a node.
type client struct {
	t  testing.TB
	ws *websocket.Conn
	id string
	on *node
}

func dial(t testing.TB, n *node) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.srv.URL, "http"), nil)
	require.NoError(t, err)
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte(`{"action":"whoami"}`)))
	_, b, err := ws.Read(ctx)
	require.NoError(t, err)
	id, ok := strings.CutPrefix(string(b), "id:")
	require.True(t, ok, "unexpected frame %q", b)
	return &client{t: t, ws: ws, id: id, on: n}
}

// read returns the next frame.
func (c *client) read() string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	require.NoError(c.t, err)
	return string(b)
}

// closeStatus reads until the connection closes and returns its close code.
func (c *client) closeStatus() websocket.StatusCode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	for {
		if _, _, err := c.ws.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// waitSettled waits until n knows every other node: a post to an ID nobody
// holds answers ErrGone rather than ErrBackplaneUnavailable.
func waitSettled(t testing.TB, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		require.Eventually(t, func() bool {
			err := n.cm().PostToConnection(context.Background(), "AAAAAAAAAAAAAAA=", []byte("x"))
			return errors.Is(err, wsroute.ErrGone)
		}, eventually, 10*time.Millisecond, "node %s never settles", n.name)
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
