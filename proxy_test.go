package wsroute_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
)

var traceIDPattern = regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$`)

// TestTrustedProxies checks identity.sourceIp and the X-Forwarded-* and
// X-Amzn-Trace-Id headers of CONNECT events, with and without a trusted
// proxy, when the client made up all of them.
func TestTrustedProxies(t *testing.T) {
	spoofed := http.Header{
		"X-Forwarded-For":   {"6.6.6.6, 203.0.113.7", "10.1.2.3"},
		"X-Forwarded-Port":  {"8443"},
		"X-Forwarded-Proto": {"https"},
		"X-Amzn-Trace-Id":   {"Root=1-00000000-000000000000000000000000"},
	}
	tests := []struct {
		name       string
		trusted    []string
		forwarded  bool // the event keeps what the peer sent
		headers    http.Header
		wantFor    string
		wantSource string
	}{
		{name: "no trusted proxies", headers: spoofed, wantSource: "127.0.0.1", wantFor: "127.0.0.1"},
		{name: "peer not trusted", trusted: []string{"10.0.0.0/8"}, headers: spoofed, wantSource: "127.0.0.1", wantFor: "127.0.0.1"},
		{name: "peer and 10/8 trusted", trusted: []string{"127.0.0.1", "10.0.0.0/8"}, headers: spoofed, forwarded: true,
			wantSource: "203.0.113.7", wantFor: "6.6.6.6, 203.0.113.7, 10.1.2.3"},
		{name: "only the peer trusted", trusted: []string{"127.0.0.0/8"}, headers: spoofed, forwarded: true,
			wantSource: "10.1.2.3", wantFor: "6.6.6.6, 203.0.113.7, 10.1.2.3"},
		{name: "garbage in the chain", trusted: []string{"127.0.0.1/32", "10.0.0.0/8"},
			headers:    http.Header{"X-Forwarded-For": {"203.0.113.7, not-an-ip, 10.1.2.3"}},
			forwarded:  true,
			wantSource: "10.1.2.3", wantFor: "203.0.113.7, not-an-ip, 10.1.2.3"},
		{name: "trusted peer without headers", trusted: []string{"127.0.0.1"}, headers: http.Header{},
			wantSource: "127.0.0.1", wantFor: "127.0.0.1"},
		{name: "IPv6 with port and brackets", trusted: []string{"127.0.0.1"},
			headers:    http.Header{"X-Forwarded-For": {"[2001:db8::1]:4711"}},
			forwarded:  true,
			wantSource: "2001:db8::1", wantFor: "[2001:db8::1]:4711"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRouter(t, &wsroute.Options{TrustedProxies: tt.trusted})
			rec := newRecorder()
			r.Handle(wsroute.RouteConnect, rec)
			r.HandleFunc("whoami", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
				return &wsroute.Response{Body: req.RequestContext.Identity.SourceIP}, nil
			})
			srv := serve(t, r)
			c := dial(t, srv, &websocket.DialOptions{HTTPHeader: tt.headers})
			ev := rec.next(t)
			require.Equal(t, tt.wantSource, ev.RequestContext.Identity.SourceIP)
			require.Equal(t, tt.wantFor, ev.Headers["X-Forwarded-For"])
			require.Equal(t, []string{tt.wantFor}, ev.MultiValueHeaders["X-Forwarded-For"])
			u, err := url.Parse(srv.URL)
			require.NoError(t, err)
			if tt.forwarded && tt.headers.Get("X-Forwarded-Port") != "" {
				require.Equal(t, "8443", ev.Headers["X-Forwarded-Port"])
				require.Equal(t, "https", ev.Headers["X-Forwarded-Proto"])
				require.Equal(t, "Root=1-00000000-000000000000000000000000", ev.Headers["X-Amzn-Trace-Id"])
			} else {
				require.Equal(t, u.Port(), ev.Headers["X-Forwarded-Port"])
				require.Equal(t, "http", ev.Headers["X-Forwarded-Proto"])
				require.Regexp(t, traceIDPattern, ev.Headers["X-Amzn-Trace-Id"])
				require.NotEqual(t, "Root=1-00000000-000000000000000000000000", ev.Headers["X-Amzn-Trace-Id"])
			}
			// Every later event has the same identity.
			send(t, c, `{"action":"whoami"}`)
			require.Equal(t, tt.wantSource, read(t, c))
		})
	}
}

// TestTrustedProxiesInvalid: an entry that is neither a CIDR nor an address
// fails New.
func TestTrustedProxiesInvalid(t *testing.T) {
	_, err := wsroute.New(&wsroute.Options{TrustedProxies: []string{"10.0.0.0/8", "10.0.0.300"}})
	require.ErrorContains(t, err, `"10.0.0.300" is neither a CIDR nor an IP address`)
}

// TestTraceIDsDiffer: each CONNECT gets a trace ID of its own.
func TestTraceIDsDiffer(t *testing.T) {
	r := newRouter(t, nil)
	rec := newRecorder()
	r.Handle(wsroute.RouteConnect, rec)
	srv := serve(t, r)
	dial(t, srv, nil)
	dial(t, srv, nil)
	a, b := rec.next(t).Headers["X-Amzn-Trace-Id"], rec.next(t).Headers["X-Amzn-Trace-Id"]
	require.Regexp(t, traceIDPattern, a)
	require.NotEqual(t, a, b)
}
