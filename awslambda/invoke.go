package awslambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/wsroute/wsroute"
)

// InvokeAPI is the part of the Lambda client an [Invoker] uses.
// *lambda.Client implements it.
type InvokeAPI interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

var _ InvokeAPI = (*lambda.Client)(nil)

// Options configures an [Invoker]. A nil *Options, and every zero field,
// means the documented default.
type Options struct {
	// Timeout is the integration timeout: how long one event may take,
	// waiting for a free slot (MaxConcurrency) included. Default 29 s, API
	// Gateway's. When it passes, $connect is refused with 504 and a message
	// route gets the error frame "Endpoint request timed out". Against the
	// Runtime Interface Emulator keep the function's own timeout
	// (AWS_LAMBDA_FUNCTION_TIMEOUT) below it: the emulator dies when a caller
	// gives up on an invocation.
	Timeout time.Duration

	// MaxConcurrency bounds the invocations of one function that run at
	// once, counted across every handler of the Invoker for the same
	// function name (as given: a name and an ARN of the same function count
	// apart). An event beyond it waits for a slot within its context and the
	// Timeout, rather than fail. Default 0: no bound. Set it to 1 against
	// the Runtime Interface Emulator, which has one execution environment
	// and fails a second concurrent invocation; on AWS, a function's
	// reserved concurrency plays this part.
	MaxConcurrency int

	// Qualifier, when set, invokes this version or alias of every function.
	Qualifier string
}

const defaultTimeout = 29 * time.Second

// Invoker serves routes with AWS Lambda functions through the Lambda Invoke
// API: each event is the function's payload, as API Gateway's Lambda proxy
// integration sends it, and the function's result is the route's response.
// It is safe for concurrent use.
//
// Failures are answered as API Gateway answers them: the handler returns a
// [*wsroute.IntegrationError] whose cause is the Lambda client's error, a
// [*FunctionError], [ErrInvalidResult] or [ErrIntegrationTimeout], so that
// on $connect the handshake is refused with API Gateway's status, on a
// message route the client gets the error frame and stays connected, and on
// $disconnect the router logs it:
//
//   - 500 "Internal server error": the Lambda API refused the invocation
//     (throttling with 429 TooManyRequestsException, an unknown function,
//     bad credentials, an unreachable endpoint);
//   - 502 "Internal server error": the function failed (X-Amz-Function-Error,
//     its own timeout) or returned something that is not a Lambda proxy
//     result;
//   - 504 "Endpoint request timed out": the integration timeout passed.
type Invoker struct {
	client InvokeAPI
	opts   Options

	mu     sync.Mutex
	limits map[string]chan struct{} // function name → slots, when MaxConcurrency > 0
}

// New returns an Invoker that calls functions with client. Configure the
// client as usual (credentials, region, BaseEndpoint for an emulator): the
// Invoker adds nothing but a single attempt per event, since API Gateway
// never retries an invocation.
func New(client InvokeAPI, opts *Options) *Invoker {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	return &Invoker{client: client, opts: o, limits: make(map[string]chan struct{})}
}

// NewFromConfig returns an Invoker with a Lambda client made from cfg, as
// lambda.NewFromConfig makes it; optFns adjust the client's options (for
// example its BaseEndpoint).
func NewFromConfig(cfg aws.Config, opts *Options, optFns ...func(*lambda.Options)) *Invoker {
	return New(lambda.NewFromConfig(cfg, optFns...), opts)
}

// Handler returns a handler that invokes function, given by name, by
// partial or by full ARN.
func (inv *Invoker) Handler(function string) wsroute.Handler {
	var slots chan struct{}
	if inv.opts.MaxConcurrency > 0 {
		inv.mu.Lock()
		slots = inv.limits[function]
		if slots == nil {
			slots = make(chan struct{}, inv.opts.MaxConcurrency)
			inv.limits[function] = slots
		}
		inv.mu.Unlock()
	}
	return &invokeHandler{inv: inv, function: function, slots: slots}
}

type invokeHandler struct {
	inv      *Invoker
	function string
	slots    chan struct{} // nil: no bound
}

// Causes that the [wsroute.IntegrationError] of a failed invocation wraps.
var (
	// ErrInvalidResult: the function's result is not a Lambda proxy result
	// (a JSON object with a numeric statusCode, or null).
	ErrInvalidResult = errors.New("awslambda: the function's result is not a Lambda proxy result")
	// ErrIntegrationTimeout: the integration timeout passed.
	ErrIntegrationTimeout = errors.New("awslambda: integration timed out")
)

// FunctionError is a function's own failure, as the Invoke API reports it
// with X-Amz-Function-Error.
type FunctionError struct {
	// Kind is the X-Amz-Function-Error value: "Unhandled" or "Handled".
	Kind string
	// ErrorType and ErrorMessage come from the error the function returned,
	// when its payload has them (errorType, errorMessage).
	ErrorType    string
	ErrorMessage string
}

// Error describes the failure, with the function's errorType and
// errorMessage when it reported them.
func (e *FunctionError) Error() string {
	if e.ErrorType == "" && e.ErrorMessage == "" {
		return "function error: " + e.Kind
	}
	return fmt.Sprintf("function error (%s): %s: %s", e.Kind, e.ErrorType, e.ErrorMessage)
}

// ServeEvent invokes the function with req as its payload.
func (h *invokeHandler) ServeEvent(parent context.Context, req *wsroute.Request) (*wsroute.Response, error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("awslambda: encoding the event: %w", err)
	}
	ctx, cancel := context.WithTimeoutCause(parent, h.inv.opts.Timeout, ErrIntegrationTimeout)
	defer cancel()
	fail := func(status int, err error) (*wsroute.Response, error) {
		if parent.Err() != nil {
			return nil, fmt.Errorf("awslambda: invoking %s: %w", h.function, context.Cause(parent))
		}
		msg := "Internal server error"
		if context.Cause(ctx) == ErrIntegrationTimeout {
			status, msg, err = http.StatusGatewayTimeout, "Endpoint request timed out", ErrIntegrationTimeout
		}
		return nil, &wsroute.IntegrationError{StatusCode: status, Message: msg,
			Err: fmt.Errorf("awslambda: invoking %s: %w", h.function, err)}
	}

	if h.slots != nil {
		select {
		case h.slots <- struct{}{}:
			defer func() { <-h.slots }()
		case <-ctx.Done():
			return fail(http.StatusInternalServerError, context.Cause(ctx))
		}
	}

	in := &lambda.InvokeInput{
		FunctionName:   aws.String(h.function),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        payload,
	}
	if h.inv.opts.Qualifier != "" {
		in.Qualifier = aws.String(h.inv.opts.Qualifier)
	}
	out, err := h.inv.client.Invoke(ctx, in, func(o *lambda.Options) { o.Retryer = aws.NopRetryer{} })
	if err != nil {
		return fail(http.StatusInternalServerError, err)
	}
	if fe := functionError(out); fe != nil {
		return fail(http.StatusBadGateway, fe)
	}
	resp, err := parseResult(out.Payload)
	if err != nil {
		return fail(http.StatusBadGateway, err)
	}
	return resp, nil
}

// functionError returns the function's error, or nil when it succeeded. The
// Invoke API reports one with X-Amz-Function-Error. The Runtime Interface
// Emulator does not set that header: there, a result that has errorMessage
// or errorType and no statusCode (what every Lambda runtime reports for a
// failed handler) is taken as an unhandled function error.
func functionError(out *lambda.InvokeOutput) *FunctionError {
	if out.FunctionError == nil && !bytes.Contains(out.Payload, []byte(`"error`)) {
		return nil
	}
	var body struct {
		ErrorType    *string         `json:"errorType"`
		ErrorMessage *string         `json:"errorMessage"`
		StatusCode   json.RawMessage `json:"statusCode"`
	}
	parsed := json.Unmarshal(out.Payload, &body) == nil
	var fe *FunctionError
	switch {
	case out.FunctionError != nil:
		fe = &FunctionError{Kind: *out.FunctionError}
	case parsed && body.StatusCode == nil && (body.ErrorType != nil || body.ErrorMessage != nil):
		fe = &FunctionError{Kind: "Unhandled"}
	default:
		return nil
	}
	if parsed {
		fe.ErrorType, fe.ErrorMessage = deref(body.ErrorType), deref(body.ErrorMessage)
	}
	return fe
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// parseResult decodes a Lambda proxy result. null (a function that returned
// nothing) is a nil Response: $connect accepts, and nothing is sent back.
func parseResult(p []byte) (*wsroute.Response, error) {
	p = bytes.TrimSpace(p)
	if len(p) == 0 || string(p) == "null" {
		return nil, nil
	}
	if p[0] != '{' {
		return nil, fmt.Errorf("%w: %.64q", ErrInvalidResult, p)
	}
	var resp wsroute.Response
	if err := json.Unmarshal(p, &resp); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidResult, err)
	}
	return &resp, nil
}
