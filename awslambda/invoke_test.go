package awslambda_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/wsroute/wsroute"
	"github.com/wsroute/wsroute/awslambda"
	"github.com/wsroute/wsroute/wsroutetest"
)

// invokeServer serves the Lambda Invoke API over real HTTP with handle.
func invokeServer(t *testing.T, handle http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(handle)
	t.Cleanup(srv.Close)
	return srv
}

// throttled answers as Lambda does when a function's concurrency is used up.
func throttled(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", "TooManyRequestsException")
	w.WriteHeader(http.StatusTooManyRequests)
	io.WriteString(w, `{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}`)
}

// TestInvokeFailureMapping sends each failure through a real router and a
// real socket: $connect is refused with API Gateway's status, a message route
// gets the Internal server error frame and stays connected, and $disconnect's
// failure is logged.
func TestInvokeFailureMapping(t *testing.T) {
	ctx := context.Background()
	var stop chan struct{} // closed when the running subtest ends
	cases := []struct {
		name    string
		handle  http.HandlerFunc
		status  int
		message string // of the refusal and the error frame
		wantErr func(t *testing.T, err error)
	}{
		{
			name:   "throttled (429 TooManyRequestsException) is 500",
			handle: throttled,
			status: http.StatusInternalServerError,
			wantErr: func(t *testing.T, err error) {
				var tm *types.TooManyRequestsException
				assert.ErrorAs(t, err, &tm)
			},
		},
		{
			name: "function error (X-Amz-Function-Error) is 502",
			handle: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("X-Amz-Function-Error", "Unhandled")
				io.WriteString(w, `{"errorType":"Error","errorMessage":"boom"}`)
			},
			status: http.StatusBadGateway,
			wantErr: func(t *testing.T, err error) {
				var fe *awslambda.FunctionError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, awslambda.FunctionError{Kind: "Unhandled", ErrorType: "Error", ErrorMessage: "boom"}, *fe)
			},
		},
		{
			name: "a result that is not a proxy result is 502",
			handle: func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, `"hello"`)
			},
			status: http.StatusBadGateway,
			wantErr: func(t *testing.T, err error) {
				assert.ErrorIs(t, err, awslambda.ErrInvalidResult)
			},
		},
		{
			name: "a statusCode that is not a number is 502",
			handle: func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, `{"statusCode":"200"}`)
			},
			status: http.StatusBadGateway,
			wantErr: func(t *testing.T, err error) {
				assert.ErrorIs(t, err, awslambda.ErrInvalidResult)
			},
		},
		{
			name: "unknown function (404 ResourceNotFoundException) is 500",
			handle: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"Type":"User","Message":"Function not found"}`)
			},
			status: http.StatusInternalServerError,
			wantErr: func(t *testing.T, err error) {
				var nf *types.ResourceNotFoundException
				assert.ErrorAs(t, err, &nf)
			},
		},
		{
			name: "integration timeout is 504",
			handle: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-stop:
				}
			},
			status:  http.StatusGatewayTimeout,
			message: "Endpoint request timed out",
			wantErr: func(t *testing.T, err error) {
				assert.ErrorIs(t, err, awslambda.ErrIntegrationTimeout)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := invokeServer(t, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				assert.Equal(t, "/2015-03-31/functions/my-function/invocations", r.URL.Path)
				tc.handle(w, r)
			})
			stop = make(chan struct{})
			t.Cleanup(func() { close(stop) })
			if tc.message == "" {
				tc.message = "Internal server error"
			}
			timeout := 20 * time.Second // never reached, however loaded the machine
			if tc.status == http.StatusGatewayTimeout {
				timeout = 300 * time.Millisecond
			}
			inv := awslambda.New(lambdaClient(t, srv.URL), &awslambda.Options{Timeout: timeout})
			h := inv.Handler("my-function")

			// Directly: the error says what failed.
			_, err := h.ServeEvent(ctx, wsroutetest.NewEvents().Message(`{}`))
			var ie *wsroute.IntegrationError
			require.ErrorAs(t, err, &ie)
			assert.Equal(t, tc.status, ie.StatusCode)
			assert.Equal(t, tc.message, ie.Message)
			assert.Contains(t, err.Error(), "invoking my-function")
			tc.wantErr(t, err)
			assert.Equal(t, int32(1), calls.Load(), "API Gateway never retries an invocation")

			// Through a router.
			var routerLogs syncBuffer
			r := wsroutetest.NewRouter(t, &wsroute.Options{Logger: slog.New(slog.NewTextHandler(&routerLogs, nil))})
			var acceptAll atomic.Bool
			r.HandleFunc(wsroute.RouteConnect, func(ctx context.Context, req *wsroute.Request) (*wsroute.Response, error) {
				if acceptAll.Load() {
					return nil, nil
				}
				return h.ServeEvent(ctx, req)
			})
			r.Handle(wsroute.RouteDefault, h)
			r.Handle(wsroute.RouteDisconnect, h)
			ws := wsroutetest.NewServer(t, r, nil)

			resp := wsroutetest.DialRefused(t, ws.URL, nil)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			body, _ := io.ReadAll(resp.Body)
			assert.JSONEq(t, `{"message":"`+tc.message+`"}`, string(body))
			assert.Contains(t, routerLogs.String(), "routeKey=$connect")

			// Let $connect through, to see the other routes fail.
			acceptAll.Store(true)
			c := wsroutetest.Dial(t, ws.URL, nil)
			for range 2 { // and still connected after the first
				c.SendText(ctx, `{"action":"x"}`)
				f, ok := wsroutetest.ParseErrorFrame(c.Next(ctx).Data)
				require.True(t, ok)
				assert.Equal(t, tc.message, f.Message)
			}
			c.Close(1000, "")
			require.Eventually(t, func() bool {
				return strings.Contains(routerLogs.String(), "routeKey=$disconnect")
			}, 10*time.Second, 10*time.Millisecond, "the $disconnect failure is logged")
		})
	}
}

func TestInvokeUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now

	h := awslambda.New(lambdaClient(t, "http://"+addr), nil).Handler("f")
	_, err = h.ServeEvent(context.Background(), wsroutetest.NewEvents().Message(`{}`))
	var ie *wsroute.IntegrationError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, http.StatusInternalServerError, ie.StatusCode)
}

// TestInvokeResult: the payload is the event's JSON, and the result is the
// route's response.
func TestInvokeResult(t *testing.T) {
	ev := wsroutetest.NewEvents().Message(`{"action":"hi"}`)
	want, err := jsonOf(ev)
	require.NoError(t, err)
	results := map[string]*wsroute.Response{
		`{"statusCode":200,"body":"hello","headers":{"a":"b"},"isBase64Encoded":false}`: {StatusCode: 200, Body: "hello", Headers: map[string]string{"a": "b"}},
		`null`:                         nil,
		``:                             nil,
		`{"body":"x","unknown":[1,2]}`: {Body: "x"},
		` {"statusCode":401} `:         {StatusCode: 401},
	}
	for result, wantResp := range results {
		srv := invokeServer(t, func(w http.ResponseWriter, r *http.Request) {
			got, _ := io.ReadAll(r.Body)
			assert.JSONEq(t, string(want), string(got))
			assert.Equal(t, "RequestResponse", r.Header.Get("X-Amz-Invocation-Type"))
			assert.Equal(t, "live", r.URL.Query().Get("Qualifier"))
			io.WriteString(w, result)
		})
		h := awslambda.New(lambdaClient(t, srv.URL), &awslambda.Options{Qualifier: "live"}).Handler("f")
		resp, err := h.ServeEvent(context.Background(), ev)
		require.NoError(t, err, result)
		assert.Equal(t, wantResp, resp, result)
	}
}

// TestMaxConcurrency: events beyond the limit wait for a slot, shared by
// every handler of the same function, and give up with their context.
func TestMaxConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	srv := invokeServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		inFlight.Add(-1)
		io.WriteString(w, `{"statusCode":200,"body":"ok"}`)
	})
	inv := awslambda.New(lambdaClient(t, srv.URL), &awslambda.Options{MaxConcurrency: 2})
	a, b, other := inv.Handler("f"), inv.Handler("f"), inv.Handler("g")
	ev := wsroutetest.NewEvents().Message(`{}`)

	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		h := a
		if i%2 == 1 {
			h = b
		}
		wg.Go(func() {
			resp, err := h.ServeEvent(context.Background(), ev)
			if err == nil && resp.Body != "ok" {
				err = errors.New("wrong body " + resp.Body)
			}
			errs <- err
		})
	}
	require.Eventually(t, func() bool { return inFlight.Load() == 2 }, 10*time.Second, 5*time.Millisecond)

	// f is full: an event whose context ends while it waits fails with it.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := a.ServeEvent(ctx, ev)
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	var ie *wsroute.IntegrationError
	assert.False(t, errors.As(err, &ie), "the caller's context, not an integration failure")

	// Another function has slots of its own.
	otherDone := make(chan error, 1)
	go func() { _, err := other.ServeEvent(context.Background(), ev); otherDone <- err }()
	require.Eventually(t, func() bool { return inFlight.Load() == 3 }, 10*time.Second, 5*time.Millisecond)

	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.NoError(t, <-otherDone)
	assert.Equal(t, int32(3), peak.Load(), "2 for f, 1 for g")
}

func jsonOf(v any) ([]byte, error) {
	var b bytes.Buffer
	err := jsonEncoder(&b).Encode(v)
	return bytes.TrimSpace(b.Bytes()), err
}
