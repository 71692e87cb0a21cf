package wsroute

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/coder/websocket"
)

// Options configures a [Router]. A nil *Options, and every zero field, means
// the documented default. [New] copies the Options; changing them afterwards
// has no effect.
type Options struct {
	// RouteSelectionExpression picks the route of each message. Default
	// "$request.body.action". See EXPRESSIONS.md for the grammar.
	RouteSelectionExpression string

	// Stage, APIID and DomainName fill the requestContext of every event.
	// Defaults: "local", "local", and the Host of the upgrade request.
	Stage      string
	APIID      string
	DomainName string

	// StageVariables appear as stageVariables on every event. Default none.
	StageVariables map[string]string

	// Authorizer, when set, runs on every upgrade request before $connect, as
	// an API Gateway REQUEST authorizer does. It receives the CONNECT event.
	// What it returns appears as requestContext.authorizer on every later
	// event of the connection, $disconnect included. Return ErrUnauthorized to
	// refuse with 401, ErrAccessDenied to refuse with 403; any other error
	// refuses with 500. It runs on the goroutine serving the HTTP request.
	Authorizer func(ctx context.Context, req *Request) (*AuthorizerResult, error)

	// IdentitySources names request values the Authorizer needs, in API
	// Gateway's form: "route.request.header.Authorization",
	// "route.request.querystring.token". When one is missing or empty the
	// request is refused with 401 without calling the Authorizer. Setting it
	// without an Authorizer is an error.
	IdentitySources []string

	// APIKeys, when not empty, makes an API key required: the upgrade request
	// must carry one of them in its x-api-key header, or it is refused with
	// 403 before the authorizer and $connect run. Keys are compared in
	// constant time. An empty key is an error in [New] (an unset environment
	// variable would otherwise let in clients that send no key).
	APIKeys []string

	// MaxMessageSize bounds an inbound message, in bytes. A client that sends
	// more is closed with 1009. Default 128 KiB, as API Gateway.
	MaxMessageSize int64

	// MaxPostSize bounds the data of [ConnectionManager.PostToConnection], in
	// bytes; more fails with ErrPayloadTooLarge. Default 128 KiB.
	MaxPostSize int

	// IdleTimeout closes a connection with 1001 "Going away" when no message
	// has gone either way for this long (pings do not count). Default 10
	// minutes, as API Gateway. Negative disables it.
	IdleTimeout time.Duration

	// MaxConnectionDuration closes every connection with 1001 "Going away"
	// this long after it opened. Default 2 hours, as API Gateway. Negative
	// disables it.
	MaxConnectionDuration time.Duration

	// PingInterval is how often the router pings each connection. A client
	// that does not answer within PongTimeout, or whose socket has accepted
	// no data for that long when a ping is due, is closed (its $disconnect
	// sees 1006). Defaults 30 s and 10 s. A negative PingInterval disables
	// keepalive pings.
	PingInterval time.Duration
	PongTimeout  time.Duration

	// SendQueueSize and SendQueueBytes bound the frames waiting to be written
	// to one connection, in frames and in bytes. When either is reached,
	// PostToConnection fails with ErrLimitExceeded at once: a slow client never
	// blocks the caller or other connections. Defaults 256 frames and 4 MiB.
	// The queue costs nothing while empty.
	SendQueueSize  int
	SendQueueBytes int

	// CloseTimeout bounds a close the router starts (DeleteConnection, a
	// timeout, Shutdown): after it the socket is closed without waiting for
	// the client's close frame. Default 5 s. With Compression, the transport
	// itself stops waiting for the client's close frame after 5 s, so a
	// larger value only matters when the socket accepts no data.
	CloseTimeout time.Duration

	// AcceptBinary makes binary frames $default events with a base64 body and
	// isBase64Encoded true. By default a binary frame closes the connection
	// with 1003, as API Gateway does.
	AcceptBinary bool

	// OriginPatterns and InsecureSkipVerify control the Origin check, as in
	// [websocket.AcceptOptions]: by default a browser request that sends an
	// Origin header other than the Host is refused with 403 before the
	// authorizer and $connect run. Patterns are matched with path.Match
	// against the origin's host (or scheme://host when the pattern contains
	// "://"). Requests without an Origin header (non-browser clients) are
	// never refused by this check.
	//
	// InsecureSkipVerify turns off the Origin check, and nothing else: it has
	// nothing to do with TLS certificates, and API keys, the authorizer and
	// $connect still run. Any web page can then open connections that carry
	// its visitors' cookies; prefer OriginPatterns.
	OriginPatterns     []string
	InsecureSkipVerify bool

	// Compression negotiates permessage-deflate (RFC 7692) with clients that
	// offer it; others are served uncompressed. Default CompressionDisabled,
	// as API Gateway has no compression. It trades CPU and memory per
	// connection for bandwidth; BENCHMARKS.md measures both for each mode.
	// MaxMessageSize applies to a message after decompression.
	Compression CompressionMode

	// CompressionThreshold is the size in bytes below which an outbound
	// message is sent uncompressed. Default: the transport's, 512 bytes with
	// CompressionNoContextTakeover and 128 with CompressionContextTakeover.
	CompressionThreshold int

	// Logger receives handler errors and panics (at Error, with the stack),
	// closes caused by limits and timeouts (at Info), and shutdown. Default:
	// [slog.Default], as net/http logs to the standard logger; pass
	// slog.New(slog.DiscardHandler) to log nothing.
	Logger *slog.Logger

	// Quotas, when set, enforces API Gateway's quotas for WebSocket APIs
	// (frame and message size, new connections per second, authorizer result
	// size, integration timeout, URL length, routes), so that a local run
	// fails where production would; &Quotas{} means API Gateway's values.
	// It replaces MaxMessageSize and MaxPostSize. Default nil: no quotas
	// beyond the limits above.
	Quotas *Quotas

	// IAM, when set, makes $connect's authorization AWS_IAM: every upgrade
	// request must be signed with AWS Signature Version 4 (see [IAMAuth]).
	// It cannot be combined with Authorizer: API Gateway gives a route one
	// authorization type.
	IAM *IAMAuth

	// UsagePlans, when set, makes an API key required: the upgrade request's
	// x-api-key header (or the Authorizer's UsageIdentifierKey, see
	// APIKeySelectionExpression) must hold a key of the store, checked after the IAM
	// signature or the Authorizer, and the key's plan meters the connection
	// (see [UsagePlans]). A missing or unknown key is refused with 403. It
	// cannot be combined with APIKeys. The store may change while the
	// router serves.
	UsagePlans *UsagePlans

	// APIKeySelectionExpression says where the usage plan's key comes from,
	// as API Gateway's: "$request.header.x-api-key" (the default) or
	// "$context.authorizer.usageIdentifierKey", the
	// AuthorizerResult.UsageIdentifierKey the Authorizer returned.
	APIKeySelectionExpression string

	// MessageTimeout bounds how long one inbound message may take to arrive,
	// from its first frame's header to its last byte; the time a handler of
	// the connection runs meanwhile does not count. A client that takes longer
	// is closed with 1008 "Message took too long". While a message arrives,
	// its bytes count as the client's answer to pings, so a slow upload is
	// bounded by this limit, not by PongTimeout. Default 1 minute (128 KiB at
	// 2.2 KB/s). Negative disables it.
	MessageTimeout time.Duration

	// Backplane, when set, makes the router one node of an API served by
	// several processes: its ConnectionManager reaches the connections of
	// every node (see [Backplane]). Default none: only the router's own.
	// It costs what the Backplane says per connection (the NATS one: one
	// subscription).
	Backplane Backplane

	// Observer, when set, is told of every upgrade request, event, frame
	// and close, for metrics, traces and access logs (see [Observer]).
	// Default nil: nothing is observed, at the cost of a nil check.
	Observer Observer

	// Throttle, when set, limits the rate of messages per router, route,
	// connection and authorizer principal, and of new connections per
	// source IP, in bounded memory (see [Throttle]). Default nil: no
	// throttling.
	Throttle *Throttle

	// TrustedProxies lists the load balancers and proxies in front of the
	// router, as CIDRs ("10.0.0.0/8") or addresses. A request whose TCP peer
	// is one of them is believed about the client: identity.sourceIp (and
	// so per-IP throttling and logs) is the rightmost address of its
	// X-Forwarded-For that is not a trusted proxy, and the CONNECT event
	// keeps the X-Forwarded-For, X-Forwarded-Port, X-Forwarded-Proto and
	// X-Amzn-Trace-Id it sent. From any other peer these headers are
	// replaced by what the router sees, as API Gateway does. Default none:
	// sourceIp is the TCP peer.
	TrustedProxies []string
}

// CompressionMode selects how [Options.Compression] compresses messages.
type CompressionMode int

const (
	// CompressionDisabled negotiates no compression. The default.
	CompressionDisabled CompressionMode = iota

	// CompressionNoContextTakeover compresses each message on its own, with
	// compressor state taken from a pool for the message and returned after
	// it: an idle connection holds about 3 KiB more (BENCHMARKS.md), at
	// the price of a lower ratio on streams of small, similar messages.
	CompressionNoContextTakeover

	// CompressionContextTakeover keeps each connection's compression window
	// across messages: the best ratio for a stream of similar JSON messages,
	// but each connection that has received a compressed message keeps its
	// compressor (about 1.2 MB, see BENCHMARKS.md) for as long as it is open.
	// A client that cannot take over context gets
	// CompressionNoContextTakeover.
	CompressionContextTakeover
)

func (m CompressionMode) transport() websocket.CompressionMode {
	switch m {
	case CompressionNoContextTakeover:
		return websocket.CompressionNoContextTakeover
	case CompressionContextTakeover:
		return websocket.CompressionContextTakeover
	}
	return websocket.CompressionDisabled
}

// AuthorizerResult is what an Authorizer grants a connection.
type AuthorizerResult struct {
	// PrincipalID appears as requestContext.authorizer.principalId.
	PrincipalID string
	// Context entries appear as keys of requestContext.authorizer. API
	// Gateway allows string, number and boolean values.
	Context map[string]any
	// UsageIdentifierKey is the API key of the caller's usage plan when
	// Options.APIKeySelectionExpression is
	// "$context.authorizer.usageIdentifierKey".
	UsageIdentifierKey string
}

const (
	defaultExpression      = "$request.body.action"
	defaultMaxMessageSize  = 128 << 10
	defaultMaxPostSize     = 128 << 10
	defaultIdleTimeout     = 10 * time.Minute
	defaultMaxDuration     = 2 * time.Hour
	defaultPingInterval    = 30 * time.Second
	defaultPongTimeout     = 10 * time.Second
	defaultSendQueueSize   = 256
	defaultSendQueueBytes  = 4 << 20
	defaultCloseTimeout    = 5 * time.Second
	defaultStageAndAPIName = "local"
)

func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&c.RouteSelectionExpression, defaultExpression)
	def(&c.Stage, defaultStageAndAPIName)
	def(&c.APIID, defaultStageAndAPIName)
	for _, f := range []struct {
		name     string
		negative bool
	}{
		{"MaxMessageSize", c.MaxMessageSize < 0},
		{"MaxPostSize", c.MaxPostSize < 0},
		{"SendQueueSize", c.SendQueueSize < 0},
		{"SendQueueBytes", c.SendQueueBytes < 0},
		{"PongTimeout", c.PongTimeout < 0},
		{"CloseTimeout", c.CloseTimeout < 0},
		{"CompressionThreshold", c.CompressionThreshold < 0},
	} {
		if f.negative {
			return c, fmt.Errorf("wsroute: Options.%s is negative", f.name)
		}
	}
	if c.Compression < CompressionDisabled || c.Compression > CompressionContextTakeover {
		return c, fmt.Errorf("wsroute: Options.Compression is %d, not a CompressionMode", c.Compression)
	}
	for i, k := range c.APIKeys {
		if k == "" {
			// An unset environment variable must not let in every client
			// that sends no key.
			return c, fmt.Errorf("wsroute: Options.APIKeys[%d] is empty", i)
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = defaultMaxMessageSize
	}
	defInt(&c.MaxPostSize, defaultMaxPostSize)
	defInt(&c.SendQueueSize, defaultSendQueueSize)
	defInt(&c.SendQueueBytes, defaultSendQueueBytes)
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defDur(&c.IdleTimeout, defaultIdleTimeout)
	defDur(&c.MaxConnectionDuration, defaultMaxDuration)
	defDur(&c.PingInterval, defaultPingInterval)
	defDur(&c.PongTimeout, defaultPongTimeout)
	defDur(&c.CloseTimeout, defaultCloseTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if err := c.applyQuotas(); err != nil {
		return c, err
	}
	return c, nil
}
