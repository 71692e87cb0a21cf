package wsroute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// IntegrationError is a failure of an integration (an HTTP backend, a Lambda
// function) together with the answer API Gateway gives the client for it. A
// [Handler] returns one to fail as API Gateway fails:
//
//   - on $connect the handshake is refused with StatusCode and the JSON body
//     {"message":Message};
//   - on a message route the client gets the frame
//     {"message": Message, "connectionId":"…", "requestId":"…"} and stays
//     connected;
//   - on $disconnect the error is logged.
//
// Any other error a handler returns is answered as an IntegrationError with
// StatusCode 500 and Message "Internal server error".
type IntegrationError struct {
	// StatusCode refuses a $connect handshake: 500, 502 or 504 as API
	// Gateway answers them. A value outside 400–599 counts as 500.
	StatusCode int
	// Message is sent to the client: "Internal server error" or "Endpoint
	// request timed out". It must be printable ASCII without quotes or
	// backslashes; otherwise "Internal server error" is sent.
	Message string
	// Err is the cause, logged and never sent.
	Err error
}

// Messages API Gateway sends when an integration fails.
const (
	msgIntegrationFailed   = "Internal server error"
	msgIntegrationTimedOut = "Endpoint request timed out"
)

// Error returns the status, the message and the cause.
func (e *IntegrationError) Error() string {
	s := fmt.Sprintf("wsroute: integration failed: %d %s", e.StatusCode, e.Message)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *IntegrationError) Unwrap() error { return e.Err }

// integrationFailure returns the status and message that answer a handler's
// error: an [IntegrationError]'s own, else 500 "Internal server error".
func integrationFailure(err error) (int, string) {
	var ie *IntegrationError
	if !errors.As(err, &ie) {
		return http.StatusInternalServerError, msgIntegrationFailed
	}
	status, msg := ie.StatusCode, ie.Message
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	if msg == "" || strings.ContainsFunc(msg, func(r rune) bool { return r < ' ' || r > '~' || r == '"' || r == '\\' }) {
		msg = msgIntegrationFailed
	}
	return status, msg
}

// HTTPIntegrationOptions configures [HTTPIntegration]. Every zero field means
// its default.
type HTTPIntegrationOptions struct {
	// Client sends the requests. Default: a client on
	// http.DefaultTransport that does not follow redirects (API Gateway does
	// not: a 3xx answer is a failure).
	Client *http.Client

	// Timeout bounds one call, from sending the request to reading the whole
	// response. Default 29 s, API Gateway's default and maximum integration
	// timeout for WebSocket APIs; it may be set higher here.
	Timeout time.Duration

	// MaxResponseSize bounds the response body, in bytes. A larger body is a
	// malformed response. Default 6 MiB (6,291,456 bytes), Lambda's limit
	// on the response of a synchronous invocation.
	MaxResponseSize int64

	// Header is added to every request, for a backend that wants its own
	// credentials. Content-Type is always application/json.
	Header http.Header
}

const (
	defaultIntegrationTimeout = 29 * time.Second
	defaultMaxIntegrationBody = 6 << 20
)

var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// HTTPIntegration returns a Handler that serves a route with an HTTP backend,
// as a Lambda function serves it behind API Gateway: it POSTs the event, as
// the Lambda proxy event JSON ([Request]'s encoding), to url, and reads the
// Lambda proxy result JSON ([Response]'s encoding) back. Use it for any
// route: $connect, $disconnect, $default or a custom one. The backend can be
// any web server, or a function in the AWS Lambda Runtime Interface
// Emulator, whose invocation URL
// (http://host:port/2015-03-31/functions/function/invocations) speaks
// exactly this.
//
// This is not API Gateway's HTTP_PROXY integration, which forwards a
// message's raw body: it is a Lambda proxy integration reached over HTTP, so
// that functions written for Lambda run unchanged behind any HTTP server.
//
// # The answer
//
// A 2xx answer whose body is a JSON object is the route's Response, used as a
// Go handler's is: on $connect its statusCode accepts or refuses the
// handshake; on a message route a non-empty body is sent back to the client
// as one frame and statusCode is ignored, as API Gateway ignores it. An empty
// body, or null, is a nil Response: $connect accepts, a message route sends
// nothing.
//
// # Failures
//
// Failures are answered as API Gateway answers a failing Lambda proxy
// integration (an [IntegrationError]):
//
//	backend unreachable (connection refused, DNS, TLS)        500 Internal server error
//	non-2xx status, X-Amz-Function-Error header, Lambda's
//	error object ({"errorMessage","errorType"} without
//	statusCode), body that is not a JSON object or is too
//	large, or a statusCode that is not a number               502 Internal server error
//	no complete answer within Timeout                         504 Endpoint request timed out
//
// On $connect the handshake is refused with that status and the body
// {"message":"…"}; on a message route the client receives the error frame
// with that message and stays connected; on $disconnect the failure is
// logged. When the handler's ctx ends first (the client left during
// $connect, or [Router.Shutdown] gave up) the ctx's error is returned.
//
// It panics when url is not an absolute http or https URL. The Handler is
// safe for concurrent use.
func HTTPIntegration(url string, opts *HTTPIntegrationOptions) Handler {
	probe, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil || (probe.URL.Scheme != "http" && probe.URL.Scheme != "https") || probe.URL.Host == "" {
		panic(fmt.Sprintf("wsroute: HTTPIntegration: %q is not an absolute http or https URL", url))
	}
	h := &httpIntegration{url: url}
	if opts != nil {
		h.opts = *opts
		h.opts.Header = opts.Header.Clone()
	}
	if h.opts.Client == nil {
		h.opts.Client = noRedirects
	}
	if h.opts.Timeout <= 0 {
		h.opts.Timeout = defaultIntegrationTimeout
	}
	if h.opts.MaxResponseSize <= 0 {
		h.opts.MaxResponseSize = defaultMaxIntegrationBody
	}
	return h
}

type httpIntegration struct {
	url  string
	opts HTTPIntegrationOptions
}

func (h *httpIntegration) ServeEvent(ctx context.Context, req *Request) (*Response, error) {
	event, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("wsroute: HTTPIntegration: encoding the event: %w", err)
	}
	tctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(tctx, http.MethodPost, h.url, bytes.NewReader(event))
	if err != nil {
		return nil, err
	}
	for k, vs := range h.opts.Header {
		hreq.Header[k] = vs
	}
	hreq.Header.Set("Content-Type", "application/json")

	// failed classifies an error of the exchange: the caller's ctx, our
	// timeout, or the backend's fault (with the status it earns).
	failed := func(status int, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if tctx.Err() != nil {
			return &IntegrationError{StatusCode: http.StatusGatewayTimeout, Message: msgIntegrationTimedOut,
				Err: fmt.Errorf("no answer from %s within %v", h.url, h.opts.Timeout)}
		}
		return &IntegrationError{StatusCode: status, Message: msgIntegrationFailed, Err: err}
	}

	resp, err := h.opts.Client.Do(hreq)
	if err != nil {
		return nil, failed(http.StatusInternalServerError, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, h.opts.MaxResponseSize+1))
	if err != nil {
		return nil, failed(http.StatusBadGateway, fmt.Errorf("reading the answer of %s: %w", h.url, err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, failed(http.StatusBadGateway, fmt.Errorf("%s answered %s", h.url, resp.Status))
	}
	if fe := resp.Header.Get("X-Amz-Function-Error"); fe != "" {
		return nil, failed(http.StatusBadGateway, fmt.Errorf("%s reported a function error (%s): %.512s", h.url, fe, body))
	}
	if int64(len(body)) > h.opts.MaxResponseSize {
		return nil, failed(http.StatusBadGateway, fmt.Errorf("%s answered more than %d bytes", h.url, h.opts.MaxResponseSize))
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || string(body) == "null" {
		return nil, nil
	}
	var out Response
	if body[0] != '{' {
		return nil, failed(http.StatusBadGateway, fmt.Errorf("%s answered something other than a JSON object", h.url))
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, failed(http.StatusBadGateway, fmt.Errorf("%s answered a malformed Lambda proxy result: %w", h.url, err))
	}
	if out.StatusCode == 0 && isFunctionError(body) {
		return nil, failed(http.StatusBadGateway, fmt.Errorf("%s answered a function error: %.512s", h.url, body))
	}
	return &out, nil
}

// isFunctionError reports whether a result is the error object Lambda
// returns for a function that failed ({"errorMessage":…,"errorType":…}),
// relayed without its X-Amz-Function-Error header.
func isFunctionError(body []byte) bool {
	var e struct {
		StatusCode   *json.RawMessage `json:"statusCode"`
		ErrorMessage *json.RawMessage `json:"errorMessage"`
		ErrorType    *json.RawMessage `json:"errorType"`
	}
	return json.Unmarshal(body, &e) == nil && e.StatusCode == nil && e.ErrorMessage != nil && e.ErrorType != nil
}
