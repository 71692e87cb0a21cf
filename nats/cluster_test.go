package wsnats_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wsroute/wsroute"
	wsnats "github.com/wsroute/wsroute/nats"
)

// threeNodes starts three routers: on one NATS server, or each on its own
// server of a three-server NATS cluster.
func threeNodes(t *testing.T, clustered bool, cfgs ...*nodeConfig) []*node {
	t.Helper()
	var urls []string
	if clustered {
		for _, s := range startCluster(t) {
			urls = append(urls, s.url())
		}
	} else {
		u := startNATS(t, "").url()
		urls = []string{u, u, u}
	}
	nodes := make([]*node, 3)
	for i := range nodes {
		var cfg *nodeConfig
		if i < len(cfgs) {
			cfg = cfgs[i]
		}
		nodes[i] = startNode(t, string(rune('A'+i)), urls[i], cfg)
	}
	waitSettled(t, nodes...)
	return nodes
}

// TestEveryPair posts to, describes and deletes, from each of three nodes, a
// client of each node, itself included.
func TestEveryPair(t *testing.T) {
	for _, clustered := range []bool{false, true} {
		t.Run(map[bool]string{false: "one NATS server", true: "three-server NATS cluster"}[clustered], func(t *testing.T) {
			nodes := threeNodes(t, clustered)
			for _, from := range nodes {
				for _, to := range nodes {
					t.Run(from.name+" to "+to.name, func(t *testing.T) {
						ctx := ctxTimeout(t, eventually)
						c := dial(t, to)

						msg := fmt.Sprintf(`{"from":%q}`, from.name)
						require.NoError(t, from.cm().PostToConnection(ctx, c.id, []byte(msg)))
						assert.Equal(t, msg, c.read())

						info, err := from.cm().GetConnection(ctx, c.id)
						require.NoError(t, err)
						assert.Equal(t, c.id, info.ConnectionID)
						assert.Equal(t, "127.0.0.1", info.Identity.SourceIP)
						local, err := to.cm().GetConnection(ctx, c.id)
						require.NoError(t, err)
						assert.True(t, info.ConnectedAt.Equal(local.ConnectedAt), "connectedAt %v, locally %v", info.ConnectedAt, local.ConnectedAt)

						require.NoError(t, from.cm().DeleteConnection(ctx, c.id))
						assert.Equal(t, websocket.StatusNormalClosure, c.closeStatus())
						select {
						case id := <-to.disc:
							assert.Equal(t, c.id, id)
						case <-ctx.Done():
							t.Fatal("$disconnect did not run on the owning node")
						}
						// Gone everywhere, for every operation.
						for _, n := range nodes {
							require.ErrorIs(t, n.cm().PostToConnection(ctx, c.id, []byte("late")), wsroute.ErrGone, "post from %s", n.name)
							_, err := n.cm().GetConnection(ctx, c.id)
							require.ErrorIs(t, err, wsroute.ErrGone, "get from %s", n.name)
							require.ErrorIs(t, n.cm().DeleteConnection(ctx, c.id), wsroute.ErrGone, "delete from %s", n.name)
						}
						// $disconnect ran once, on the owner only.
						for _, n := range nodes {
							want := 0
							if n == to {
								want = 1
							}
							assert.Equal(t, want, n.disconnectCount(c.id), "$disconnect runs on %s", n.name)
						}
					})
				}
			}
		})
	}
}

// TestRemoteErrors checks that the owning node's errors reach the caller as
// themselves, and that IDs that cannot exist are gone without a question.
func TestRemoteErrors(t *testing.T) {
	small := &nodeConfig{options: &wsroute.Options{MaxPostSize: 1024, SendQueueSize: 2, SendQueueBytes: 64 << 10}}
	nodes := threeNodes(t, false, nil, nil, small)
	a, c := nodes[0], nodes[2]
	ctx := ctxTimeout(t, eventually)

	t.Run("payload too large for the owner", func(t *testing.T) {
		cl := dial(t, c)
		err := a.cm().PostToConnection(ctx, cl.id, []byte(strings.Repeat("x", 2048)))
		require.ErrorIs(t, err, wsroute.ErrPayloadTooLarge)
		require.NoError(t, a.cm().PostToConnection(ctx, cl.id, []byte("fits")))
		assert.Equal(t, "fits", cl.read())
	})

	t.Run("send queue full on the owner", func(t *testing.T) {
		cl := dial(t, c) // never reads from now on
		chunk := []byte(strings.Repeat("y", 1000))
		var err error
		for range 100000 { // the socket's buffers fill first, then the queue
			if err = a.cm().PostToConnection(ctx, cl.id, chunk); err != nil {
				break
			}
		}
		require.ErrorIs(t, err, wsroute.ErrLimitExceeded)
	})

	t.Run("IDs that cannot be a connection", func(t *testing.T) {
		for _, id := range []string{"", "has.dot", "star*", "gt>", "sp ace", strings.Repeat("A", 200), "é"} {
			require.ErrorIs(t, a.cm().PostToConnection(ctx, id, []byte("x")), wsroute.ErrGone, "%q", id)
		}
	})

	t.Run("cancelled ctx", func(t *testing.T) {
		cl := dial(t, c)
		cctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, a.cm().PostToConnection(cctx, cl.id, []byte("x")), context.Canceled)
	})
}

// TestAPIsShareNATS runs two APIs on one NATS server: a node of one never
// reaches the connections of the other.
func TestAPIsShareNATS(t *testing.T) {
	u := startNATS(t, "").url()
	chat := startNode(t, "chat", u, &nodeConfig{api: "chat"})
	orders := startNode(t, "orders", u, &nodeConfig{api: "orders"})
	chat2 := startNode(t, "chat2", u, &nodeConfig{api: "chat"})
	waitSettled(t, chat, orders, chat2)
	cl := dial(t, chat)
	ctx := ctxTimeout(t, eventually)
	require.ErrorIs(t, orders.cm().PostToConnection(ctx, cl.id, []byte("x")), wsroute.ErrGone)
	require.NoError(t, chat2.cm().PostToConnection(ctx, cl.id, []byte("same API")))
	assert.Equal(t, "same API", cl.read())
}

// TestAttachTwice refuses to serve two routers with one Backplane.
func TestAttachTwice(t *testing.T) {
	u := startNATS(t, "").url()
	bp, err := wsnats.Connect(u, nil)
	require.NoError(t, err)
	r, err := wsroute.New(&wsroute.Options{Backplane: bp})
	require.NoError(t, err)
	_, err = wsroute.New(&wsroute.Options{Backplane: bp})
	require.Error(t, err)
	require.NoError(t, r.Shutdown(context.Background()))
	_, err = wsroute.New(&wsroute.Options{Backplane: bp})
	require.ErrorIs(t, err, wsroute.ErrRouterClosed)
	require.ErrorIs(t, bp.PostToConnection(context.Background(), "AAAAAAAAAAAAAAA=", nil), wsroute.ErrRouterClosed)
}

func TestConnectOptions(t *testing.T) {
	for _, o := range []wsnats.Options{{API: "a.b"}, {API: "*"}, {API: "a b"}, {HeartbeatInterval: -1}, {HeartbeatInterval: time.Second, DeadAfter: time.Millisecond}} {
		_, err := wsnats.Connect("nats://127.0.0.1:1", &o)
		require.Error(t, err, "%+v", o)
		require.False(t, errors.Is(err, context.DeadlineExceeded))
	}
}
