package wsroute

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Handler responds to one event of a connection: $connect, $disconnect, a
// message routed to a custom route, or $default.
//
// # Which goroutine, and in what order
//
// $connect runs on the goroutine serving the HTTP upgrade request, before the
// handshake completes. Messages of one connection are handled one at a time, in
// the order they arrived, on that connection's own goroutine, so a slow handler
// delays only its own connection. $disconnect runs once, after the last message
// handler of the connection has returned. Handlers of different connections run
// concurrently.
//
// The ctx passed to a handler carries the router's [ConnectionManager] (see
// [ConnectionsFromContext]). For $connect it is the HTTP request's context; for
// every other event it is the router's, which is cancelled only when
// [Router.Shutdown] gives up waiting.
//
// A handler that returns an error, or panics, gets the client the Internal
// server error frame (on $connect: HTTP 500); the error or panic is logged to
// [Options.Logger] ([slog.Default] unless set). An [IntegrationError] chooses
// the status and message instead, as API Gateway answers a failing
// integration (502, 504 "Endpoint request timed out").
//
// Frames a message handler posts to its own connection (with
// [ConnectionManager.PostToConnection]) before it returns reach the client
// before its [Response.Body].
type Handler interface {
	ServeEvent(ctx context.Context, req *Request) (*Response, error)
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, req *Request) (*Response, error)

// ServeEvent calls f(ctx, req).
func (f HandlerFunc) ServeEvent(ctx context.Context, req *Request) (*Response, error) {
	return f(ctx, req)
}

// Router is a WebSocket endpoint with API Gateway's routing model. Mount it
// as an [http.Handler]; register routes with [Router.Handle] before or while it
// serves. All its methods are safe for concurrent use.
//
// A Router never starts a listener. [http.Server.Shutdown] does not touch
// hijacked connections, so call [Router.Shutdown] as well.
type Router struct {
	opts         Options // defaults filled in
	expr         *Expression
	log          *slog.Logger
	identitySrcs []identitySource
	apiKeys      apiKeySet
	quotas       *quotaGate // nil without Options.Quotas
	iam          *iamAuth   // nil unless Options.IAM

	throttle *throttler      // nil without Options.Throttle
	proxies  *trustedProxies // nil without Options.TrustedProxies

	routesMu sync.Mutex
	routes   atomic.Pointer[map[string]Handler] // copy on write

	// routes holds the handlers wrapped in middleware (middleware.go).
	rawRoutes  map[string]Handler // as registered; guarded by routesMu
	middleware []Middleware       // guarded by routesMu

	conns connTable
	cm    *localConnections
	ids   idSource
	clock requestClock

	groups groupTable // membership and the writer pool of group posts

	ctx    context.Context // handlers' context: carries cm, cancelled when Shutdown gives up
	cancel context.CancelFunc

	lifeMu  sync.RWMutex // held for reading while a handshake is in progress
	closing bool
	wg      sync.WaitGroup // handshakes, readers, writers and timer callbacks
}

// New returns a Router configured by opts; nil opts means every default. It
// fails when the route selection expression, the identity sources or another
// option is invalid.
func New(opts *Options) (*Router, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	expr, err := ParseExpression(o.RouteSelectionExpression)
	if err != nil {
		return nil, err
	}
	srcs, err := parseIdentitySources(o.IdentitySources)
	if err != nil {
		return nil, err
	}
	if len(srcs) > 0 && o.Authorizer == nil {
		return nil, errors.New("wsroute: Options.IdentitySources needs an Options.Authorizer")
	}
	r := &Router{
		opts:         o,
		expr:         expr,
		log:          o.Logger,
		identitySrcs: srcs,
		quotas:       newQuotaGate(o.Quotas),
	}
	r.apiKeys = newAPIKeySet(o.APIKeys)
	r.routes.Store(&map[string]Handler{})
	r.conns.init()
	r.cm = &localConnections{r: r}
	if r.iam, err = newUpgradeAuth(&o); err != nil {
		return nil, err
	}
	if r.throttle, err = newThrottler(o.Throttle); err != nil {
		return nil, err
	}
	if r.proxies, err = parseTrustedProxies(o.TrustedProxies); err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	r.ctx = ContextWithConnections(base, r.cm)
	r.cancel = cancel
	if err := r.attachBackplane(); err != nil {
		cancel()
		return nil, err
	}
	return r, nil
}

// Handle registers h for routeKey: $connect, $disconnect, $default, or a
// custom route key that the route selection expression yields. Custom keys may
// not start with "$". Handle panics on an invalid key, a nil handler, or a key
// registered twice.
func (r *Router) Handle(routeKey string, h Handler) {
	switch {
	case routeKey == "":
		panic("wsroute: empty route key")
	case h == nil:
		panic("wsroute: nil handler for route " + routeKey)
	case strings.HasPrefix(routeKey, "$") && routeKey != RouteConnect &&
		routeKey != RouteDisconnect && routeKey != RouteDefault:
		panic(fmt.Sprintf("wsroute: route key %q is reserved: custom route keys may not start with \"$\"", routeKey))
	}
	r.routesMu.Lock()
	defer r.routesMu.Unlock()
	if _, dup := r.rawRoutes[routeKey]; dup {
		panic(fmt.Sprintf("wsroute: route %q registered twice", routeKey))
	}
	h = r.quotas.route(h, len(r.rawRoutes)+1)
	r.registerLocked(routeKey, h) // middleware.go
}

// HandleFunc registers f for routeKey, as [Router.Handle] does.
func (r *Router) HandleFunc(routeKey string, f func(context.Context, *Request) (*Response, error)) {
	if f == nil {
		panic("wsroute: nil handler for route " + routeKey)
	}
	r.Handle(routeKey, HandlerFunc(f))
}

func (r *Router) route(key string) Handler { return (*r.routes.Load())[key] }

// Connections returns the ConnectionManager of the router's own connections,
// and with [Options.Backplane] of every connection of the API. Handlers can
// also reach it with [ConnectionsFromContext].
func (r *Router) Connections() ConnectionManager { return r.cm }

// ServeHTTP is the WebSocket endpoint. It answers a request that is not a
// WebSocket upgrade with 426 Upgrade Required. Otherwise it runs the API key
// check, the authorizer and the $connect route, completes the handshake, and
// returns; the connection is then served on goroutines of its own.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w, req, observed := r.observeUpgrade(w, req)
	defer observed()
	if status, msg := checkHandshake(req); status != 0 {
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "websocket")
		}
		if msg == msgBadVersion {
			w.Header().Set("Sec-WebSocket-Version", "13") // RFC 6455 §4.4
		}
		http.Error(w, msg, status)
		return
	}
	if !r.opts.InsecureSkipVerify {
		if err := checkOrigin(req, r.opts.OriginPatterns); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
	}
	r.lifeMu.RLock()
	if r.closing {
		r.lifeMu.RUnlock()
		http.Error(w, "wsroute: shutting down", http.StatusServiceUnavailable)
		return
	}
	r.wg.Add(1)
	r.lifeMu.RUnlock()
	defer r.wg.Done()
	if !r.quotas.admit(w, req) {
		return
	}
	r.serveHandshake(w, req)
}

func (r *Router) serveHandshake(w http.ResponseWriter, req *http.Request) {
	if r.apiKeys != nil {
		if !r.apiKeys.valid(req.Header.Get("X-Api-Key")) {
			writeJSONMessage(w, http.StatusForbidden, "Forbidden")
			return
		}
	}
	now := time.Now()
	c := r.newConn(req, now)
	ev := c.connectEvent(req, now)
	r.bindUpgrade(w, c, ev)
	if !r.throttle.admit(w, c) { // per source IP, $connect route
		return
	}

	if r.opts.Authorizer != nil {
		status, msg := r.authorize(req, c, ev)
		if status != 0 {
			writeJSONMessage(w, status, msg)
			return
		}
		ev.RequestContext.Authorizer = c.authorizer
	}
	if !r.authorizeUpgrade(w, req, c, ev) { // AWS_IAM, usage plans
		return
	}

	subprotocol := ""
	if h := r.route(RouteConnect); h != nil {
		ctx := ContextWithConnections(req.Context(), r.cm)
		resp, err := c.handle(ctx, h, ev)
		if err != nil {
			status, msg := integrationFailure(err)
			writeJSONMessage(w, status, msg)
			return
		}
		if resp != nil {
			if resp.StatusCode != 0 && (resp.StatusCode < 200 || resp.StatusCode > 599) {
				r.log.Error("wsroute: $connect returned an invalid status", "connectionId", c.id, "status", resp.StatusCode)
				writeJSONMessage(w, http.StatusInternalServerError, "Internal server error")
				return
			}
			if resp.StatusCode > 299 {
				r.log.Debug("wsroute: $connect refused the connection", "connectionId", c.id, "status", resp.StatusCode)
				writeRefusal(w, resp)
				return
			}
			subprotocol = headerValue(resp.Headers, resp.MultiValueHeaders, "Sec-WebSocket-Protocol")
		}
	}

	// Reachable from here on, before the client learns it is connected:
	// frames posted now wait in the queue until the socket exists.
	c.register()
	c.accepted()

	ws, err := r.upgrade(w, req, c, subprotocol)
	if err != nil {
		// $connect succeeded, so $disconnect must run: the client is gone.
		r.log.Warn("wsroute: handshake failed after $connect", "connectionId", c.id, "err", err)
		c.finish(websocket.StatusAbnormalClosure, "")
		return
	}
	c.start(ws)
}

// call runs h, turning a panic into an error.
func (r *Router) call(ctx context.Context, h Handler, req *Request) (resp *Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("wsroute: handler panicked", "routeKey", req.RequestContext.RouteKey,
				"connectionId", req.RequestContext.ConnectionID, "panic", p, "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("%w: %v", errPanicked, p)
		}
	}()
	resp, err = h.ServeEvent(ctx, req)
	if err != nil {
		r.log.Error("wsroute: handler failed", "routeKey", req.RequestContext.RouteKey,
			"connectionId", req.RequestContext.ConnectionID, "err", err)
	}
	return resp, err
}

// Shutdown stops accepting connections, closes every open connection with
// 1001 "Going away", runs each one's $disconnect route, and waits for them. When
// ctx ends first it closes the remaining sockets at once, cancels the context
// given to handlers, and returns ctx.Err() without waiting for handlers that
// ignore it. A second call returns ErrRouterClosed. Last, it closes the
// [Options.Backplane], if any.
func (r *Router) Shutdown(ctx context.Context) error {
	r.lifeMu.Lock()
	if r.closing {
		r.lifeMu.Unlock()
		return ErrRouterClosed
	}
	r.closing = true
	r.lifeMu.Unlock()
	defer r.closeBackplane()
	// Handshakes under way register their connections after the sweep
	// below; this makes them close themselves (see connTable.add).
	r.conns.closed.Store(true)

	n := 0
	r.conns.each(func(c *conn) {
		n++
		c.close(websocket.StatusGoingAway, reasonGoingAway)
	})
	r.log.Info("wsroute: shutting down", "connections", n)

	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		r.cancel()
		return nil
	case <-ctx.Done():
		r.cancel()
		r.conns.each(func(c *conn) { c.abort(websocket.StatusGoingAway, reasonGoingAway) })
		r.log.Warn("wsroute: shutdown deadline passed; sockets closed without a close handshake")
		return ctx.Err()
	}
}

// checkHandshake reports the status to refuse a request that cannot become a
// WebSocket connection, so that $connect never runs for one.
func checkHandshake(r *http.Request) (int, string) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return http.StatusUpgradeRequired, "Upgrade Required: this is a WebSocket endpoint"
	}
	if r.Method != http.MethodGet {
		return http.StatusMethodNotAllowed, "WebSocket handshake must be GET"
	}
	if !r.ProtoAtLeast(1, 1) {
		return http.StatusUpgradeRequired, "WebSocket handshake needs HTTP/1.1"
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return http.StatusBadRequest, msgBadVersion
	}
	if k := r.Header.Values("Sec-WebSocket-Key"); len(k) != 1 || !validWebSocketKey(strings.TrimSpace(k[0])) {
		return http.StatusBadRequest, "missing or invalid Sec-WebSocket-Key: want the base64 encoding of 16 bytes"
	}
	return 0, ""
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// headerValue finds a header in a Response case-insensitively.
func headerValue(single map[string]string, multi map[string][]string, name string) string {
	for k, v := range single {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	for k, v := range multi {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// writeJSONMessage answers a refused handshake as API Gateway does.
func writeJSONMessage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"message":%q}`, msg)
}

// writeRefusal answers a handshake that $connect refused with its Response.
func writeRefusal(w http.ResponseWriter, resp *Response) {
	h := w.Header()
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	h.Del("Sec-WebSocket-Protocol")
	w.WriteHeader(resp.StatusCode)
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = b
		}
	}
	_, _ = w.Write(body)
}
