package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute/internal/leakcheck"
	"github.com/wsroute/wsroute/wsroutetest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const quiet = 150 * time.Millisecond

func start(t *testing.T) (*app, *wsroutetest.Server) {
	t.Helper()
	a, err := newApp(nil)
	require.NoError(t, err)
	srv := wsroutetest.NewServer(t, a.router, &wsroutetest.ServerOptions{Handler: a.handler(), Path: "/ws"})
	return a, srv
}

// watch connects a client to orderID and waits for its first answer, the
// order's current status. The round trip makes sure the router has
// registered the connection: the router sends the 101 response a moment
// before PostToConnection can reach the connection, so a push right after
// Dial returns can fail with ErrGone (reported to the router's owner).
func watch(t *testing.T, srv *wsroutetest.Server, orderID string) *wsroutetest.Client {
	t.Helper()
	ctx := context.Background()
	c := srv.Dial(t, &wsroutetest.DialOptions{Query: url.Values{"orderId": {orderID}}})
	c.SendText(ctx, "status?")
	if m := readStatus(ctx, c); m.OrderID != orderID {
		t.Fatalf("status of %q: got %+v", orderID, m)
	}
	return c
}

func readStatus(ctx context.Context, c *wsroutetest.Client) statusMessage {
	var m statusMessage
	c.ReadJSON(ctx, &m)
	return m
}

func TestWatchersReceiveEveryChangeInOrder(t *testing.T) {
	ctx := context.Background()
	a, srv := start(t)
	w1, w2 := watch(t, srv, "1001"), watch(t, srv, "1001")
	other := watch(t, srv, "2002")

	for range len(statuses) + 2 { // two more than needed: delivered orders stay delivered
		a.advance(ctx)
	}
	for _, w := range []*wsroutetest.Client{w1, w2} {
		for i, want := range statuses[1:] {
			m := readStatus(ctx, w)
			assert.Equal(t, statusMessage{Type: "orderStatus", OrderID: "1001", Status: want, Step: i + 2, Steps: len(statuses), UpdatedAt: m.UpdatedAt}, m)
			_, err := time.Parse(time.RFC3339Nano, m.UpdatedAt)
			assert.NoError(t, err)
		}
		w.ExpectNoFrame(ctx, quiet)
	}
	// The other order's watcher heard of its own order only.
	for _, want := range statuses[1:] {
		m := readStatus(ctx, other)
		assert.Equal(t, "2002", m.OrderID)
		assert.Equal(t, want, m.Status)
	}
	other.ExpectNoFrame(ctx, quiet)
}

func TestOthersReceiveNothing(t *testing.T) {
	ctx := context.Background()
	a, srv := start(t)
	bystander := watch(t, srv, "3003")
	a.advance(ctx) // 3003 → PAYMENT_CONFIRMED
	assert.Equal(t, "PAYMENT_CONFIRMED", readStatus(ctx, bystander).Status)

	watcher := watch(t, srv, "1001")
	a.advance(ctx)
	assert.Equal(t, "PREPARING", readStatus(ctx, bystander).Status)
	m := readStatus(ctx, watcher)
	assert.Equal(t, "1001", m.OrderID)
	assert.Equal(t, "PAYMENT_CONFIRMED", m.Status)
	bystander.ExpectNoFrame(ctx, quiet)
}

func TestDefaultAnswersWithStatus(t *testing.T) {
	ctx := context.Background()
	a, srv := start(t)
	c := watch(t, srv, "1001")
	c.SendText(ctx, "status?") // not JSON: $default
	m := readStatus(ctx, c)
	assert.Equal(t, "ORDER_RECEIVED", m.Status)
	assert.Equal(t, 1, m.Step)
	assert.Equal(t, len(statuses), m.Steps)

	a.advance(ctx)
	assert.Equal(t, "PAYMENT_CONFIRMED", readStatus(ctx, c).Status) // the push
	c.SendAction(ctx, "getStatus", nil)                             // no such route: $default
	m = readStatus(ctx, c)
	assert.Equal(t, "PAYMENT_CONFIRMED", m.Status)
	assert.Equal(t, 2, m.Step)
	c.ExpectNoFrame(ctx, quiet)
}

func TestConnectNeedsOrderID(t *testing.T) {
	_, srv := start(t)
	for _, q := range []url.Values{nil, {"orderId": {""}}, {"orderId": {"a/b"}}, {"orderId": {strings.Repeat("9", 65)}}} {
		resp := srv.DialRefused(t, &wsroutetest.DialOptions{Query: q})
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "query %v", q)
		b, _ := io.ReadAll(resp.Body)
		assert.Contains(t, string(b), "orderId query parameter is required", "query %v", q)
	}
}

func TestDisconnectUnregisters(t *testing.T) {
	ctx := context.Background()
	a, srv := start(t)
	c := watch(t, srv, "1001")
	keep := watch(t, srv, "1001")
	assert.Equal(t, 2, a.store.watchers("1001"))
	c.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(wsroutetest.DefaultTimeout)
	for a.store.watchers("1001") != 1 {
		require.True(t, time.Now().Before(deadline), "$disconnect did not unregister the watcher")
		time.Sleep(5 * time.Millisecond)
	}
	a.advance(ctx)
	assert.Equal(t, "PAYMENT_CONFIRMED", readStatus(ctx, keep).Status)
}

func TestProcessStopsWithContext(t *testing.T) {
	a, srv := start(t)
	c := watch(t, srv, "1001")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.process(ctx, 5*time.Millisecond) })
	for _, want := range statuses[1:] {
		assert.Equal(t, want, readStatus(context.Background(), c).Status)
	}
	cancel()
	wg.Wait() // the leak check fails the run if it did not stop
}

// The program itself: it serves, pushes, and stops when its context ends.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-interval", "10ms"}, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	require.True(t, lines.Scan())
	m := regexp.MustCompile(`(ws://127\.0\.0\.1:\d+/ws)\?orderId=1001`).FindStringSubmatch(lines.Text())
	require.NotNil(t, m, "first line: %q", lines.Text())
	var rest strings.Builder
	drained := make(chan struct{})
	go func() {
		for lines.Scan() {
			rest.WriteString(lines.Text() + "\n")
		}
		close(drained)
	}()

	// The order advances every 10 ms from the moment $connect creates it,
	// so the first changes may happen before the connection is reachable:
	// what arrives is the rest of the sequence, in order.
	c := wsroutetest.Dial(t, m[1], &wsroutetest.DialOptions{Query: url.Values{"orderId": {"42"}}})
	c.SendText(context.Background(), "status?")
	step := 0
	for step < len(statuses) {
		s := readStatus(context.Background(), c)
		require.Equal(t, "42", s.OrderID)
		require.GreaterOrEqual(t, s.Step, step, "statuses went back")
		require.Equal(t, statuses[s.Step-1], s.Status)
		step = s.Step
	}
	cancel()
	c.ExpectClose(context.Background(), websocket.StatusGoingAway)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	<-drained
	assert.Contains(t, rest.String(), "stopped")
}
