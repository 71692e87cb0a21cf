// Package otel traces and measures a wsroute Router with OpenTelemetry: a
// span per event handled, carrying the W3C trace context (traceparent) of
// the $connect request to the connection's later events, and API Gateway's
// WebSocket metrics through the OpenTelemetry metrics API.
//
// An [Observer] is a [wsroute.Observer]: set it as Options.Observer and
// ManagementOptions.Observer.
//
// # Spans
//
//   - The upgrade request gets a server span "wsroute $connect", child of
//     the request's traceparent when it has one. The Authorizer and the
//     $connect handler run with it in their ctx.
//   - Each MESSAGE and DISCONNECT event gets a server span named
//     "wsroute <routeKey>", a child of the connection's $connect span, so a
//     connection's events form one trace; with Options.LinkOnly each event
//     starts a trace of its own that links to the $connect span instead (for
//     backends that dislike traces hours long). The handler runs with the
//     span in its ctx. A message refused before a handler ran gets a span
//     too.
//   - Each @connections management call gets a server span "wsroute
//     @connections <METHOD>", child of the management request's traceparent,
//     with a link to the $connect span of the connection it names, when
//     that connection is open on this Observer's Router.
//
// Span attributes: wsroute.event_type, wsroute.route_key,
// wsroute.connection_id, wsroute.request_id, wsroute.message_id,
// wsroute.status (API Gateway's $context.status), and for management calls
// http.request.method and http.response.status_code. A span's status is
// Error when the event failed with a 5xx or the handler returned an error.
//
// # Metrics
//
// The instruments mirror the prometheus module's metrics, with the
// attributes api, stage, route, status, direction, code and method:
// wsroute.connect.requests, wsroute.messages.received,
// wsroute.messages.sent, wsroute.message.bytes, wsroute.client_errors,
// wsroute.integration_errors, wsroute.execution_errors,
// wsroute.integration.latency (histogram, seconds),
// wsroute.connections.open (up-down counter), wsroute.send_queue.drops,
// wsroute.closes and wsroute.management.calls.
package otel

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	gotel "go.opentelemetry.io/otel"

	"github.com/wsroute/wsroute"
)

const scope = "github.com/wsroute/wsroute/otel"

// Options configures [New]. A nil *Options means every default.
type Options struct {
	// TracerProvider and MeterProvider default to OpenTelemetry's global
	// providers.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider

	// Propagator reads the trace context of upgrade and management
	// requests. Default: W3C trace context (traceparent, tracestate).
	Propagator propagation.TextMapPropagator

	// API and Stage are the values of the api and stage attributes of every
	// measurement: the Router's Options.APIID and Stage. Default "local".
	API, Stage string

	// LinkOnly makes each later event of a connection start a trace of its
	// own, linked to the $connect span, instead of a child span of it.
	LinkOnly bool
}

// Observer traces and measures a Router. It is safe for concurrent use.
// Use one per Router.
type Observer struct {
	wsroute.NopObserver

	tracer     trace.Tracer
	prop       propagation.TextMapPropagator
	linkOnly   bool
	api, stage string
	baseOpt    metric.MeasurementOption // api, stage
	inOpt      metric.MeasurementOption // api, stage, direction=in
	outOpt     metric.MeasurementOption // api, stage, direction=out
	opts       sync.Map                 // "key=value" → api, stage, key=value; bounded by routes, statuses and codes

	conns sync.Map // connection ID → trace.SpanContext of $connect, while open

	connects, received, sent, bytes, clientErr, integrationErr, executeErr,
	drops, closes, mgmt metric.Int64Counter
	latency metric.Float64Histogram
	open    metric.Int64UpDownCounter
}

var _ wsroute.Observer = (*Observer)(nil)

// New returns an Observer. It fails when an instrument cannot be created.
func New(opts *Options) (*Observer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.TracerProvider == nil {
		o.TracerProvider = gotel.GetTracerProvider()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = gotel.GetMeterProvider()
	}
	if o.Propagator == nil {
		o.Propagator = propagation.TraceContext{}
	}
	if o.API == "" {
		o.API = "local"
	}
	if o.Stage == "" {
		o.Stage = "local"
	}
	ob := &Observer{
		tracer:   o.TracerProvider.Tracer(scope),
		prop:     o.Propagator,
		linkOnly: o.LinkOnly,
		api:      o.API,
		stage:    o.Stage,
	}
	ob.baseOpt = metric.WithAttributeSet(attribute.NewSet(attribute.String("api", o.API), attribute.String("stage", o.Stage)))
	ob.inOpt = ob.with("direction", "in")
	ob.outOpt = ob.with("direction", "out")
	m := o.MeterProvider.Meter(scope)
	var errs []error
	counter := func(name, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	ob.connects = counter("wsroute.connect.requests", "Upgrade requests answered, by status. CloudWatch: ConnectCount.")
	ob.received = counter("wsroute.messages.received", "Messages received, by route. CloudWatch: MessageCount (in).")
	ob.sent = counter("wsroute.messages.sent", "Frames queued for clients. CloudWatch: MessageCount (out).")
	ob.bytes = counter("wsroute.message.bytes", "Payload bytes of data frames, by direction.")
	ob.clientErr = counter("wsroute.client_errors", "Events refused with a 4xx before a handler ran. CloudWatch: ClientError.")
	ob.integrationErr = counter("wsroute.integration_errors", "Handler errors and $connect refusals. CloudWatch: IntegrationError.")
	ob.executeErr = counter("wsroute.execution_errors", "Handler panics and 5xx before a handler. CloudWatch: ExecutionError.")
	ob.drops = counter("wsroute.send_queue.drops", "Frames refused for a full send queue.")
	ob.closes = counter("wsroute.closes", "Connections ended, by close code.")
	ob.mgmt = counter("wsroute.management.calls", "@connections calls, by method and status.")
	var err error
	ob.latency, err = m.Float64Histogram("wsroute.integration.latency", metric.WithUnit("s"),
		metric.WithDescription("Time in the route's handler. CloudWatch: IntegrationLatency."))
	errs = append(errs, err)
	ob.open, err = m.Int64UpDownCounter("wsroute.connections.open", metric.WithDescription("Connections open now."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ob, nil
}

// with returns the measurement option of the attributes api, stage and
// key=value, made once per key and value.
func (o *Observer) with(key, value string) metric.MeasurementOption {
	k := key + "=" + value
	if v, ok := o.opts.Load(k); ok {
		return v.(metric.MeasurementOption)
	}
	opt := metric.WithAttributeSet(attribute.NewSet(attribute.String("api", o.api), attribute.String("stage", o.stage),
		attribute.String(key, value)))
	o.opts.Store(k, opt)
	return opt
}

// connState is what the router keeps per connection: the $connect span's
// context.
type connState struct{ sc trace.SpanContext }

// Upgrade starts the $connect span.
func (o *Observer) Upgrade(ctx context.Context, req *http.Request) (context.Context, any) {
	ctx = o.prop.Extract(ctx, propagation.HeaderCarrier(req.Header))
	ctx, span := o.tracer.Start(ctx, "wsroute "+wsroute.RouteConnect, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("wsroute.event_type", wsroute.EventConnect),
			attribute.String("wsroute.route_key", wsroute.RouteConnect)))
	return ctx, &connState{sc: span.SpanContext()}
}

// Start starts the span of a MESSAGE or DISCONNECT event.
func (o *Observer) Start(ctx context.Context, state any, ev *wsroute.Request) context.Context {
	ctx, _ = o.startEvent(ctx, state, ev, time.Time{})
	return ctx
}

func (o *Observer) startEvent(ctx context.Context, state any, ev *wsroute.Request, at time.Time) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(eventAttrs(ev)...)}
	if !at.IsZero() {
		opts = append(opts, trace.WithTimestamp(at))
	}
	if s, ok := state.(*connState); ok && s.sc.IsValid() {
		if o.linkOnly {
			opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: s.sc}))
		} else {
			ctx = trace.ContextWithSpanContext(ctx, s.sc)
		}
	}
	return o.tracer.Start(ctx, "wsroute "+ev.RequestContext.RouteKey, opts...)
}

func eventAttrs(ev *wsroute.Request) []attribute.KeyValue {
	rc := &ev.RequestContext
	a := []attribute.KeyValue{
		attribute.String("wsroute.event_type", rc.EventType),
		attribute.String("wsroute.route_key", rc.RouteKey),
		attribute.String("wsroute.connection_id", rc.ConnectionID),
		attribute.String("wsroute.request_id", rc.RequestID),
	}
	if rc.MessageID != "" {
		a = append(a, attribute.String("wsroute.message_id", rc.MessageID))
	}
	return a
}

// End ends the event's span and counts the event.
func (o *Observer) End(ctx context.Context, state any, ev *wsroute.Request, res *wsroute.EventResult) {
	route, typ := wsroute.RouteConnect, wsroute.EventConnect
	if ev != nil {
		route, typ = ev.RequestContext.RouteKey, ev.RequestContext.EventType
	}
	span := trace.SpanFromContext(ctx)
	if typ != wsroute.EventConnect && !span.SpanContext().IsValid() { // refused before Start
		var at time.Time
		if ev.RequestContext.RequestTimeEpoch != 0 {
			at = time.UnixMilli(ev.RequestContext.RequestTimeEpoch)
		}
		_, span = o.startEvent(ctx, state, ev, at)
	}
	if typ == wsroute.EventConnect && ev != nil {
		span.SetAttributes(eventAttrs(ev)...)
	}
	span.SetAttributes(attribute.Int("wsroute.status", res.Status))
	if res.Err != nil {
		span.RecordError(res.Err)
	}
	if res.Err != nil || res.Status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(res.Status))
	}
	span.End()

	bg := context.Background()
	routeAttr := o.with("route", route)
	switch typ {
	case wsroute.EventConnect:
		o.connects.Add(bg, 1, o.with("status", strconv.Itoa(res.Status)))
		if res.Status == http.StatusOK {
			o.open.Add(bg, 1, o.baseOpt)
			if s, ok := state.(*connState); ok && ev != nil {
				o.conns.Store(ev.RequestContext.ConnectionID, s.sc)
			}
		}
	case wsroute.EventMessage:
		o.received.Add(bg, 1, routeAttr)
	}
	if res.Integrated {
		o.latency.Record(bg, res.IntegrationLatency.Seconds(), routeAttr)
	}
	switch {
	case res.ClientError():
		o.clientErr.Add(bg, 1, routeAttr)
	case res.IntegrationError():
		o.integrationErr.Add(bg, 1, routeAttr)
	case res.ExecutionError():
		o.executeErr.Add(bg, 1, routeAttr)
	}
}

// Frame counts a data frame.
func (o *Observer) Frame(_ any, f wsroute.FrameInfo) {
	bg := context.Background()
	switch {
	case !f.Outbound:
		o.bytes.Add(bg, int64(f.Size), o.inOpt)
	case f.Err == nil:
		o.sent.Add(bg, 1, o.baseOpt)
		o.bytes.Add(bg, int64(f.Size), o.outOpt)
	case errors.Is(f.Err, wsroute.ErrLimitExceeded):
		o.drops.Add(bg, 1, o.baseOpt)
	}
}

// Closed counts a connection's end.
func (o *Observer) Closed(_ any, connectionID string, code int, _ string) {
	o.conns.Delete(connectionID)
	bg := context.Background()
	o.open.Add(bg, -1, o.baseOpt)
	o.closes.Add(bg, 1, o.with("code", strconv.Itoa(code)))
}

// ManagementCall records the span of a management call and counts it.
func (o *Observer) ManagementCall(req *http.Request, call *wsroute.ManagementCall) {
	ctx := o.prop.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(call.Start),
		trace.WithAttributes(attribute.String("http.request.method", call.Method),
			attribute.Int("http.response.status_code", call.Status),
			attribute.String("wsroute.connection_id", call.ConnectionID),
			attribute.String("wsroute.request_id", call.RequestID))}
	if sc, ok := o.conns.Load(call.ConnectionID); ok {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc.(trace.SpanContext)}))
	}
	_, span := o.tracer.Start(ctx, "wsroute @connections "+call.Method, opts...)
	if call.Status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(call.Status))
	}
	span.End(trace.WithTimestamp(call.Start.Add(call.Duration)))
	o.mgmt.Add(context.Background(), 1, metric.WithAttributeSet(attribute.NewSet(attribute.String("api", o.api),
		attribute.String("stage", o.stage), attribute.String("method", method(call.Method)),
		attribute.String("status", strconv.Itoa(call.Status)))))
}

// method bounds the method label: a client may send any method.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodDelete:
		return m
	}
	return "OTHER"
}
