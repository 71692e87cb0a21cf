package wsroute

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
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
	// FrameSize bounds one inbound WebSocket frame, in bytes. A client that
	// sends a larger frame is closed with 1009 "Message too big" (its
	// $disconnect sees 1009). Default 32 KB (32,768 bytes). A larger message
	// must be sent in several frames: browsers send each message as one
	// frame, so to them this is the limit on a message.
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
// itself and reports false; otherwise it returns the ResponseWriter to
// upgrade, which enforces the frame size.
func (g *quotaGate) admit(w http.ResponseWriter, req *http.Request) (http.ResponseWriter, bool) {
	if g == nil {
		return w, true
	}
	if n := len("wss://") + len(req.Host) + len(req.RequestURI); n > g.q.URLLength {
		writeJSONMessage(w, http.StatusRequestURITooLong, "Request-URI Too Long")
		return w, false
	}
	if !g.bucket.take() {
		writeJSONMessage(w, http.StatusTooManyRequests, "Too Many Requests")
		return w, false
	}
	return &frameLimitWriter{ResponseWriter: w, limit: g.q.FrameSize}, true
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

// frameLimitWriter is the ResponseWriter of an upgrade under quotas: the
// connection it hands to the transport refuses frames over the limit.
// coder/websocket does not expose frame sizes, so the frames are watched on
// the bytes the transport reads.
type frameLimitWriter struct {
	http.ResponseWriter
	limit int64
}

func (w *frameLimitWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nc, brw, err
	}
	// Bytes the server read ahead belong to the first frames: watch them
	// too, and leave the transport nothing buffered to read around us.
	pre, _ := brw.Reader.Peek(brw.Reader.Buffered())
	pre = bytes.Clone(pre)
	brw.Reader.Reset(bytes.NewReader(nil))
	fc := &frameLimitConn{Conn: nc, r: io.MultiReader(bytes.NewReader(pre), nc), limit: uint64(w.limit)}
	return fc, brw, nil
}

func (w *frameLimitWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// frameLimitConn passes on what it reads frame by frame. A frame over the
// limit is dropped, header and payload, and in its place the transport's
// read fails once with an error wrapping websocket.ErrMessageTooBig, so that
// the router closes the connection with 1009; the frames after it (the
// client's close frame) pass on, so the close handshake completes and the
// client can finish writing the frame. Reads are serialised by the
// transport. Memory: an 8 KiB buffer per connection, under quotas only.
type frameLimitConn struct {
	net.Conn
	r     io.Reader
	limit uint64

	raw     []byte // what was read, before filtering
	out     []byte // filtered bytes not yet returned
	obuf    []byte // out's buffer, reused once out is drained
	rest    []byte // raw bytes after a dropped frame's header, filtered after the error
	pending error  // returned once, in place of a frame over the limit
	rerr    error  // the underlying read's error, returned once out is drained

	hdr  [14]byte // the frame header being read
	have int      // bytes of it read
	need int      // its length, once its first two bytes are known
	pass uint64   // payload bytes of the current frame still to pass on
	drop uint64   // payload bytes of a dropped frame still to discard
}

const frameLimitBuffer = 8 << 10

func (c *frameLimitConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		switch {
		case c.pending != nil:
			err := c.pending
			c.pending = nil
			return 0, err
		case len(c.rest) > 0:
			rest := c.rest
			c.rest = nil
			c.filter(rest)
			continue
		case c.rerr != nil:
			return 0, c.rerr
		}
		if c.raw == nil {
			c.raw = make([]byte, frameLimitBuffer)
		}
		n, err := c.r.Read(c.raw)
		c.rerr = err
		c.filter(c.raw[:n])
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// filter follows the frames in b, appending to c.out what passes on. At a
// frame over the limit it sets c.pending, keeps the rest of b in c.rest and
// stops.
func (c *frameLimitConn) filter(b []byte) {
	if len(c.out) == 0 {
		c.out = c.obuf[:0]
	}
	defer func() {
		if cap(c.out) > cap(c.obuf) {
			c.obuf = c.out[:0]
		}
	}()
	for i := 0; i < len(b); {
		switch {
		case c.pass > 0:
			n := min(uint64(len(b)-i), c.pass)
			c.out = append(c.out, b[i:i+int(n)]...)
			i += int(n)
			c.pass -= n
			continue
		case c.drop > 0:
			n := min(uint64(len(b)-i), c.drop)
			i += int(n)
			c.drop -= n
			continue
		}
		c.hdr[c.have] = b[i]
		c.have++
		i++
		if c.have == 2 {
			c.need = 2
			switch c.hdr[1] & 0x7f {
			case 126:
				c.need += 2
			case 127:
				c.need += 8
			}
			if c.hdr[1]&0x80 != 0 { // masked, as every client frame is
				c.need += 4
			}
		}
		if c.have < 2 || c.have < c.need {
			continue
		}
		var size uint64
		switch l := c.hdr[1] & 0x7f; l {
		case 126:
			size = uint64(binary.BigEndian.Uint16(c.hdr[2:4]))
		case 127:
			size = binary.BigEndian.Uint64(c.hdr[2:10])
		default:
			size = uint64(l)
		}
		hdr := c.hdr[:c.have]
		c.have, c.need = 0, 0
		if size > c.limit {
			c.drop = size
			c.pending = fmt.Errorf("%w: a frame of %d bytes is over the quota of %d", websocket.ErrMessageTooBig, size, c.limit)
			c.rest = bytes.Clone(b[i:])
			return
		}
		c.out = append(c.out, hdr...)
		c.pass = size
	}
}
