package wsroute

import (
	"context"
	"maps"
	"slices"
)

// Middleware wraps a [Handler], in the style of net/http middleware
// (func(http.Handler) http.Handler): it can act before and after the
// handler, change the event or the response, or answer without calling it.
type Middleware func(Handler) Handler

// Use adds middleware that wraps the handler of every route: $connect,
// $disconnect, $default and custom routes, whether they were registered
// before or after the call. It is the place for logging, metrics, checks and
// recovery that apply to all routes.
//
// Middleware runs in the order it was added: after Use(a, b) and Use(c), an
// event reaches a, then b, then c, then the route's handler. Once any
// middleware is in use it runs on every connection's $connect and
// $disconnect even when those routes are not registered (around a handler
// that accepts and does nothing, as an absent route does), so that a check
// or a log line cannot be skipped. A message that finds no route and no
// $default runs no middleware: the client gets the Forbidden frame.
//
// Wrapping happens once, when a route or a middleware is added, so
// middleware costs nothing per event beyond its own calls. The router's
// panic recovery and error logging sit outside all middleware.
//
// To wrap one route only, wrap its handler when registering it:
// r.Handle("send", withQuota(h)).
//
// Middleware is applied while the router holds its route lock: it must not
// call Handle or Use. Use panics on a nil middleware or one that returns a
// nil Handler, and then changes nothing.
func (r *Router) Use(mw ...Middleware) {
	for _, m := range mw {
		if m == nil {
			panic("wsroute: Use: nil middleware")
		}
	}
	r.routesMu.Lock()
	defer r.routesMu.Unlock()
	all := append(slices.Clip(r.middleware), mw...)
	wrapped := wrapAll(all, r.rawRoutes) // may panic: nothing is changed yet
	r.middleware = all
	r.routes.Store(&wrapped)
}

// registerLocked adds h for routeKey, wrapped in the router's middleware.
// The caller holds routesMu and has checked that routeKey is new.
func (r *Router) registerLocked(routeKey string, h Handler) {
	w := wrap(r.middleware, routeKey, h) // may panic: nothing is changed yet
	if r.rawRoutes == nil {
		r.rawRoutes = map[string]Handler{}
	}
	r.rawRoutes[routeKey] = h
	m := maps.Clone(*r.routes.Load()) // replaces a stand-in for $connect or $disconnect
	m[routeKey] = w
	r.routes.Store(&m)
}

// acceptAll stands in for an absent $connect or $disconnect route when
// middleware must run around it.
var acceptAll = HandlerFunc(func(context.Context, *Request) (*Response, error) { return nil, nil })

// wrapAll returns the routes wrapped in mw; with mw, $connect and
// $disconnect are always present.
func wrapAll(mw []Middleware, raw map[string]Handler) map[string]Handler {
	out := make(map[string]Handler, len(raw)+2)
	for k, h := range raw {
		out[k] = wrap(mw, k, h)
	}
	if len(mw) > 0 {
		for _, k := range []string{RouteConnect, RouteDisconnect} {
			if _, ok := raw[k]; !ok {
				out[k] = wrap(mw, k, acceptAll)
			}
		}
	}
	return out
}

// wrap applies mw to h, the first added outermost.
func wrap(mw []Middleware, routeKey string, h Handler) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
		if h == nil {
			panic("wsroute: middleware returned a nil Handler for route " + routeKey)
		}
	}
	return h
}
