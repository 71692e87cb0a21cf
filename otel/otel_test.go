package otel_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/internal/leakcheck"
	wsotel "github.com/wsroute/wsroute/otel"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const timeout = 10 * time.Second

const (
	clientTrace   = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpan    = "00f067aa0ba902b7"
	operatorTrace = "0af7651916cd43dd8448eb211c80319c"
	operatorSpan  = "b7ad6b7169203331"
)

// handlerSpans records the span context each handler ran with, by route.
type handlerSpans struct {
	mu sync.Mutex
	m  map[string]trace.SpanContext
}

func (h *handlerSpans) record(ctx context.Context, route string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.m[route] = trace.SpanContextFromContext(ctx)
}

func (h *handlerSpans) get(route string) trace.SpanContext {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[route]
}

type harness struct {
	exp    *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	r      *wsroute.Router
	srv    *httptest.Server
	mgmt   *httptest.Server
	seen   *handlerSpans
}

func newHarness(t *testing.T, linkOnly bool) *harness {
	h := &harness{exp: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader(),
		seen: &handlerSpans{m: map[string]trace.SpanContext{}}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(h.exp))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	obs, err := wsotel.New(&wsotel.Options{TracerProvider: tp, MeterProvider: mp, API: "chat", Stage: "prod", LinkOnly: linkOnly})
	require.NoError(t, err)
	h.r, err = wsroute.New(&wsroute.Options{APIID: "chat", Stage: "prod", Observer: obs})
	require.NoError(t, err)
	for _, route := range []string{wsroute.RouteConnect, "echo", wsroute.RouteDisconnect} {
		h.r.HandleFunc(route, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
			h.seen.record(ctx, route)
			if route == "echo" {
				return &wsroute.Response{Body: req.RequestContext.ConnectionID}, nil
			}
			return nil, nil
		})
	}
	h.r.HandleFunc("fail", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return nil, errors.New("backend down")
	})
	h.srv = httptest.NewServer(h.r)
	h.mgmt = httptest.NewServer(wsroute.NewManagementHandler(h.r.Connections(),
		&wsroute.ManagementOptions{InsecureSkipAuthentication: true, Observer: obs}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_ = h.r.Shutdown(ctx)
		h.srv.Close()
		h.mgmt.Close()
		_ = tp.Shutdown(ctx)
		_ = mp.Shutdown(ctx)
	})
	return h
}

// script connects with a traceparent, sends echo, fail and an unrouted
// message, posts to the connection through the management API with another
// traceparent, and closes.
func (h *harness) script(t *testing.T) string {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.srv.URL, "http"), &websocket.DialOptions{
		HTTPHeader: http.Header{"Traceparent": {"00-" + clientTrace + "-" + clientSpan + "-01"}}})
	require.NoError(t, err)
	defer c.CloseNow()
	exchange := func(msg string) string {
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(msg)))
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		return string(b)
	}
	id := exchange(`{"action":"echo"}`)
	require.Contains(t, exchange(`{"action":"fail"}`), "Internal server error")
	require.Contains(t, exchange(`{"action":"nowhere"}`), "Forbidden")

	req, err := http.NewRequest(http.MethodPost, h.mgmt.URL+"/prod/@connections/"+id, strings.NewReader("hi"))
	require.NoError(t, err)
	req.Header.Set("Traceparent", "00-"+operatorTrace+"-"+operatorSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, b, err := c.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, "hi", string(b))
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))

	deadline := time.Now().Add(timeout)
	for h.span(t, "wsroute $disconnect", false) == nil {
		require.True(t, time.Now().Before(deadline), "no $disconnect span")
		time.Sleep(10 * time.Millisecond)
	}
	return id
}

func (h *harness) span(t *testing.T, name string, must bool) *tracetest.SpanStub {
	var found *tracetest.SpanStub
	for _, s := range h.exp.GetSpans() {
		if s.Name == name {
			require.Nil(t, found, "two spans named %s", name)
			found = &s
		}
	}
	if must {
		require.NotNil(t, found, "no span named %s", name)
	}
	return found
}

func attr(s *tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func TestSpansCarryTheConnectTraceContext(t *testing.T) {
	h := newHarness(t, false)
	id := h.script(t)

	connect := h.span(t, "wsroute $connect", true)
	require.Equal(t, clientTrace, connect.SpanContext.TraceID().String())
	require.Equal(t, clientSpan, connect.Parent.SpanID().String(), "child of the upgrade request's traceparent")
	require.True(t, connect.Parent.IsRemote())
	require.Equal(t, id, attr(connect, "wsroute.connection_id").AsString())
	require.EqualValues(t, 200, attr(connect, "wsroute.status").AsInt64())
	require.Equal(t, trace.SpanKindServer, connect.SpanKind)
	require.Equal(t, connect.SpanContext.SpanID(), h.seen.get(wsroute.RouteConnect).SpanID(), "$connect runs in the span")

	for _, tc := range []struct {
		name, route string
		status      int64
		failed      bool
	}{
		{"wsroute echo", "echo", 200, false},
		{"wsroute fail", "fail", 500, true},
		{"wsroute $default", "$default", 403, false},
		{"wsroute $disconnect", "$disconnect", 200, false},
	} {
		t.Run(tc.route, func(t *testing.T) {
			s := h.span(t, tc.name, true)
			require.Equal(t, clientTrace, s.SpanContext.TraceID().String())
			require.Equal(t, connect.SpanContext.SpanID(), s.Parent.SpanID(), "child of the $connect span")
			require.Equal(t, tc.route, attr(s, "wsroute.route_key").AsString())
			require.Equal(t, id, attr(s, "wsroute.connection_id").AsString())
			require.NotEmpty(t, attr(s, "wsroute.request_id").AsString())
			require.Equal(t, tc.status, attr(s, "wsroute.status").AsInt64())
			if tc.failed {
				require.Equal(t, "Error", s.Status.Code.String())
			}
			if tc.route == "echo" || tc.route == "$disconnect" {
				require.Equal(t, s.SpanContext.SpanID(), h.seen.get(tc.route).SpanID(), "the handler runs in the span")
			}
		})
	}

	m := h.span(t, "wsroute @connections POST", true)
	require.Equal(t, operatorTrace, m.SpanContext.TraceID().String())
	require.Equal(t, operatorSpan, m.Parent.SpanID().String(), "child of the management request's traceparent")
	require.Len(t, m.Links, 1)
	require.Equal(t, connect.SpanContext.SpanID(), m.Links[0].SpanContext.SpanID(), "linked to the connection's $connect span")
	require.EqualValues(t, 200, attr(m, "http.response.status_code").AsInt64())
	require.Equal(t, id, attr(m, "wsroute.connection_id").AsString())
}

func TestLinkOnlyStartsATracePerEvent(t *testing.T) {
	h := newHarness(t, true)
	h.script(t)
	connect := h.span(t, "wsroute $connect", true)
	s := h.span(t, "wsroute echo", true)
	require.NotEqual(t, connect.SpanContext.TraceID(), s.SpanContext.TraceID())
	require.False(t, s.Parent.IsValid())
	require.Len(t, s.Links, 1)
	require.Equal(t, connect.SpanContext, s.Links[0].SpanContext)
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, false)
	h.script(t)
	var rm metricdata.ResourceMetrics
	require.NoError(t, h.reader.Collect(context.Background(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			key := func(set attribute.Set) string {
				var parts []string
				for _, kv := range set.ToSlice() {
					switch kv.Key {
					case "api":
						require.Equal(t, "chat", kv.Value.AsString())
					case "stage":
						require.Equal(t, "prod", kv.Value.AsString())
					default:
						parts = append(parts, string(kv.Key)+"="+kv.Value.String())
					}
				}
				return m.Name + "{" + strings.Join(parts, ",") + "}"
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					got[key(p.Attributes)] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					got[key(p.Attributes)+"_count"] = int64(p.Count)
				}
			}
		}
	}
	for k, v := range map[string]int64{
		"wsroute.connect.requests{status=200}":                 1,
		"wsroute.connections.open{}":                           0,
		"wsroute.messages.received{route=echo}":                1,
		"wsroute.messages.received{route=fail}":                1,
		"wsroute.messages.received{route=$default}":            1,
		"wsroute.messages.sent{}":                              4,
		"wsroute.client_errors{route=$default}":                1,
		"wsroute.integration_errors{route=fail}":               1,
		"wsroute.integration.latency{route=echo}_count":        1,
		"wsroute.integration.latency{route=$connect}_count":    1,
		"wsroute.integration.latency{route=$disconnect}_count": 1,
		"wsroute.closes{code=1000}":                            1,
		"wsroute.management.calls{method=POST,status=200}":     1,
		"wsroute.message.bytes{direction=in}":                  int64(len(`{"action":"echo"}{"action":"fail"}{"action":"nowhere"}`)),
	} {
		require.Equal(t, v, got[k], "%s in %v", k, got)
	}
}
