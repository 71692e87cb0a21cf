package wsroute_test

import (
	"context"
	"errors"
	"fmt"
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
	sites := []*site{main, idle, dur}

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
			// coder/websocket writes this close frame itself, with its own reason.
			return want{1009, "Message too big"}, expectClose(c.ws, testTimeout, websocket.StatusMessageTooBig, "*")
		}},
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
