// Package prometheus exposes a wsroute Router's activity as Prometheus
// metrics: API Gateway's CloudWatch metrics for WebSocket APIs
// (ConnectCount, MessageCount, IntegrationError, ClientError, ExecutionError,
// IntegrationLatency) under Prometheus names, labelled by api, stage and
// route, and what API Gateway does not report: open connections, bytes,
// send queue depth and drops, close codes and management API calls.
//
// A [Collector] is both a [prometheus.Collector], to register, and a
// [wsroute.Observer], to set as Options.Observer and
// ManagementOptions.Observer:
//
//	metrics := wsprom.New(&wsprom.Options{API: "chat", Stage: "prod"})
//	reg.MustRegister(metrics)
//	r, _ := wsroute.New(&wsroute.Options{APIID: "chat", Stage: "prod", Observer: metrics})
package prometheus

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/wsroute/wsroute"
)

// Options configures [New]. A nil *Options means every default.
type Options struct {
	// API and Stage are the values of the api and stage labels of every
	// metric. Set them to the Router's Options.APIID and Stage. Default
	// "local", as the Router's.
	API, Stage string

	// Namespace prefixes every metric name. Default "wsroute".
	Namespace string

	// LatencyBuckets are the upper bounds, in seconds, of the integration
	// latency histogram. Default 1 ms to 30 s (API Gateway's integration
	// timeout is 29 s).
	LatencyBuckets []float64
}

// Collector counts what a Router and its management handler do. It is safe
// for concurrent use. Use one Collector per Router; Collectors with
// different API or Stage can share a registry.
type Collector struct {
	wsroute.NopObserver

	connects, received, sent, bytes       *prom.CounterVec
	clientErr, integrationErr, executeErr *prom.CounterVec
	latency                               *prom.HistogramVec
	open                                  prom.Gauge
	queueDepth                            prom.Histogram
	drops                                 prom.Counter
	closes, mgmt                          *prom.CounterVec
	all                                   []prom.Collector
}

var (
	_ prom.Collector   = (*Collector)(nil)
	_ wsroute.Observer = (*Collector)(nil)
)

// New returns a Collector.
func New(opts *Options) *Collector {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.API == "" {
		o.API = "local"
	}
	if o.Stage == "" {
		o.Stage = "local"
	}
	if o.Namespace == "" {
		o.Namespace = "wsroute"
	}
	if o.LatencyBuckets == nil {
		o.LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	}
	cl := prom.Labels{"api": o.API, "stage": o.Stage}
	c := &Collector{}
	counter := func(name, help string, labels ...string) *prom.CounterVec {
		v := prom.NewCounterVec(prom.CounterOpts{Namespace: o.Namespace, Name: name, Help: help, ConstLabels: cl}, labels)
		c.all = append(c.all, v)
		return v
	}
	c.connects = counter("connect_requests_total",
		"Upgrade requests answered, by HTTP status (200: connected). CloudWatch: ConnectCount.", "status")
	c.received = counter("messages_received_total",
		"Messages received from clients, by route. CloudWatch: MessageCount (with messages_sent_total).", "route")
	c.sent = counter("messages_sent_total",
		"Frames queued for clients: replies and PostToConnection. CloudWatch: MessageCount (with messages_received_total).")
	c.bytes = counter("message_bytes_total", "Payload bytes of data frames, by direction (in, out).", "direction")
	c.clientErr = counter("client_errors_total",
		"Events refused with a 4xx before their handler ran, by route. CloudWatch: ClientError.", "route")
	c.integrationErr = counter("integration_errors_total",
		"Events whose handler returned an error or refused $connect, by route. CloudWatch: IntegrationError.", "route")
	c.executeErr = counter("execution_errors_total",
		"Handler panics and 5xx before a handler ran, by route. CloudWatch: ExecutionError.", "route")
	c.closes = counter("closes_total", "Connections ended, by close code.", "code")
	c.mgmt = counter("management_calls_total", "@connections management API calls, by method and status.", "method", "status")
	c.latency = prom.NewHistogramVec(prom.HistogramOpts{Namespace: o.Namespace, Name: "integration_latency_seconds",
		Help: "Time in the route's handler, by route. CloudWatch: IntegrationLatency.", ConstLabels: cl,
		Buckets: o.LatencyBuckets}, []string{"route"})
	c.open = prom.NewGauge(prom.GaugeOpts{Namespace: o.Namespace, Name: "open_connections",
		Help: "Connections open now.", ConstLabels: cl})
	c.queueDepth = prom.NewHistogram(prom.HistogramOpts{Namespace: o.Namespace, Name: "send_queue_depth",
		Help: "Frames waiting in a connection's send queue after one was queued.", ConstLabels: cl,
		Buckets: []float64{0, 1, 2, 4, 8, 16, 32, 64, 128, 256}})
	c.drops = prom.NewCounter(prom.CounterOpts{Namespace: o.Namespace, Name: "send_queue_drops_total",
		Help: "Frames refused because a connection's send queue was full (ErrLimitExceeded).", ConstLabels: cl})
	c.all = append(c.all, c.latency, c.open, c.queueDepth, c.drops)
	return c
}

// Describe implements [prom.Collector].
func (c *Collector) Describe(ch chan<- *prom.Desc) {
	for _, m := range c.all {
		m.Describe(ch)
	}
}

// Collect implements [prom.Collector].
func (c *Collector) Collect(ch chan<- prom.Metric) {
	for _, m := range c.all {
		m.Collect(ch)
	}
}

// End counts an event.
func (c *Collector) End(_ context.Context, _ any, ev *wsroute.Request, res *wsroute.EventResult) {
	route, typ := wsroute.RouteConnect, wsroute.EventConnect
	if ev != nil {
		route, typ = ev.RequestContext.RouteKey, ev.RequestContext.EventType
	}
	switch typ {
	case wsroute.EventConnect:
		c.connects.WithLabelValues(strconv.Itoa(res.Status)).Inc()
		if res.Status == http.StatusOK {
			c.open.Inc()
		}
	case wsroute.EventMessage:
		c.received.WithLabelValues(route).Inc()
	}
	if res.Integrated {
		c.latency.WithLabelValues(route).Observe(res.IntegrationLatency.Seconds())
	}
	switch {
	case res.ClientError():
		c.clientErr.WithLabelValues(route).Inc()
	case res.IntegrationError():
		c.integrationErr.WithLabelValues(route).Inc()
	case res.ExecutionError():
		c.executeErr.WithLabelValues(route).Inc()
	}
}

// Frame counts a data frame.
func (c *Collector) Frame(_ any, f wsroute.FrameInfo) {
	switch {
	case !f.Outbound:
		c.bytes.WithLabelValues("in").Add(float64(f.Size))
	case f.Err == nil:
		c.sent.WithLabelValues().Inc()
		c.bytes.WithLabelValues("out").Add(float64(f.Size))
		c.queueDepth.Observe(float64(f.Queued))
	case errors.Is(f.Err, wsroute.ErrLimitExceeded):
		c.drops.Inc()
	}
}

// Closed counts a connection's end.
func (c *Collector) Closed(_ any, _ string, code int, _ string) {
	c.open.Dec()
	c.closes.WithLabelValues(strconv.Itoa(code)).Inc()
}

// ManagementCall counts a management API call.
func (c *Collector) ManagementCall(_ *http.Request, call *wsroute.ManagementCall) {
	c.mgmt.WithLabelValues(method(call.Method), strconv.Itoa(call.Status)).Inc()
}

// OpenConnections returns the gauge of open connections, to read in tests
// or alerts of your own.
func (c *Collector) OpenConnections() prom.Gauge { return c.open }

// method bounds the method label: a client may send any method.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodDelete:
		return m
	}
	return "OTHER"
}
