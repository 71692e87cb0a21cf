package wsroutetest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wsroute/wsroute"
)

// DefaultTimeout bounds every wait of this package when the caller's context
// has no earlier deadline: a dial, a send, an expected frame, a shutdown.
const DefaultTimeout = 5 * time.Second

// Server is a [wsroute.Router] served over HTTP on 127.0.0.1 for the length of
// a test. Create it with [NewServer].
type Server struct {
	// Router is the router under test.
	Router *wsroute.Router

	// HTTP is the underlying test server. Its URL is the http:// base URL;
	// use it for plain HTTP requests such as the management API.
	HTTP *httptest.Server

	// URL is the ws:// URL of the WebSocket endpoint.
	URL string
}

// ServerOptions configures [NewServer]. The zero value serves the router at
// "/".
type ServerOptions struct {
	// Handler is what the server serves. Default: the router itself. Set it
	// when the router is mounted in a larger handler (a mux that also serves
	// a page or the management API).
	Handler http.Handler

	// Path is the path of the WebSocket endpoint within Handler. Default "/".
	Path string

	// ShutdownTimeout bounds Router.Shutdown when the test ends. Default
	// [DefaultTimeout].
	ShutdownTimeout time.Duration
}

// NewRouter returns a router made by [wsroute.New] with opts, failing the test
// when New fails. Serve it with [NewServer], which also shuts it down.
func NewRouter(t TB, opts *wsroute.Options) *wsroute.Router {
	t.Helper()
	r, err := wsroute.New(opts)
	if err != nil {
		t.Fatalf("wsroutetest: wsroute.New: %v", err)
	}
	return r
}

// NewServer serves r (or opts.Handler) on a new [httptest.Server] on
// 127.0.0.1. When the test ends it shuts r down (closing every connection with
// 1001 and running each $disconnect), failing the test if that takes longer
// than opts.ShutdownTimeout, and then closes the HTTP server. A nil opts means
// the defaults.
func NewServer(t TB, r *wsroute.Router, opts *ServerOptions) *Server {
	t.Helper()
	var o ServerOptions
	if opts != nil {
		o = *opts
	}
	if o.Handler == nil {
		o.Handler = r
	}
	if o.Handler == nil {
		t.Fatalf("wsroutetest: NewServer needs a router or a handler")
	}
	if o.Path == "" {
		o.Path = "/"
	}
	if !strings.HasPrefix(o.Path, "/") {
		o.Path = "/" + o.Path
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultTimeout
	}
	hs := httptest.NewServer(o.Handler)
	s := &Server{
		Router: r,
		HTTP:   hs,
		URL:    "ws" + strings.TrimPrefix(hs.URL, "http") + o.Path,
	}
	t.Cleanup(func() {
		if r != nil {
			ctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
			err := r.Shutdown(ctx)
			cancel()
			if err != nil && !errors.Is(err, wsroute.ErrRouterClosed) {
				t.Errorf("wsroutetest: router shutdown: %v", err)
			}
		}
		hs.Close()
	})
	return s
}

// Dial opens a WebSocket client to the server's endpoint; see [Dial].
func (s *Server) Dial(t TB, opts *DialOptions) *Client {
	t.Helper()
	return Dial(t, s.URL, opts)
}

// DialRefused expects the server to refuse the handshake; see [DialRefused].
func (s *Server) DialRefused(t TB, opts *DialOptions) *http.Response {
	t.Helper()
	return DialRefused(t, s.URL, opts)
}
