package wsroute_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// site is a router on a test server, with its lifecycle recorded.
type site struct {
	r   *wsroute.Router
	srv *httptest.Server
	ln  *trackingListener
	log *lifeLog
}

func newSite(t *testing.T, opts *wsroute.Options) *site {
	t.Helper()
	s := &site{r: newRouter(t, opts), log: newLifeLog()}
	s.log.register(s.r)
	whoamiRoute(s.r)
	s.r.HandleFunc("echo", echo)
	s.srv, s.ln = serveTracked(t, s.r)
	return s
}

func (s *site) url(name string) string { return wsURL(s.srv) + "?name=" + name }

// TestDisconnectExactlyOnce ends many connections in every way there is, a
// few dozen at a time, and checks that every connection $connect accepted
// gets exactly one $disconnect, with the code and reason of the way it ended,
// that each client sees the close frame it should, and that every
// server-side socket is closed in the end.
func TestDisconnectExactlyOnce(t *testing.T) {
	total, parallel := 1000, 48
	if testing.Short() {
		total = 220
	}
	const maxMessage = 1024
	main := newSite(t, &wsroute.Options{MaxMessageSize: maxMessage})
	idle := newSite(t, &wsroute.Options{IdleTimeout: 300 * time.Millisecond})
	dur := newSite(t, &wsroute.Options{MaxConnectionDuration: 300 * time.Millisecond})
	slow := newSite(t, &wsroute.Options{MessageTimeout: 300 * time.Millisecond})
	sites := []*site{main, idle, dur, slow}

	type want struct {
		code   int
		reason string
	}
	// An ending ends a connection and checks what the client sees. It
	// returns what $disconnect must report.
	type ending struct {
		name string
		site *site
		end  func(c *client, id string, i int) (want, error)
	}
	serverCloses := func(code websocket.StatusCode, reason string, do func(c *client, id string) error) func(*client, string, int) (want, error) {
		return func(c *client, id string, _ int) (want, error) {
			if err := do(c, id); err != nil {
				return want{}, err
			}
			return want{int(code), reason}, expectClose(c.ws, testTimeout, code, reason)
		}
	}
	write := func(typ websocket.MessageType, data []byte) func(*client, string) error {
		return func(c *client, _ string) error {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			return c.ws.Write(ctx, typ, data)
		}
	}
	nothing := func(*client, string) error { return nil }
	// raw writes bytes on the client's socket, past its WebSocket library:
	// frames no library would send.
	raw := func(b []byte) func(*client, string) error {
		return func(c *client, _ string) error {
			_, err := c.nc.Write(b)
			return err
		}
	}

	var (
		heldMu sync.Mutex
		held   []chan error // the result of each Shutdown connection's wait for its close frame
	)
	endings := []ending{
		{"client close frame with status", main, func(c *client, _ string, i int) (want, error) {
			code, reason := websocket.StatusCode(4000+i%1000), fmt.Sprintf("bye %d", i)
			if i%2 == 0 {
				code = websocket.StatusNormalClosure
			}
			return want{int(code), reason}, c.ws.Close(code, reason)
		}},
		{"client close frame without status", main, func(c *client, _ string, _ int) (want, error) {
			// coder/websocket sends an empty close frame for 1005.
			return want{1005, "Client-side close frame status not set"}, c.ws.Close(websocket.StatusNoStatusRcvd, "")
		}},
		{"TCP reset", main, func(c *client, _ string, _ int) (want, error) {
			return want{1006, ""}, c.reset()
		}},
		{"TCP close without close frame", main, func(c *client, _ string, _ int) (want, error) {
			return want{1006, ""}, c.ws.CloseNow()
		}},
		{"DeleteConnection", main, serverCloses(websocket.StatusNormalClosure, "Connection Closed Normally", func(_ *client, id string) error {
			return main.r.Connections().DeleteConnection(context.Background(), id)
		})},
		{"oversize message", main, func(c *client, id string, _ int) (want, error) {
			if err := write(websocket.MessageText, []byte(strings.Repeat("x", maxMessage+1)))(c, id); err != nil {
				return want{}, err
			}
			return want{1009, "Message too big"}, expectClose(c.ws, testTimeout, websocket.StatusMessageTooBig, "Message too big")
		}},
		{"oversize announced, not sent", main, serverCloses(websocket.StatusMessageTooBig, "Message too big",
			raw([]byte{0x81, 0x80 | 126, 0xff, 0xff, 1, 2, 3, 4}))},
		{"protocol violation", main, serverCloses(websocket.StatusProtocolError, "Client frame not masked",
			raw(appendFrame(nil, finText, []byte("hi"), false)))},
		{"close reason not UTF-8", main, serverCloses(websocket.StatusInvalidFramePayloadData, "Close frame reason is not valid UTF-8",
			raw(closeFrame(1000, "\xff")))},
		{"message timeout", slow, serverCloses(websocket.StatusPolicyViolation, "Message took too long",
			raw(textFrame(`{"action":"echo","pad":"never ends"}`)[:20]))},
		{"binary frame", main, serverCloses(websocket.StatusUnsupportedData, "Binary frames are not supported",
			write(websocket.MessageBinary, []byte{0, 1, 2}))},
		{"invalid UTF-8", main, serverCloses(websocket.StatusInvalidFramePayloadData, "Text frame is not valid UTF-8",
			write(websocket.MessageText, []byte(`{"action":"echo","x":"`+"\xff\xfe"+`"}`)))},
		{"Shutdown", main, func(c *client, _ string, _ int) (want, error) {
			// The client must keep reading for the close handshake to
			// complete; the test checks the result after Shutdown.
			ch := make(chan error, 1)
			go func() {
				ch <- expectClose(c.ws, 2*testTimeout, websocket.StatusGoingAway, "Going away")
				c.ws.CloseNow()
			}()
			heldMu.Lock()
			held = append(held, ch)
			heldMu.Unlock()
			return want{1001, "Going away"}, nil
		}},
		{"idle timeout", idle, serverCloses(websocket.StatusGoingAway, "Going away", nothing)},
		{"maximum connection duration", dur, serverCloses(websocket.StatusGoingAway, "Going away", func(c *client, _ string) error {
			// An active connection: the duration limit ends it all the same.
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			return c.ws.Write(ctx, websocket.MessageText, []byte(`{"action":"echo"}`))
		})},
	}

	var (
		mu     sync.Mutex
		wants  = make(map[*site]map[string]want)
		errs   []error
		counts = make(map[string]int)
		addrs  = make(map[string]ending)
	)
	for _, s := range sites {
		wants[s] = make(map[string]want)
	}
	run := func(i int) error {
		e := endings[i%len(endings)]
		name := fmt.Sprintf("c%d", i)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c, err := dialClient(ctx, e.site.url(name), dialOpts{})
		if err != nil {
			return err
		}
		if e.name != "Shutdown" {
			defer c.ws.CloseNow()
		}
		id := e.site.log.id(name)
		if id == "" {
			return errors.New("$connect did not run before the handshake completed")
		}
		if e.site == main {
			got, err := askID(c.ws, testTimeout)
			if err != nil {
				return err
			}
			if got != id {
				return fmt.Errorf("whoami says %q, $connect saw %q", got, id)
			}
		}
		addr := c.nc.LocalAddr().String()
		w, err := e.end(c, id, i)
		mu.Lock()
		addrs[addr] = e
		wants[e.site][id] = w
		counts[e.name]++
		mu.Unlock()
		return err
	}

	start := time.Now()
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range total {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := run(i); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("connection %d (%s): %w", i, endings[i%len(endings)].name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d connections ended in %v", total, time.Since(start))

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	shutdownStart := time.Now()
	for _, s := range sites {
		require.NoError(t, s.r.Shutdown(ctx))
	}
	t.Logf("Shutdown of %d connections took %v", len(held), time.Since(shutdownStart))
	for i, ch := range held {
		select {
		case err := <-ch:
			if err != nil {
				errs = append(errs, fmt.Errorf("held connection %d: %w", i, err))
			}
		case <-time.After(testTimeout):
			errs = append(errs, fmt.Errorf("held connection %d: no close frame after Shutdown", i))
		}
	}
	for _, err := range errs[:min(len(errs), 10)] {
		t.Error(err)
	}
	require.Empty(t, errs, "%d connections went wrong", len(errs))

	// Shutdown returned nil, so every $disconnect has run by now.
	n := 0
	for _, s := range sites {
		bad := s.log.checkExactlyOnce()
		require.Empty(t, bad[:min(len(bad), 10)], "%d connections", len(bad))
		require.Len(t, s.log.connected, len(wants[s]), "every connection $connect accepted was dialled by this test")
		for id, w := range wants[s] {
			ev := s.log.disconnects(id)[0]
			if ev.RequestContext.DisconnectStatusCode != w.code || ev.RequestContext.DisconnectReason != w.reason {
				t.Errorf("%s: $disconnect %d %q, want %d %q", id,
					ev.RequestContext.DisconnectStatusCode, ev.RequestContext.DisconnectReason, w.code, w.reason)
			}
			n++
		}
		if n, _ := s.ln.open(); n > 0 {
			byMode := map[string]int{}
			for a, e := range addrs {
				if e.site == s && s.ln.stillOpen(a) {
					byMode[e.name]++
				}
			}
			t.Log(byMode)
		}
		s.ln.requireAllClosed(t, testTimeout)
	}
	require.Equal(t, total, n)
	for _, e := range endings {
		require.Positive(t, counts[e.name], e.name)
	}
}

// ledger records every post of TestPostToEachOtherUnderChurn and its result.
type ledger struct {
	mu     sync.Mutex
	stable map[string]bool             // connections that stay open throughout
	ok     map[string]map[string][]int // to → from → seqs posted with a nil error, in order
	counts map[string]int              // result → how many
	bad    []string                    // results that must not happen
}

func (l *ledger) record(from, to string, seq int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		if l.ok[to] == nil {
			l.ok[to] = make(map[string][]int)
		}
		l.ok[to][from] = append(l.ok[to][from], seq)
		l.counts["nil"]++
	case errors.Is(err, wsroute.ErrLimitExceeded):
		l.counts["ErrLimitExceeded"]++
	case errors.Is(err, wsroute.ErrGone) && !l.stable[to]:
		l.counts["ErrGone"]++
	default:
		l.bad = append(l.bad, fmt.Sprintf("post from %s to %s (stable %v): %v", from, to, l.stable[to], err))
	}
}

// inbox collects what one client receives.
type inbox struct {
	mu   sync.Mutex
	msgs []string
	done chan struct{} // closed at the reply to {"action":"done"}
}

// TestPostToEachOtherUnderChurn: hundreds of connections post to each other
// by ID, from handlers and from outside the router, while other connections
// come and go. Every message posted with a nil error to a connection that
// stays open arrives exactly once, in the order of its sender.
func TestPostToEachOtherUnderChurn(t *testing.T) {
	stableN, perSender, parallel := 500, 12, 50
	churners, churnEach := 2, 60
	externals, externalEach := 4, 250
	if testing.Short() {
		stableN, churnEach, externalEach = 100, 20, 100
	}
	led := &ledger{stable: make(map[string]bool), ok: make(map[string]map[string][]int), counts: make(map[string]int)}
	s := newSite(t, nil)
	s.r.HandleFunc("send", func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		var m struct {
			To  string `json:"to"`
			Seq int    `json:"seq"`
		}
		if err := json.Unmarshal([]byte(req.Body), &m); err != nil {
			return nil, err
		}
		from := req.RequestContext.ConnectionID
		err := wsroute.ConnectionsFromContext(ctx).PostToConnection(ctx, m.To, fmt.Appendf(nil, "m %s %d", from, m.Seq))
		led.record(from, m.To, m.Seq, err)
		return nil, nil
	})
	s.r.HandleFunc("done", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{StatusCode: 200, Body: "done"}, nil
	})

	var (
		errMu sync.Mutex
		errs  []error
	)
	fail := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
	}
	checkErrs := func() {
		t.Helper()
		errMu.Lock()
		defer errMu.Unlock()
		for _, err := range errs[:min(len(errs), 10)] {
			t.Error(err)
		}
		require.Empty(t, errs, "%d failures", len(errs))
	}

	// The stable connections, dialled a few dozen at a time.
	clients := make([]*client, stableN)
	ids := make([]string, stableN)
	inboxes := make(map[string]*inbox, stableN)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range stableN {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, err := dialClient(ctx, s.url(fmt.Sprint("s", i)), dialOpts{})
			if err != nil {
				fail(err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	t.Logf("%d connections dialled", stableN)
	checkErrs()
	for i, c := range clients {
		t.Cleanup(func() { c.ws.CloseNow() })
		ids[i] = s.log.id(fmt.Sprint("s", i))
		require.NotEmpty(t, ids[i])
		led.stable[ids[i]] = true
		in := &inbox{done: make(chan struct{})}
		inboxes[ids[i]] = in
		go func() {
			for {
				_, b, err := c.ws.Read(context.Background())
				if err != nil {
					return
				}
				if string(b) == "done" {
					close(in.done)
					continue
				}
				in.mu.Lock()
				in.msgs = append(in.msgs, string(b))
				in.mu.Unlock()
			}
		}()
	}

	var churnMu sync.Mutex
	var churnIDs []string
	churnWant := make(map[string][2]any) // the code and reason each churner's $disconnect must report
	target := func(rnd *rand.Rand) string {
		if rnd.IntN(7) == 0 {
			churnMu.Lock()
			defer churnMu.Unlock()
			if len(churnIDs) > 0 {
				return churnIDs[rnd.IntN(len(churnIDs))]
			}
		}
		return ids[rnd.IntN(len(ids))]
	}
	start := time.Now()
	var churnWG sync.WaitGroup
	for k := range churners {
		churnWG.Add(1)
		go func() {
			defer churnWG.Done()
			rnd := rand.New(rand.NewPCG(uint64(k), 1))
			for i := range churnEach {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				name := fmt.Sprintf("churn-%d-%d", k, i)
				c, err := dialClient(ctx, s.url(name), dialOpts{})
				if err != nil {
					cancel()
					fail(err)
					return
				}
				churnMu.Lock()
				churnIDs = append(churnIDs, s.log.id(name))
				churnMu.Unlock()
				// A churning connection sends too, then goes at once.
				for seq := range 3 {
					msg := fmt.Sprintf(`{"action":"send","to":%q,"seq":%d}`, target(rnd), seq)
					if err := c.ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
						fail(err)
					}
				}
				time.Sleep(time.Duration(rnd.IntN(5)) * time.Millisecond)
				// Posts to this connection may be under way as it leaves:
				// the way it left decides the code, never a failed write.
				want := [2]any{1006, ""}
				switch i % 3 {
				case 0:
					want = [2]any{1000, "bye"}
					err = c.ws.Close(websocket.StatusNormalClosure, "bye")
				case 1:
					err = c.ws.CloseNow()
				case 2:
					err = c.reset()
				}
				churnMu.Lock()
				churnWant[s.log.id(name)] = want
				churnMu.Unlock()
				if err != nil {
					fail(fmt.Errorf("%s: %w", name, err))
				}
				cancel()
			}
		}()
	}
	for k := range externals {
		churnWG.Add(1)
		go func() {
			defer churnWG.Done()
			rnd := rand.New(rand.NewPCG(uint64(k), 2))
			from := fmt.Sprint("ext-", k)
			for seq := range externalEach {
				to := target(rnd)
				err := s.r.Connections().PostToConnection(context.Background(), to, fmt.Appendf(nil, "m %s %d", from, seq))
				led.record(from, to, seq, err)
			}
		}()
	}
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(i), 3))
			ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
			defer cancel()
			for seq := range perSender {
				msg := fmt.Sprintf(`{"action":"send","to":%q,"seq":%d}`, target(rnd), seq)
				if err := c.ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
					fail(err)
					return
				}
			}
			if err := c.ws.Write(ctx, websocket.MessageText, []byte(`{"action":"done"}`)); err != nil {
				fail(err)
				return
			}
			// Messages of one connection are handled in order: when "done"
			// comes back, every post of this sender has been made.
			select {
			case <-inboxes[ids[i]].done:
			case <-ctx.Done():
				fail(fmt.Errorf("sender %d: no answer to done", i))
			}
		}()
	}
	wg.Wait()
	t.Logf("senders done in %v", time.Since(start))
	churnWG.Wait()
	t.Logf("churn and external posts done in %v", time.Since(start))
	checkErrs()
	// A churning connection's messages may still be in its handlers: they
	// have all run once its $disconnect has.
	churnMu.Lock()
	for _, id := range churnIDs {
		ev, err := s.log.waitDisconnect(id, testTimeout)
		if err != nil {
			fail(err)
			continue
		}
		if got := [2]any{ev.RequestContext.DisconnectStatusCode, ev.RequestContext.DisconnectReason}; got != churnWant[id] {
			fail(fmt.Errorf("%s: $disconnect %v, want %v", id, got, churnWant[id]))
		}
	}
	churnMu.Unlock()
	checkErrs()

	// No post is made from here on.
	led.mu.Lock()
	defer led.mu.Unlock()
	t.Logf("posts made in %v: %v", time.Since(start), led.counts)
	require.Empty(t, led.bad[:min(len(led.bad), 10)], "%d unexpected results", len(led.bad))
	received := func(id string) []string {
		in := inboxes[id]
		in.mu.Lock()
		defer in.mu.Unlock()
		return append([]string(nil), in.msgs...)
	}
	want := func(id string) int {
		n := 0
		for _, seqs := range led.ok[id] {
			n += len(seqs)
		}
		return n
	}
	for _, id := range ids {
		waitUntil(t, 2*testTimeout, func() bool { return len(received(id)) >= want(id) }, func() string {
			return fmt.Sprintf("%s received %d of the %d messages posted to it", id, len(received(id)), want(id))
		})
	}
	time.Sleep(50 * time.Millisecond) // anything extra would arrive now
	total := 0
	for _, id := range ids {
		got := make(map[string][]int)
		for _, m := range received(id) {
			var from string
			var seq int
			_, err := fmt.Sscanf(m, "m %s %d", &from, &seq)
			require.NoError(t, err, "frame %q", m)
			got[from] = append(got[from], seq)
			total++
		}
		require.Equal(t, len(led.ok[id]), len(got), "senders seen by %s", id)
		for from, seqs := range led.ok[id] {
			require.Equal(t, seqs, got[from], "messages from %s to %s: exactly once, in order", from, id)
		}
	}
	require.Positive(t, led.counts["nil"])
	t.Logf("%d messages to %d stable connections checked", total, len(ids))

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, s.r.Shutdown(ctx))
	bad := s.log.checkExactlyOnce()
	require.Empty(t, bad[:min(len(bad), 10)], "%d connections", len(bad))
	s.ln.requireAllClosed(t, testTimeout)
}
