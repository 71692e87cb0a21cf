package wsroute

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Observer is told what a [Router] and a management handler do, for metrics,
// traces and access logs: set it as [Options.Observer] and
// [ManagementOptions.Observer]. The core imports no metrics library; the
// modules github.com/wsroute/wsroute/prometheus and
// github.com/wsroute/wsroute/otel implement it, and [NewAccessLog] writes one
// log line per event. When no Observer is set, the router pays one nil check
// per call site and nothing else (see BENCHMARKS.md).
//
// # Which goroutine, and in what order
//
// Every method runs on a goroutine of the router that is serving something
// else: it must return quickly and must never block (no network I/O, no lock
// held across anything slow). An implementation is called concurrently for
// different connections, so it must be safe for concurrent use. For one
// connection the calls come in this order:
//
//  1. Upgrade, on the goroutine serving the upgrade request, when
//     [Router.ServeHTTP] is entered.
//  2. End for the CONNECT event, on the same goroutine: status 200 when
//     $connect has accepted the connection, before the handshake response
//     is written (a handshake that then fails ends as a close with 1006);
//     or the refusal's status, once it is written. Nothing more follows a
//     refusal.
//  3. For each message, on the connection's read goroutine: Frame (inbound),
//     then Start and End around the handler (End alone when the message
//     was refused before a handler ran), then Frame (outbound) for the
//     handler's reply or the error frame (which comes before End for a
//     message an IAM policy or a usage plan refused).
//  4. Frame (outbound), for each PostToConnection and each group post
//     reaching the connection, on the poster's goroutine, at any time while
//     the connection is open.
//  5. Closed, once, on the read goroutine; then Start and End for the
//     DISCONNECT event when a $disconnect route is registered.
//
// ManagementCall runs on the goroutine serving the management request, after
// it was answered.
//
// Embed [NopObserver] in an implementation to stay source compatible when
// methods are added.
type Observer interface {
	// Upgrade is called when a request reaches [Router.ServeHTTP], before
	// any check: a request that is not a WebSocket handshake is refused
	// (426) and reported like any other refusal. Behind
	// [Options.TrustedProxies], req.RemoteAddr is the client's address
	// (without a port), as identity.sourceIp is.
	// It returns the context for the rest of the request (the Authorizer
	// and $connect see it as the request's context) and a state value that
	// the router keeps with the connection and passes to every later call
	// about it, for example the $connect request's trace context.
	Upgrade(ctx context.Context, req *http.Request) (context.Context, any)

	// Start is called just before the handler of a MESSAGE or DISCONNECT
	// event runs. The handler runs with the context it returns.
	Start(ctx context.Context, state any, ev *Request) context.Context

	// End is called once per event when it is over. ctx is what Start (for
	// CONNECT: Upgrade) returned, or the router's context for a message
	// refused before a handler ran. ev is nil for an upgrade request refused
	// before its CONNECT event was made (not a WebSocket handshake, a
	// foreign origin, a shutdown, a quota). res is valid only during the
	// call.
	End(ctx context.Context, state any, ev *Request, res *EventResult)

	// Frame reports a data frame received from the client or queued for
	// it, including one refused because the send queue was full.
	Frame(state any, f FrameInfo)

	// Closed reports that a connection accepted with status 200 has ended,
	// with the close code and reason its $disconnect event carries.
	Closed(state any, connectionID string, code int, reason string)

	// ManagementCall reports a request answered by the @connections
	// management API. req is the management request; do not read its body.
	ManagementCall(req *http.Request, call *ManagementCall)
}

// EventResult is how an event ended, as API Gateway's $context.status and
// $context.integrationLatency report it.
type EventResult struct {
	// Status is the status the event ended with: 200 when it succeeded (an
	// accepted connection included), the HTTP status a refused upgrade
	// request got, 403 for a message that no route matched or a policy
	// refused, and for a handler's error the status of its error frame
	// (500, or an IntegrationError's).
	Status int

	// Integrated reports that the route's handler ran.
	Integrated bool

	// IntegrationLatency is how long the handler ran; 0 when none ran.
	IntegrationLatency time.Duration

	// Err is the handler's error, or nil. A recovered panic is an error too;
	// Panicked then reports it.
	Err      error
	Panicked bool
}

// ClientError reports an event refused before its handler ran with a 4xx
// status: API Gateway's ClientError metric (a failed authorization or API
// key, a message no route matched, a quota).
func (r *EventResult) ClientError() bool {
	return !r.Integrated && r.Status >= 400 && r.Status < 500
}

// IntegrationError reports an event whose handler returned an error, or
// whose $connect handler refused the connection with a 4xx or 5xx status:
// API Gateway's IntegrationError metric.
func (r *EventResult) IntegrationError() bool {
	return r.Integrated && !r.Panicked && (r.Err != nil || r.Status >= 400)
}

// ExecutionError reports an event that failed in the router rather than in
// the handler's answer: a panic of the handler, or a 5xx status before a
// handler ran (a failing Authorizer, a shutdown). It is API Gateway's
// ExecutionError metric, whose errors occur calling the integration.
func (r *EventResult) ExecutionError() bool {
	return r.Panicked || (!r.Integrated && r.Status >= 500)
}

// FrameInfo describes one data frame, for [Observer.Frame].
type FrameInfo struct {
	ConnectionID string
	// Outbound is true for a frame to the client, false for one from it.
	Outbound bool
	// Size is the frame's payload, in bytes.
	Size int
	// Queued is, for an outbound frame, how many frames wait in the
	// connection's send queue after this one was queued (0 when the reply
	// is written at once, and for a frame of a group post).
	Queued int
	// Err is, for an outbound frame, why it was not queued: ErrLimitExceeded
	// when the send queue is full (the frame is dropped), ErrGone when the
	// connection is closing.
	Err error
}

// ManagementCall describes a request to the @connections management API.
type ManagementCall struct {
	// Method is the HTTP method; ConnectionID the decoded ID in the path,
	// "" when the path has none.
	Method       string
	ConnectionID string
	// Status is the HTTP status of the answer.
	Status int
	// RequestID is the x-amzn-RequestId of the answer.
	RequestID string
	// Start is when the request arrived; Duration how long it took.
	Start    time.Time
	Duration time.Duration
}

// NopObserver is an [Observer] that does nothing. Embed it to implement only
// some methods.
type NopObserver struct{}

var _ Observer = NopObserver{}

// Upgrade returns ctx and a nil state.
func (NopObserver) Upgrade(ctx context.Context, _ *http.Request) (context.Context, any) {
	return ctx, nil
}

// Start returns ctx.
func (NopObserver) Start(ctx context.Context, _ any, _ *Request) context.Context { return ctx }

// End does nothing.
func (NopObserver) End(context.Context, any, *Request, *EventResult) {}

// Frame does nothing.
func (NopObserver) Frame(any, FrameInfo) {}

// Closed does nothing.
func (NopObserver) Closed(any, string, int, string) {}

// ManagementCall does nothing.
func (NopObserver) ManagementCall(*http.Request, *ManagementCall) {}

// errPanicked wraps the error a recovered panic of a handler becomes.
var errPanicked = errors.New("wsroute: handler panicked")

// upgradeObs follows one upgrade request, and then its connection, for the
// Observer. It records the status written to the upgrade request.
type upgradeObs struct {
	http.ResponseWriter
	o     Observer
	req   *http.Request
	ctx   context.Context
	state any // kept for the connection's lifetime; read-only once it started
	ev    *Request
	res   EventResult
	ended bool
}

func nothing() {}

// observeUpgrade starts observing an upgrade request. Call the function it
// returns when the request is answered.
func (r *Router) observeUpgrade(w http.ResponseWriter, req *http.Request) (http.ResponseWriter, *http.Request, func()) {
	if r.opts.Observer == nil {
		return w, req, nothing
	}
	u := &upgradeObs{ResponseWriter: w, o: r.opts.Observer}
	seen := req
	if r.proxies != nil {
		// Behind trusted proxies the observer sees the client, as events do,
		// also for a request refused before its CONNECT event exists.
		client := *req
		client.RemoteAddr = r.proxies.clientIP(req)
		seen = &client
	}
	u.ctx, u.state = u.o.Upgrade(req.Context(), seen)
	u.req = req.WithContext(u.ctx)
	return u, u.req, u.done
}

func (u *upgradeObs) WriteHeader(status int) {
	if u.res.Status == 0 {
		u.res.Status = status
	}
	u.ResponseWriter.WriteHeader(status)
}

func (u *upgradeObs) Write(b []byte) (int, error) {
	if u.res.Status == 0 {
		u.res.Status = http.StatusOK
	}
	return u.ResponseWriter.Write(b)
}

func (u *upgradeObs) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// done reports the CONNECT event, unless accepted already did.
func (u *upgradeObs) done() {
	if u.ended {
		u.ResponseWriter, u.req = nil, nil // the connection keeps only state
		return
	}
	if u.res.Status == 0 || u.res.Status == http.StatusSwitchingProtocols {
		u.res.Status = http.StatusInternalServerError // the handshake failed after $connect
	}
	u.end()
}

func (u *upgradeObs) end() {
	u.ended = true
	u.o.End(u.ctx, u.state, u.ev, &u.res)
	u.ctx, u.ev = nil, nil
}

// bindUpgrade ties the upgrade request's observation to its connection,
// once the CONNECT event exists.
func (r *Router) bindUpgrade(w http.ResponseWriter, c *conn, ev *Request) {
	if r.opts.Observer == nil {
		return
	}
	for w != nil {
		if u, ok := w.(*upgradeObs); ok {
			u.ev, c.obs = ev, u
			return
		}
		uw, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = uw.Unwrap()
	}
}

// accepted reports the CONNECT event as a success once the connection is
// reachable, before the handshake response is written.
func (c *conn) accepted() {
	if u := c.obs; u != nil {
		u.res.Status = http.StatusOK
		u.end()
	}
}

func (c *conn) obsState() any {
	if c.obs == nil {
		return nil
	}
	return c.obs.state
}

// handle runs the handler of an event, telling the Observer.
func (c *conn) handle(ctx context.Context, h Handler, ev *Request) (*Response, error) {
	r := c.r
	o := r.opts.Observer
	if o == nil {
		return r.call(ctx, h, ev)
	}
	connect := ev.RequestContext.EventType == EventConnect
	if !connect {
		ctx = o.Start(ctx, c.obsState(), ev)
	}
	t := time.Now()
	resp, err := r.call(ctx, h, ev)
	res := EventResult{Status: http.StatusOK, Integrated: true, IntegrationLatency: time.Since(t), Err: err}
	if err != nil {
		res.Status, _ = integrationFailure(err)
		res.Panicked = errors.Is(err, errPanicked)
	} else if connect && resp != nil && resp.StatusCode > 299 {
		res.Status = resp.StatusCode
	}
	if connect {
		if c.obs != nil {
			c.obs.res = res
		}
		return resp, err
	}
	o.End(ctx, c.obsState(), ev, &res)
	return resp, err
}

// refused reports a message refused before a handler ran.
func (c *conn) refused(key, requestID, messageID string, now time.Time, status int) {
	o := c.r.opts.Observer
	if o == nil {
		return
	}
	ev := c.event(key, EventMessage, requestID, now)
	ev.RequestContext.MessageID = messageID
	o.End(c.r.ctx, c.obsState(), ev, &EventResult{Status: status})
}

// observeFrame reports a frame.
func (c *conn) observeFrame(out bool, size, queued int, err error) {
	if c.r.opts.Observer != nil {
		c.frame(out, size, queued, err)
	}
}

func (c *conn) frame(out bool, size, queued int, err error) {
	c.r.opts.Observer.Frame(c.obsState(), FrameInfo{ConnectionID: c.id, Outbound: out, Size: size, Queued: queued, Err: err})
}

// closed reports the end of a connection that started serving.
func (c *conn) closed(code int, reason string) {
	if o := c.r.opts.Observer; o != nil && c.obs != nil && c.obs.ended {
		o.Closed(c.obs.state, c.id, code, reason)
	}
}

// mgmtObs records the answer of one management request.
type mgmtObs struct {
	http.ResponseWriter
	h      *managementHandler
	r      *http.Request
	id     string
	start  time.Time
	status int
}

// observe starts observing a management request. Call the function it
// returns when the request is answered.
func (h *managementHandler) observe(w http.ResponseWriter, r *http.Request, requestID string) (http.ResponseWriter, func()) {
	if h.obs == nil {
		return w, nothing
	}
	m := &mgmtObs{ResponseWriter: w, h: h, r: r, id: requestID, start: time.Now()}
	return m, m.done
}

func (m *mgmtObs) WriteHeader(status int) {
	if m.status == 0 {
		m.status = status
	}
	m.ResponseWriter.WriteHeader(status)
}

func (m *mgmtObs) Write(b []byte) (int, error) {
	if m.status == 0 {
		m.status = http.StatusOK
	}
	return m.ResponseWriter.Write(b)
}

func (m *mgmtObs) Unwrap() http.ResponseWriter { return m.ResponseWriter }

func (m *mgmtObs) done() {
	id, _ := parseManagementPath(m.r.URL.EscapedPath())
	if !validConnectionID(id) {
		id = ""
	}
	if m.status == 0 {
		m.status = http.StatusOK
	}
	m.h.obs.ManagementCall(m.r, &ManagementCall{Method: m.r.Method, ConnectionID: id, Status: m.status,
		RequestID: m.id, Start: m.start, Duration: time.Since(m.start)})
}
