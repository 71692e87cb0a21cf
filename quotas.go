package wsroute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Quotas are API Gateway's quotas for WebSocket APIs, enforced as API Gateway
// enforces them, so that a local run fails where production would. Set
// [Options.Quotas] to &Quotas{} for API Gateway's values; a zero field means
// API Gateway's value, documented on each field, from "Quotas for
// configuring and running a WebSocket API in API Gateway"
// (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html).
// Only NewConnectionsPerSecond and Routes are adjustable on AWS; the
// others may be changed here to experiment, not to match a deployment.
type Quotas struct {
	// FrameSize bounds one inbound WebSocket data frame, in bytes. A client
	// that sends a larger frame is closed with 1009 "Message too big" (its
	// $disconnect sees 1009), as one over MessageSize is: the frame is
	// refused as soon as its header arrives, and the router then reads and
	// drops the rest of it, so that a client writing it whole can finish and
	// complete the close handshake. Default 32 KB (32,768 bytes). A larger
	// message must be sent in several frames: browsers send each message as
	// one frame, so to them this is the limit on a message.
	FrameSize int64

	// MessageSize bounds an inbound message, all its frames together, in
	// bytes, and the data of PostToConnection; it replaces
	// [Options.MaxMessageSize] and [Options.MaxPostSize]. Over it the client
	// is closed with 1009, and PostToConnection fails with
	// ErrPayloadTooLarge (413). Default 128 KB (131,072 bytes).
	MessageSize int64

	// NewConnectionsPerSecond is the rate of new connections: a token
	// bucket refilled at this rate that holds as many tokens, taken by every
	// WebSocket upgrade request before anything else runs. A request that
	// finds it empty is refused with 429 {"message":"Too Many Requests"}.
	// Default 500, API Gateway's quota per account and Region (adjustable).
	NewConnectionsPerSecond int

	// AuthorizerResultSize bounds what [Options.Authorizer] returns, measured
	// as the JSON {"principalId":…,"context":{…}}, in bytes. A larger result
	// refuses the handshake with 500 {"message":"Internal server error"}, as
	// an authorizer failure. Default 8 KB (8,192 bytes). A Lambda
	// authorizer's response also holds its policy document, which AWS counts
	// and this does not.
	AuthorizerResultSize int

	// IntegrationTimeout bounds every route's handler. The handler's ctx
	// carries the deadline; a handler that has not returned by then has
	// failed with an [IntegrationError] 504 "Endpoint request timed out"
	// (whatever it returns later is dropped): on $connect the handshake is
	// refused with 504, on a message route the client gets the error frame
	// {"message": "Endpoint request timed out", …}. A Go handler that
	// ignores its ctx still runs to its end; the client waits for it.
	// Default 29 s (API Gateway allows 50 ms to 29 s).
	IntegrationTimeout time.Duration

	// URLLength bounds the URL of an upgrade request, in characters, counted
	// as wss://host/path?query. A longer one is refused with 414
	// {"message":"Request-URI Too Long"}. Default 4,096.
	URLLength int

	// Routes bounds the routes of the router; [Router.Handle] panics on the
	// one over it, as a deployment would fail. Default 300 (adjustable).
	Routes int
}

// API Gateway's values.
const (
	quotaFrameSize      = 32 << 10
	quotaMessageSize    = 128 << 10
	quotaNewConnections = 500
	quotaAuthorizerSize = 8 << 10
	quotaIntegration    = 29 * time.Second
	quotaURLLength      = 4096
	quotaRoutes         = 300
)

func (q Quotas) withDefaults() (Quotas, error) {
	if q.FrameSize < 0 || q.MessageSize < 0 || q.NewConnectionsPerSecond < 0 || q.AuthorizerResultSize < 0 ||
		q.IntegrationTimeout < 0 || q.URLLength < 0 || q.Routes < 0 {
		return q, errors.New("wsroute: negative value in Quotas")
	}
	if q.FrameSize == 0 {
		q.FrameSize = quotaFrameSize
	}
	if q.MessageSize == 0 {
		q.MessageSize = quotaMessageSize
	}
	if q.NewConnectionsPerSecond == 0 {
		q.NewConnectionsPerSecond = quotaNewConnections
	}
	if q.AuthorizerResultSize == 0 {
		q.AuthorizerResultSize = quotaAuthorizerSize
	}
	if q.IntegrationTimeout == 0 {
		q.IntegrationTimeout = quotaIntegration
	}
	if q.URLLength == 0 {
		q.URLLength = quotaURLLength
	}
	if q.Routes == 0 {
		q.Routes = quotaRoutes
	}
	return q, nil
}

// applyQuotas fills in c.Quotas and makes the options it governs agree with
// it. It leaves c alone when c.Quotas is nil.
func (c *Options) applyQuotas() error {
	if c.Quotas == nil {
		return nil
	}
	q, err := c.Quotas.withDefaults()
	if err != nil {
		return err
	}
	c.Quotas = &q
	c.MaxMessageSize = q.MessageSize
	c.MaxPostSize = int(q.MessageSize) // API Gateway's payload quota holds for @connections too
	if auth := c.Authorizer; auth != nil {
		limit := q.AuthorizerResultSize
		c.Authorizer = func(ctx context.Context, req *Request) (*AuthorizerResult, error) {
			res, err := auth(ctx, req)
			if err != nil || res == nil {
				return res, err
			}
			b, err := json.Marshal(struct {
				PrincipalID string         `json:"principalId"`
				Context     map[string]any `json:"context,omitempty"`
			}{res.PrincipalID, res.Context})
			if err != nil {
				return nil, fmt.Errorf("wsroute: authorizer result: %w", err)
			}
			if len(b) > limit {
				return nil, fmt.Errorf("wsroute: authorizer result of %d bytes is over the %d-byte quota", len(b), limit)
			}
			return res, nil
		}
	}
	return nil
}

// quotaGate enforces the quotas a Router checks while serving. A nil
// *quotaGate enforces nothing.
type quotaGate struct {
	q      Quotas
	bucket *tokenBucket
}

func newQuotaGate(q *Quotas) *quotaGate {
	if q == nil {
		return nil
	}
	rate := float64(q.NewConnectionsPerSecond)
	return &quotaGate{q: *q, bucket: newTokenBucket(rate, q.NewConnectionsPerSecond, time.Now)}
}

// admit runs the checks of an upgrade request. It answers a refused request
// itself and reports false. The frame size is enforced by the connection's
// read side (see frameLimit).
func (g *quotaGate) admit(w http.ResponseWriter, req *http.Request) bool {
	if g == nil {
		return true
	}
	if n := len("wss://") + len(req.Host) + len(req.RequestURI); n > g.q.URLLength {
		writeJSONMessage(w, http.StatusRequestURITooLong, "Request-URI Too Long")
		return false
	}
	if !g.bucket.take() {
		writeJSONMessage(w, http.StatusTooManyRequests, "Too Many Requests")
		return false
	}
	return true
}

// frameLimit is the largest inbound data frame that the connection's read
// side (wireConn) lets through; 0 is no limit but the message's.
func (g *quotaGate) frameLimit() int64 {
	if g == nil {
		return 0
	}
	return g.q.FrameSize
}

// route wraps the n-th route's handler with the integration timeout. It
// panics when n is over the Routes quota.
func (g *quotaGate) route(h Handler, n int) Handler {
	if g == nil {
		return h
	}
	if n > g.q.Routes {
		panic(fmt.Sprintf("wsroute: route %d is over the quota of %d routes per API", n, g.q.Routes))
	}
	return &timedHandler{h: h, timeout: g.q.IntegrationTimeout}
}

type timedHandler struct {
	h       Handler
	timeout time.Duration
}

func (t *timedHandler) ServeEvent(ctx context.Context, req *Request) (*Response, error) {
	tctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	resp, err := t.h.ServeEvent(tctx, req)
	if ctx.Err() == nil && tctx.Err() != nil {
		return nil, &IntegrationError{StatusCode: http.StatusGatewayTimeout, Message: msgIntegrationTimedOut,
			Err: fmt.Errorf("route %s took more than %v", req.RequestContext.RouteKey, t.timeout)}
	}
	return resp, err
}
