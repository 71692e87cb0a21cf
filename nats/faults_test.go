package wsnats_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wsroute/wsroute"
)

// postUntilOK posts from n to c until a post succeeds, and fails the test
// when a post on the way fails with anything but ErrBackplaneUnavailable or
// the end of its ctx: a live connection is never called gone. It returns the message delivered.
func postUntilOK(t *testing.T, from *node, c *client, tag string) string {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for i := 0; ; i++ {
		msg := fmt.Sprintf("%s #%d", tag, i)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := from.cm().PostToConnection(ctx, c.id, []byte(msg))
		cancel()
		if err == nil {
			return msg
		}
		// The caller's own NATS link is down (ErrBackplaneUnavailable), or the
		// request was lost on the way to a node whose link is down, which the
		// caller cannot tell from a slow node (its ctx ends): never ErrGone.
		require.True(t, errors.Is(err, wsroute.ErrBackplaneUnavailable) || errors.Is(err, context.DeadlineExceeded),
			"post from %s to %s's client: %v", from.name, c.on.name, err)
		require.False(t, errors.Is(err, wsroute.ErrGone))
		require.True(t, time.Now().Before(deadline), "no post from %s reached %s's client", from.name, c.on.name)
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNodeKilled kills a node without a goodbye: its NATS connection closes,
// as when its process dies. Its connection IDs answer ErrBackplaneUnavailable
// from the others until DeadAfter has passed since its last heartbeat, then
// ErrGone; its own clients keep being served by it.
func TestNodeKilled(t *testing.T) {
	nodes := threeNodes(t, false)
	a, b, c := nodes[0], nodes[1], nodes[2]
	cb := dial(t, b)
	ctx := ctxTimeout(t, eventually)
	require.NoError(t, a.cm().PostToConnection(ctx, cb.id, []byte("before")))
	assert.Equal(t, "before", cb.read())

	killed := time.Now()
	b.bp.Conn().Close() // no goodbye: the server just sees the socket close

	for _, from := range []*node{a, c} {
		for {
			// A request in flight when the node died waits for its ctx.
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			err := from.cm().PostToConnection(cctx, cb.id, []byte("x"))
			cancel()
			if errors.Is(err, wsroute.ErrGone) {
				break
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				require.ErrorIs(t, err, wsroute.ErrBackplaneUnavailable, "from %s", from.name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("the dead node's connections answered ErrGone everywhere %v after it died (DeadAfter %v)", time.Since(killed).Round(time.Millisecond), testDeadAfter)
	// The others keep working together.
	ca := dial(t, a)
	require.NoError(t, c.cm().PostToConnection(ctx, ca.id, []byte("still here")))
	assert.Equal(t, "still here", ca.read())
	// The cut-off node serves its own connections, and cannot reach the others.
	require.NoError(t, b.cm().PostToConnection(ctx, cb.id, []byte("local")))
	assert.Equal(t, "local", cb.read())
	require.ErrorIs(t, b.cm().PostToConnection(ctx, ca.id, []byte("x")), wsroute.ErrBackplaneUnavailable)
}

// TestNATSServerRestart stops the only NATS server and starts it again.
// Meanwhile local connections keep working, cross-node calls fail at once
// with ErrBackplaneUnavailable (503 on the management API), none is
// delivered late, and the nodes reconnect by themselves.
func TestNATSServerRestart(t *testing.T) {
	ns := startNATS(t, "")
	a := startNode(t, "A", ns.url(), nil)
	b := startNode(t, "B", ns.url(), nil)
	waitSettled(t, a, b)
	ca, cb := dial(t, a), dial(t, b)
	endpoint := managementAPI(t, a, 5*time.Second)

	ns.stop()
	require.Eventually(t, func() bool { return a.bp.Conn().Status() != nats.CONNECTED }, eventually, 5*time.Millisecond)

	ctx := ctxTimeout(t, 2*time.Second)
	err := a.cm().PostToConnection(ctx, cb.id, []byte("during the outage"))
	require.ErrorIs(t, err, wsroute.ErrBackplaneUnavailable)
	require.NoError(t, ctx.Err(), "the call waited for its ctx")
	_, err = a.cm().GetConnection(ctx, cb.id)
	require.ErrorIs(t, err, wsroute.ErrBackplaneUnavailable)
	require.ErrorIs(t, a.cm().DeleteConnection(ctx, cb.id), wsroute.ErrBackplaneUnavailable)
	status, shape := bearerPost(t, endpoint, cb.id, "during the outage")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "ServiceUnavailableException", shape)

	require.NoError(t, a.cm().PostToConnection(ctx, ca.id, []byte("local")))
	assert.Equal(t, "local", ca.read())

	ns.start()
	msg := postUntilOK(t, a, cb, "after the restart")
	assert.Equal(t, msg, cb.read(), "the first frame is the first post that succeeded: nothing failed was delivered late")
	msg = postUntilOK(t, b, ca, "back")
	assert.Equal(t, msg, ca.read())
	status, _ = bearerPost(t, endpoint, cb.id, "via the API")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "via the API", cb.read())
}

// TestClusterServerDies kills one server of a three-server NATS cluster. The
// node connected to it reconnects to another; calls to its connections fail
// with ErrBackplaneUnavailable, never ErrGone, until it has.
func TestClusterServerDies(t *testing.T) {
	servers := startCluster(t)
	urls := func(first int) string {
		s := servers[first].url()
		for i, o := range servers {
			if i != first {
				s += "," + o.url()
			}
		}
		return s
	}
	var nodes []*node
	for i, name := range []string{"A", "B", "C"} {
		nodes = append(nodes, startNode(t, name, urls(i), &nodeConfig{nats: []nats.Option{nats.DontRandomize()}}))
	}
	waitSettled(t, nodes...)
	a, b, c := nodes[0], nodes[1], nodes[2]
	require.Equal(t, servers[1].url(), b.bp.Conn().ConnectedUrl())
	ca, cb, cc := dial(t, a), dial(t, b), dial(t, c)

	servers[1].stop()

	// B serves its own clients all along.
	ctx := ctxTimeout(t, eventually)
	require.NoError(t, b.cm().PostToConnection(ctx, cb.id, []byte("local")))
	assert.Equal(t, "local", cb.read())

	for _, from := range []*node{a, c} {
		msg := postUntilOK(t, from, cb, "from "+from.name)
		assert.Equal(t, msg, cb.read())
	}
	for _, to := range []*client{ca, cc} {
		msg := postUntilOK(t, b, to, "from B")
		assert.Equal(t, msg, to.read())
	}
	require.Eventually(t, func() bool { return b.bp.Conn().Status() == nats.CONNECTED }, eventually, 10*time.Millisecond)
	assert.NotEqual(t, servers[1].url(), b.bp.Conn().ConnectedUrl())
}

// TestSlowNode freezes a node: its socket to NATS stays open but it answers
// nothing, as a stuck process. The caller's ctx bounds calls to its
// connections, which are not called gone; the management API answers 504.
func TestSlowNode(t *testing.T) {
	ns := startNATS(t, "")
	proxy := newFreezer(t, ns.url()[len("nats://"):])
	a := startNode(t, "A", ns.url(), nil)
	b := startNode(t, "B", proxy.url(), nil)
	waitSettled(t, a, b)
	cb := dial(t, b)
	endpoint := managementAPI(t, a, 300*time.Millisecond)

	proxy.freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := a.cm().PostToConnection(ctx, cb.id, []byte("stuck"))
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, errors.Is(err, wsroute.ErrGone))
	status, shape := bearerPost(t, endpoint, cb.id, "stuck")
	assert.Equal(t, http.StatusGatewayTimeout, status)
	assert.Equal(t, "GatewayTimeoutException", shape)
	proxy.unfreeze()

	// The frozen requests were queued in the proxy and reach B now:
	// at most once, possibly after the caller gave up, as documented.
	deadline := time.Now().Add(eventually)
	for {
		ctx := ctxTimeout(t, 2*time.Second)
		err := a.cm().PostToConnection(ctx, cb.id, []byte("thawed"))
		if err == nil {
			break
		}
		require.False(t, errors.Is(err, wsroute.ErrGone), "%v", err)
		require.True(t, time.Now().Before(deadline), "B never answers again: %v", err)
	}
	for {
		if cb.read() == "thawed" {
			break
		}
	}
}
