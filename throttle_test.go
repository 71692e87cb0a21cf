package wsroute_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

// testClock is a clock that stands still until the test moves it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Unix(1_700_000_000, 0)} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// roundTrip sends msg and returns the reply: the echo, or the error frame's
// message.
func roundTrip(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	send(t, c, msg)
	reply := read(t, c)
	if reply == msg {
		return "ok"
	}
	m := mustJSON(t, reply)
	return m["message"].(string)
}

// dialAs connects with ?p=principal (for the test authorizer) and the given
// headers.
func dialAs(t *testing.T, srv *httptest.Server, principal string, h http.Header) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, wsURL(srv)+"?p="+principal, &websocket.DialOptions{HTTPHeader: h})
	require.NoError(t, err)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// dialRefused dials and returns the status and body of the refusal, or 101.
func dialRefused(t *testing.T, srv *httptest.Server, h http.Header) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		c.CloseNow()
		return http.StatusSwitchingProtocols, ""
	}
	require.NotNil(t, resp, "dial failed without a response: %v", err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func throttledRouter(t *testing.T, th *wsroute.Throttle, clock *testClock) *httptest.Server {
	t.Helper()
	wsroute.SetThrottleClock(th, clock.now)
	r := newRouter(t, &wsroute.Options{
		Throttle: th,
		Authorizer: func(_ context.Context, req *wsroute.Request) (*wsroute.AuthorizerResult, error) {
			return &wsroute.AuthorizerResult{PrincipalID: req.QueryStringParameters["p"]}, nil
		},
	})
	r.HandleFunc("echo", echo)
	r.HandleFunc("other", echo)
	return serve(t, r)
}

// TestThrottleMessagesAtBoundary checks each message limit, on a clock the
// test moves: a burst of exactly BurstLimit, then one token every
// 1/RateLimit seconds, never more than BurstLimit after a long pause; a
// throttled message gets the Too Many Requests frame and the connection
// stays open. Which connections share a bucket depends on the limit.
func TestThrottleMessagesAtBoundary(t *testing.T) {
	s := &wsroute.ThrottleSettings{RateLimit: 10, BurstLimit: 3} // a token every 100 ms
	const echoMsg, otherMsg = `{"action":"echo"}`, `{"action":"other"}`
	tests := []struct {
		name string
		th   wsroute.Throttle
		// second is a connection that shares the first's bucket, and
		// third one that does not: principal and message.
		shareP, shareMsg, apartP, apartMsg string
		sharing                            bool // whether the second connection shares the bucket
	}{
		{"router", wsroute.Throttle{Router: s}, "a", echoMsg, "b", otherMsg, true},
		{"route", wsroute.Throttle{Routes: map[string]wsroute.ThrottleSettings{"echo": *s}}, "b", echoMsg, "a", otherMsg, true},
		{"connection", wsroute.Throttle{Connection: s}, "a", echoMsg, "a", otherMsg, false},
		{"principal", wsroute.Throttle{Principal: s}, "a", otherMsg, "b", echoMsg, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock()
			srv := throttledRouter(t, &tt.th, clock)
			c1 := dialAs(t, srv, "a", nil)
			c2 := dialAs(t, srv, tt.shareP, nil)
			c3 := dialAs(t, srv, tt.apartP, nil)

			for i := range 3 {
				require.Equal(t, "ok", roundTrip(t, c1, echoMsg), "message %d of the burst", i+1)
			}
			require.Equal(t, "Too Many Requests", roundTrip(t, c1, echoMsg), "message 4 at once")
			want := "ok"
			if tt.sharing {
				want = "Too Many Requests"
			}
			require.Equal(t, want, roundTrip(t, c2, tt.shareMsg), "a second connection")
			want = "ok"
			if tt.name == "router" {
				want = "Too Many Requests" // one bucket for all
			}
			require.Equal(t, want, roundTrip(t, c3, tt.apartMsg), "a connection on another route or principal")

			clock.advance(99 * time.Millisecond)
			require.Equal(t, "Too Many Requests", roundTrip(t, c1, echoMsg), "after 99 ms")
			clock.advance(time.Millisecond)
			require.Equal(t, "ok", roundTrip(t, c1, echoMsg), "after 100 ms: one token")
			require.Equal(t, "Too Many Requests", roundTrip(t, c1, echoMsg), "and only one")

			clock.advance(time.Hour)
			for i := range 3 {
				require.Equal(t, "ok", roundTrip(t, c1, echoMsg), "message %d after an hour", i+1)
			}
			require.Equal(t, "Too Many Requests", roundTrip(t, c1, echoMsg), "the bucket holds no more than the burst")
		})
	}
}

// TestThrottleFairAcrossConnections: a chatty connection over its own
// limit takes nothing from the router's bucket, so another connection is
// served.
func TestThrottleFairAcrossConnections(t *testing.T) {
	clock := newTestClock()
	srv := throttledRouter(t, &wsroute.Throttle{
		Connection: &wsroute.ThrottleSettings{RateLimit: 1, BurstLimit: 3},
		Router:     &wsroute.ThrottleSettings{RateLimit: 1, BurstLimit: 6},
	}, clock)
	chatty, quiet := dialAs(t, srv, "a", nil), dialAs(t, srv, "b", nil)
	got := map[string]int{}
	for range 20 {
		got[roundTrip(t, chatty, `{"action":"echo"}`)]++
	}
	require.Equal(t, map[string]int{"ok": 3, "Too Many Requests": 17}, got)
	for i := range 3 {
		require.Equal(t, "ok", roundTrip(t, quiet, `{"action":"echo"}`), "the quiet connection's message %d", i+1)
	}
	// The router's bucket is now empty: its limit holds for everyone.
	require.Equal(t, "Too Many Requests", roundTrip(t, quiet, `{"action":"echo"}`))
}

// TestThrottleNewConnectionsPerIP: upgrades over the per-IP limit get 429
// before $connect runs. Behind a trusted proxy each client has its own
// bucket; from an untrusted peer a made-up X-Forwarded-For changes nothing.
func TestThrottleNewConnectionsPerIP(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			clock := newTestClock()
			th := &wsroute.Throttle{NewConnectionsPerIP: &wsroute.ThrottleSettings{RateLimit: 1, BurstLimit: 2}}
			wsroute.SetThrottleClock(th, clock.now)
			o := &wsroute.Options{Throttle: th}
			if trusted {
				o.TrustedProxies = []string{"127.0.0.0/8"}
			}
			r := newRouter(t, o)
			connects := newRecorder()
			r.Handle(wsroute.RouteConnect, connects)
			srv := serve(t, r)
			from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }

			for i := range 2 {
				status, _ := dialRefused(t, srv, from("203.0.113.1"))
				require.Equal(t, http.StatusSwitchingProtocols, status, "connection %d", i+1)
				require.Equal(t, map[bool]string{true: "203.0.113.1", false: "127.0.0.1"}[trusted],
					connects.next(t).RequestContext.Identity.SourceIP)
			}
			status, body := dialRefused(t, srv, from("203.0.113.1"))
			require.Equal(t, http.StatusTooManyRequests, status)
			require.Equal(t, `{"message":"Too Many Requests"}`, body)

			// Another client, or a spoofed address.
			status, _ = dialRefused(t, srv, from("198.51.100.9"))
			if trusted {
				require.Equal(t, http.StatusSwitchingProtocols, status, "another client behind the proxy")
				connects.next(t)
			} else {
				require.Equal(t, http.StatusTooManyRequests, status, "a spoofed X-Forwarded-For from an untrusted peer")
			}
			clock.advance(time.Second)
			status, _ = dialRefused(t, srv, from("203.0.113.1"))
			require.Equal(t, http.StatusSwitchingProtocols, status, "a second later")
			connects.next(t)
			select {
			case ev := <-connects.ch:
				t.Fatalf("$connect ran for a throttled upgrade: %+v", ev.RequestContext)
			default:
			}
		})
	}
}

// TestThrottleConnectRoute: Routes["$connect"] limits upgrade requests.
func TestThrottleConnectRoute(t *testing.T) {
	clock := newTestClock()
	th := &wsroute.Throttle{Routes: map[string]wsroute.ThrottleSettings{wsroute.RouteConnect: {RateLimit: 2, BurstLimit: 1}}}
	wsroute.SetThrottleClock(th, clock.now)
	srv := serve(t, newRouter(t, &wsroute.Options{Throttle: th}))
	status, _ := dialRefused(t, srv, nil)
	require.Equal(t, http.StatusSwitchingProtocols, status)
	status, _ = dialRefused(t, srv, nil)
	require.Equal(t, http.StatusTooManyRequests, status)
	clock.advance(500 * time.Millisecond)
	status, _ = dialRefused(t, srv, nil)
	require.Equal(t, http.StatusSwitchingProtocols, status)
}

// TestThrottleMemoryBound sends upgrades from 5,000 distinct source IPs
// through a trusted proxy: the per-IP table never holds more than MaxKeys.
// (TestBucketTableBound feeds 100,000 keys to the table itself.)
func TestThrottleMemoryBound(t *testing.T) {
	const keys = 5_000
	const maxKeys = 256
	th := &wsroute.Throttle{NewConnectionsPerIP: &wsroute.ThrottleSettings{RateLimit: 1, BurstLimit: 1}, MaxKeys: maxKeys}
	clock := newTestClock() // stands still: no bucket refills, so none is dropped for being full
	wsroute.SetThrottleClock(th, clock.now)
	r := newRouter(t, &wsroute.Options{Throttle: th, TrustedProxies: []string{"127.0.0.1"}})
	r.HandleFunc(wsroute.RouteConnect, func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{StatusCode: http.StatusForbidden}, nil // the handshake is all we need
	})
	srv := serve(t, r)
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	upgrade := func(ip string) int {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		req.Header = http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
			"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "X-Forwarded-For": {ip}}
		resp, err := client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	ip := func(i int) string { return fmt.Sprintf("10.0.%d.%d", i>>8, i&0xff) }
	for i := range keys {
		require.Equal(t, http.StatusForbidden, upgrade(ip(i)), "upgrade %d from a new address reaches $connect", i)
		if i%500 == 0 {
			_, _, ips := wsroute.ThrottleKeys(r)
			require.LessOrEqual(t, ips, maxKeys, "after %d addresses", i+1)
		}
	}
	_, _, ips := wsroute.ThrottleKeys(r)
	require.LessOrEqual(t, ips, maxKeys)
	require.Greater(t, ips, maxKeys/2, "the table is used")
	// The latest address is still remembered: its bucket is empty.
	require.Equal(t, http.StatusTooManyRequests, upgrade(ip(keys-1)))
}

// TestThrottleInvalid: New names the setting that is wrong.
func TestThrottleInvalid(t *testing.T) {
	bad := &wsroute.ThrottleSettings{RateLimit: 1, BurstLimit: 0}
	tests := []struct {
		th   wsroute.Throttle
		want string
	}{
		{wsroute.Throttle{Router: bad}, "Throttle.Router needs RateLimit > 0 and BurstLimit >= 1"},
		{wsroute.Throttle{Connection: &wsroute.ThrottleSettings{RateLimit: 0, BurstLimit: 1}}, "Throttle.Connection needs"},
		{wsroute.Throttle{Principal: bad}, "Throttle.Principal needs"},
		{wsroute.Throttle{NewConnectionsPerIP: bad}, "Throttle.NewConnectionsPerIP needs"},
		{wsroute.Throttle{Routes: map[string]wsroute.ThrottleSettings{"echo": *bad}}, `Throttle.Routes["echo"] needs`},
		{wsroute.Throttle{Routes: map[string]wsroute.ThrottleSettings{wsroute.RouteDisconnect: {RateLimit: 1, BurstLimit: 1}}},
			`route "$disconnect" cannot be throttled`},
		{wsroute.Throttle{MaxKeys: -1}, "MaxKeys is negative"},
	}
	for _, tt := range tests {
		_, err := wsroute.New(&wsroute.Options{Throttle: &tt.th})
		require.ErrorContains(t, err, tt.want)
	}
}

// TestThrottleIsObserved: the Observer (here the access log) sees a
// throttled message as a 429 event with the request ID of its frame, and a
// throttled upgrade as a 429 CONNECT with the client's address behind a
// trusted proxy.
func TestThrottleIsObserved(t *testing.T) {
	var buf logBuffer
	clock := newTestClock()
	th := &wsroute.Throttle{
		Connection:          &wsroute.ThrottleSettings{RateLimit: 1, BurstLimit: 1},
		NewConnectionsPerIP: &wsroute.ThrottleSettings{RateLimit: 1, BurstLimit: 1},
	}
	wsroute.SetThrottleClock(th, clock.now)
	r := newRouter(t, &wsroute.Options{Throttle: th, TrustedProxies: []string{"127.0.0.1"},
		Observer: wsroute.NewAccessLog(slog.New(slog.NewJSONHandler(&buf, nil)))})
	r.HandleFunc("echo", echo)
	srv := serve(t, r)
	from := http.Header{"X-Forwarded-For": {"203.0.113.7"}}
	c := dialAs(t, srv, "", from)
	require.Equal(t, "ok", roundTrip(t, c, `{"action":"echo"}`))
	send(t, c, `{"action":"echo"}`)
	frame := mustJSON(t, read(t, c))
	require.Equal(t, "Too Many Requests", frame["message"])
	status, _ := dialRefused(t, srv, from)
	require.Equal(t, http.StatusTooManyRequests, status)

	var throttledMsg, throttledUpgrade map[string]any
	waitUntil(t, testTimeout, func() bool {
		for _, l := range buf.lines() {
			switch {
			case l["eventType"] == "MESSAGE" && l["status"] == float64(429):
				throttledMsg = l
			case l["eventType"] == "CONNECT" && l["status"] == float64(429):
				throttledUpgrade = l
			}
		}
		return throttledMsg != nil && throttledUpgrade != nil
	}, func() string { return fmt.Sprintf("access log: %v", buf.lines()) })
	require.Equal(t, frame["requestId"], throttledMsg["requestId"])
	require.Equal(t, "echo", throttledMsg["routeKey"])
	require.Equal(t, "203.0.113.7", throttledUpgrade["identity.sourceIp"])
}
