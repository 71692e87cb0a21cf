package wsroutetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

	mu  sync.Mutex
	ids map[string]string // client address → connection ID, from $connect
}

// ServerOptions configures [NewServer]. The zero value serves the router at
// "/".
type ServerOptions struct {
	// Handler is what the server serves. Default: the router itself. Set it
	// when the router is mounted in a larger handler (a mux that also serves
	// a page or the management API).
	Handler http.Handler
	// Path is the path of the WebSocket endpoint within Handler. Default
	// "/" when Handler is not set. When Handler is set, the default is the
	// first of "/" and "/ws" where Handler serves the router, which NewServer
	// finds with a plain GET (the router answers it with 426); when it is at
	// neither, NewServer fails the test and says to set Path.
	Path string
	// ShutdownTimeout bounds Router.Shutdown when the test ends. Default
	// [DefaultTimeout].
	ShutdownTimeout time.Duration
}

// defaultPaths are where NewServer looks for the router within a Handler.
var defaultPaths = []string{"/", "/ws"}

// NewRouter returns a router made by [wsroute.New] with opts, failing the test
// when New fails. Serve it with [NewServer], which also shuts it down. Unless
// opts sets a Logger, the router logs through t.Logf (see [Logger]), so a
// handler's error or panic shows beside the failing test.
func NewRouter(t TB, opts *wsroute.Options) *wsroute.Router {
	t.Helper()
	var o wsroute.Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = Logger(t)
	}
	r, err := wsroute.New(&o)
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
//
// So that each [Client] can tell its connection ID ([Client.ConnectionID]),
// NewServer adds a middleware to r ([wsroute.Router.Use]) that notes the ID
// of each connection $connect accepts; it changes nothing else.
func NewServer(t TB, r *wsroute.Router, opts *ServerOptions) *Server {
	t.Helper()
	var o ServerOptions
	if opts != nil {
		o = *opts
	}
	probe := o.Handler != nil && o.Path == ""
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
	s := &Server{Router: r, ids: map[string]string{}}
	if r != nil {
		r.Use(s.noteConnectionIDs)
	}
	inner := o.Handler
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		inner.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), remoteAddrKey{}, req.RemoteAddr)))
	}))
	s.HTTP = hs
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
	if probe {
		path, err := findEndpoint(hs.URL)
		if err != nil {
			t.Fatalf("wsroutetest: NewServer: %v", err)
		}
		o.Path = path
	}
	s.URL = "ws" + strings.TrimPrefix(hs.URL, "http") + o.Path
	return s
}

// findEndpoint returns the first of defaultPaths at which the server answers
// a plain GET with 426 Upgrade Required, as a router does.
func findEndpoint(base string) (string, error) {
	client := &http.Client{Timeout: DefaultTimeout}
	defer client.CloseIdleConnections()
	var got []string
	for _, p := range defaultPaths {
		resp, err := client.Get(base + p)
		if err != nil {
			return "", err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if resp.StatusCode == http.StatusUpgradeRequired {
			return p, nil
		}
		got = append(got, fmt.Sprintf("%s answers %d", p, resp.StatusCode))
	}
	return "", fmt.Errorf("ServerOptions.Handler serves no WebSocket endpoint at %s (%s); "+
		"set ServerOptions.Path to the path where Handler mounts the router", strings.Join(defaultPaths, " or "), strings.Join(got, ", "))
}

type remoteAddrKey struct{}

// noteConnectionIDs is the middleware that records, for each connection
// $connect accepts, its ID under the client's address.
func (s *Server) noteConnectionIDs(next wsroute.Handler) wsroute.Handler {
	return wsroute.HandlerFunc(func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		resp, err := next.ServeEvent(ctx, req)
		if req.RequestContext.EventType != wsroute.EventConnect || err != nil ||
			(resp != nil && resp.StatusCode > 299) {
			return resp, err
		}
		if addr, ok := ctx.Value(remoteAddrKey{}).(string); ok {
			s.mu.Lock()
			s.ids[addr] = req.RequestContext.ConnectionID
			s.mu.Unlock()
		}
		return resp, err
	})
}

// connectionID returns the ID $connect saw for the client at addr.
func (s *Server) connectionID(addr string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[addr]
}

// Dial opens a WebSocket client to the server's endpoint; see [Dial]. The
// client knows its connection ID ([Client.ConnectionID]) and, unless opts
// sets RouteSelection, sends actions with the router's route selection
// expression.
func (s *Server) Dial(t TB, opts *DialOptions) *Client {
	t.Helper()
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	if o.RouteSelection == nil && s.Router != nil {
		o.RouteSelection = s.Router.RouteSelectionExpression()
	}
	c := Dial(t, s.URL, &o)
	c.server = s
	return c
}

// DialRefused expects the server to refuse the handshake; see [DialRefused].
func (s *Server) DialRefused(t TB, opts *DialOptions) *http.Response {
	t.Helper()
	return DialRefused(t, s.URL, opts)
}
