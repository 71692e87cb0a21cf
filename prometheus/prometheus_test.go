package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/internal/leakcheck"
	wsprom "github.com/wsroute/wsroute/prometheus"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

const timeout = 10 * time.Second

// scrape reads /metrics over HTTP and returns each sample as
// "name{label=value,...}" → value, labels sorted, api and stage left out.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "api":
					require.Equal(t, "chat", l.GetValue())
				case "stage":
					require.Equal(t, "prod", l.GetValue())
				default:
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
			}
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[strings.Replace(key, "{", "_count{", 1)] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestMetricsThroughSockets(t *testing.T) {
	metrics := wsprom.New(&wsprom.Options{API: "chat", Stage: "prod"})
	reg := prom.NewRegistry()
	reg.MustRegister(metrics)
	r, err := wsroute.New(&wsroute.Options{APIID: "chat", Stage: "prod", Observer: metrics, SendQueueSize: 4,
		Authorizer: func(_ context.Context, req *wsroute.Request) (*wsroute.AuthorizerResult, error) {
			if req.QueryStringParameters["token"] == "" {
				return nil, wsroute.ErrUnauthorized
			}
			return &wsroute.AuthorizerResult{PrincipalID: "p"}, nil
		}})
	require.NoError(t, err)
	r.HandleFunc(wsroute.RouteConnect, func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		if req.QueryStringParameters["deny"] != "" {
			return &wsroute.Response{StatusCode: http.StatusForbidden}, nil
		}
		return nil, nil
	})
	r.HandleFunc("echo", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: req.Body}, nil
	})
	r.HandleFunc("id", func(_ context.Context, req *wsroute.Request) (*wsroute.Response, error) {
		return &wsroute.Response{Body: req.RequestContext.ConnectionID}, nil
	})
	r.HandleFunc("fail", func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return nil, errors.New("backend down")
	})
	r.HandleFunc("boom", func(context.Context, *wsroute.Request) (*wsroute.Response, error) { panic("boom") })
	r.HandleFunc(wsroute.RouteDisconnect, func(context.Context, *wsroute.Request) (*wsroute.Response, error) {
		return nil, nil
	})
	srv := httptest.NewServer(r)
	mgmt := httptest.NewServer(wsroute.NewManagementHandler(r.Connections(),
		&wsroute.ManagementOptions{InsecureSkipAuthentication: true, Observer: metrics}))
	scrapeSrv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		require.NoError(t, r.Shutdown(ctx))
		srv.Close()
		mgmt.Close()
		scrapeSrv.Close()
	}()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	// Refused by the authorizer, then by $connect.
	for _, q := range []string{"", "?token=t&deny=1"} {
		_, resp, err := websocket.Dial(ctx, wsURL+q, nil)
		require.Error(t, err)
		require.NotNil(t, resp)
	}
	c1, _, err := websocket.Dial(ctx, wsURL+"?token=t", nil)
	require.NoError(t, err)
	defer c1.CloseNow()
	c2, _, err := websocket.Dial(ctx, wsURL+"?token=t", nil)
	require.NoError(t, err)
	defer c2.CloseNow()
	require.Equal(t, 2.0, scrape(t, scrapeSrv.URL)["wsroute_open_connections{}"])

	bytesIn := 0
	exchange := func(c *websocket.Conn, msg string) string {
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(msg)))
		bytesIn += len(msg)
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		return string(b)
	}
	exchange(c1, `{"action":"echo","n":1}`)
	exchange(c1, `{"action":"echo","n":22}`)
	require.Contains(t, exchange(c1, `{"action":"fail"}`), "Internal server error")
	require.Contains(t, exchange(c1, `{"action":"boom"}`), "Internal server error")
	require.Contains(t, exchange(c1, `{"action":"nowhere"}`), "Forbidden")
	id1 := exchange(c1, `{"action":"id"}`)
	id2 := exchange(c2, `{"action":"id"}`)

	// The management API: a post, a GET of an unknown ID, a DELETE.
	call := func(method, id string, status int) {
		req, err := http.NewRequest(method, mgmt.URL+"/prod/@connections/"+id, strings.NewReader("hello"))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, status, resp.StatusCode)
	}
	call(http.MethodPost, id1, http.StatusOK)
	_, b, err := c1.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, "hello", string(b))
	call(http.MethodGet, "AAAAAAAAAAAAAAA=", http.StatusGone)
	call(http.MethodDelete, id1, http.StatusNoContent)
	_, _, err = c1.Read(ctx)
	require.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err))

	// c2 reads nothing: posts fill its socket, then its queue of 4.
	posted, dropped := 0, 0
	data := make([]byte, 64<<10)
	for i := 0; i < 2000 && dropped < 3; i++ {
		err := r.Connections().PostToConnection(ctx, id2, data)
		switch {
		case err == nil:
			posted++
		case errors.Is(err, wsroute.ErrLimitExceeded):
			dropped++
		default:
			t.Fatal(err)
		}
	}
	require.Equal(t, 3, dropped, "the queue never filled")
	c2.CloseNow()

	want := map[string]float64{
		"wsroute_connect_requests_total{status=401}":                   1,
		"wsroute_connect_requests_total{status=403}":                   1,
		"wsroute_connect_requests_total{status=200}":                   2,
		"wsroute_open_connections{}":                                   0,
		"wsroute_messages_received_total{route=echo}":                  2,
		"wsroute_messages_received_total{route=fail}":                  1,
		"wsroute_messages_received_total{route=boom}":                  1,
		"wsroute_messages_received_total{route=id}":                    2,
		"wsroute_messages_received_total{route=$default}":              1,
		"wsroute_client_errors_total{route=$connect}":                  1,
		"wsroute_client_errors_total{route=$default}":                  1,
		"wsroute_integration_errors_total{route=$connect}":             1,
		"wsroute_integration_errors_total{route=fail}":                 1,
		"wsroute_execution_errors_total{route=boom}":                   1,
		"wsroute_integration_latency_seconds_count{route=$connect}":    3,
		"wsroute_integration_latency_seconds_count{route=echo}":        2,
		"wsroute_integration_latency_seconds_count{route=fail}":        1,
		"wsroute_integration_latency_seconds_count{route=boom}":        1,
		"wsroute_integration_latency_seconds_count{route=id}":          2,
		"wsroute_integration_latency_seconds_count{route=$disconnect}": 2,
		"wsroute_messages_sent_total{}":                                float64(7 + 1 + posted),
		"wsroute_send_queue_depth_count{}":                             float64(7 + 1 + posted),
		"wsroute_send_queue_drops_total{}":                             3,
		"wsroute_message_bytes_total{direction=in}":                    float64(bytesIn),
		"wsroute_closes_total{code=1000}":                              1,
		"wsroute_closes_total{code=1006}":                              1,
		"wsroute_management_calls_total{method=POST,status=200}":       1,
		"wsroute_management_calls_total{method=GET,status=410}":        1,
		"wsroute_management_calls_total{method=DELETE,status=204}":     1,
	}
	// A scrape reads the metrics one after the other while the last
	// connection may still be ending, so it can see its $disconnect and not
	// yet its close, or the reverse: scrape until every figure is in.
	var got map[string]float64
	deadline := time.Now().Add(timeout)
	for {
		got = scrape(t, scrapeSrv.URL)
		settled := true
		for k, v := range want {
			settled = settled && got[k] == v
		}
		if settled || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for k, v := range want {
		require.Equal(t, v, got[k], "%s\n%s", k, dump(got))
	}
	for k, v := range got {
		if strings.HasSuffix(strings.SplitN(k, "{", 2)[0], "_total") || strings.Contains(k, "_count{") {
			if _, ok := want[k]; !ok && k != "wsroute_message_bytes_total{direction=out}" {
				t.Errorf("unexpected sample %s = %v", k, v)
			}
		}
	}
	require.Greater(t, got["wsroute_message_bytes_total{direction=out}"], float64(posted*len(data)))
}

func dump(m map[string]float64) string {
	var b strings.Builder
	for k, v := range m {
		fmt.Fprintf(&b, "%s %v\n", k, v)
	}
	return b.String()
}
