package wsroute

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/wsroute/wsroute/internal/sigv4"
)

// Throttle limits the rate of messages and of new connections, each with a
// token bucket of [ThrottleSettings] (RateLimit tokens per second on
// average, BurstLimit at once; a bucket starts full). Set it as
// [Options.Throttle]; a nil field means no limit of that kind.
//
// Router and Routes are API Gateway's stage and route throttles;
// Connection, Principal and NewConnectionsPerIP are what API Gateway cannot
// do, whose throttles are global to the API. A message over a limit gets
// the frame {"message": "Too Many Requests", "connectionId":"…",
// "requestId":"…"}, reaches no route, and the connection stays open; an
// upgrade request over a limit gets 429 {"message":"Too Many Requests"} and
// no $connect.
//
// # Order and fairness
//
// A message is checked against its connection's bucket, then its
// principal's, its route's and the router's, narrowest first, and stops at
// the first that is empty: a message its own connection's limit refuses
// takes nothing from the buckets other connections share, so one chatty
// connection cannot throttle the others once it is over its own limit. A
// message refused by a wider limit has used its tokens of the narrower ones.
//
// # Memory
//
// Router and Routes cost one bucket each. Connection, Principal and
// NewConnectionsPerIP keep a bucket (about 50 bytes with an IPv4 key: 5 MB
// for 100,000) per connection ID, principal and source IP seen, at most
// MaxKeys of each, whatever clients do: past it the buckets that have
// refilled are dropped first (a full bucket is what a new key gets anyway),
// else the fullest of a sample of 32.
// The limits are exact while fewer than MaxKeys keys of a kind are active
// at once, a key being active until its bucket has refilled
// (BurstLimit/RateLimit seconds after its last request).
type Throttle struct {
	// Router limits the messages of all connections together, as API
	// Gateway's stage throttle (DefaultRouteSettings) limits a stage.
	Router *ThrottleSettings

	// Routes limits the messages of each route, by route key, as API
	// Gateway's route throttles (RouteSettings). "$default" counts the
	// messages the $default route receives; "$connect" counts upgrade
	// requests. "$disconnect" cannot be throttled: New fails.
	Routes map[string]ThrottleSettings

	// Connection limits the messages of each connection.
	Connection *ThrottleSettings

	// Principal limits the messages of all the connections of each
	// authorizer principal (requestContext.authorizer.principalId)
	// together. Connections without a principal are not counted.
	Principal *ThrottleSettings

	// NewConnectionsPerIP limits the upgrade requests of each source IP
	// (requestContext.identity.sourceIp: the client's address, behind
	// Options.TrustedProxies too). It is checked before the authorizer.
	NewConnectionsPerIP *ThrottleSettings

	// MaxKeys bounds the connection IDs, principals and source IPs whose
	// buckets are kept, for each of the three limits. Default 100,000.
	MaxKeys int

	now func() time.Time // nil: time.Now; tests set it
}

const defaultThrottleKeys = 100_000

// valid reports whether s describes a bucket: RateLimit > 0, finite, and
// BurstLimit >= 1.
func (s ThrottleSettings) valid() bool {
	return s.RateLimit > 0 && !math.IsInf(s.RateLimit, 0) && s.BurstLimit >= 1
}

// throttler enforces a Throttle. A nil *throttler enforces nothing.
type throttler struct {
	router                *tokenBucket
	routes                map[string]*tokenBucket
	conn, principal, addr *bucketTable
	now                   func() time.Time
}

func newThrottler(t *Throttle) (*throttler, error) {
	if t == nil {
		return nil, nil
	}
	if t.MaxKeys < 0 {
		return nil, fmt.Errorf("wsroute: Throttle.MaxKeys is negative")
	}
	keys := t.MaxKeys
	if keys == 0 {
		keys = defaultThrottleKeys
	}
	th := &throttler{now: t.now}
	if th.now == nil {
		th.now = time.Now
	}
	check := func(name string, s *ThrottleSettings) error {
		if s != nil && !s.valid() {
			return fmt.Errorf("wsroute: Throttle.%s needs RateLimit > 0 and BurstLimit >= 1", name)
		}
		return nil
	}
	for name, s := range map[string]*ThrottleSettings{"Router": t.Router, "Connection": t.Connection,
		"Principal": t.Principal, "NewConnectionsPerIP": t.NewConnectionsPerIP} {
		if err := check(name, s); err != nil {
			return nil, err
		}
	}
	if s := t.Router; s != nil {
		th.router = newTokenBucket(s.RateLimit, s.BurstLimit, th.now)
	}
	for key, s := range t.Routes {
		if key == RouteDisconnect || key == "" {
			return nil, fmt.Errorf("wsroute: Throttle.Routes: route %q cannot be throttled", key)
		}
		if err := check(fmt.Sprintf("Routes[%q]", key), &s); err != nil {
			return nil, err
		}
		if th.routes == nil {
			th.routes = make(map[string]*tokenBucket, len(t.Routes))
		}
		th.routes[key] = newTokenBucket(s.RateLimit, s.BurstLimit, th.now)
	}
	table := func(s *ThrottleSettings) *bucketTable {
		if s == nil {
			return nil
		}
		return newBucketTable(*s, keys)
	}
	th.conn, th.principal, th.addr = table(t.Connection), table(t.Principal), table(t.NewConnectionsPerIP)
	return th, nil
}

// refuse throttles one message of c routed to routeKey. Over a limit the
// client gets the Too Many Requests frame and refuse returns true.
func (t *throttler) refuse(c *conn, routeKey string) bool {
	if t == nil {
		return false
	}
	now := t.now().UnixNano()
	why := ""
	switch {
	case t.conn != nil && !t.conn.take(c.id, now):
		why = "connection"
	case t.principal != nil && !t.takePrincipal(c, now):
		why = "principal"
	case t.routes[routeKey] != nil && !t.routes[routeKey].takeAt(now):
		why = "route"
	case t.router != nil && !t.router.takeAt(now):
		why = "router"
	default:
		return false
	}
	c.r.log.Debug("wsroute: message throttled", "connectionId", c.id, "routeKey", routeKey, "limit", why)
	messageID, requestID := eventIDPair()
	c.refused(routeKey, requestID, messageID, time.Now(), http.StatusTooManyRequests) // the Observer, if any
	c.reply(frame{data: errorFrame("Too Many Requests", c.id, requestID)})
	return true
}

func (t *throttler) takePrincipal(c *conn, now int64) bool {
	p, _ := c.authorizer["principalId"].(string)
	return p == "" || t.principal.take(p, now)
}

// admit throttles the upgrade request of c, before its authorizer and
// $connect run. Over a limit it answers 429 and returns false; the
// Observer sees the refusal with the CONNECT event.
func (t *throttler) admit(w http.ResponseWriter, c *conn) bool {
	if t == nil {
		return true
	}
	now := t.now().UnixNano()
	why := ""
	switch {
	case t.addr != nil && !t.addr.take(c.sourceIP, now):
		why = "sourceIp"
	case t.routes[RouteConnect] != nil && !t.routes[RouteConnect].takeAt(now):
		why = "route"
	default:
		return true
	}
	c.r.log.Debug("wsroute: upgrade throttled", "connectionId", c.id, "sourceIp", c.sourceIP, "limit", why)
	writeJSONMessage(w, http.StatusTooManyRequests, "Too Many Requests")
	return false
}

// ManagementThrottle limits the calls the @connections management API
// serves (see [ManagementOptions.Throttle]), with token buckets of
// [ThrottleSettings]. A call over a limit gets 429 LimitExceededException
// {"message":"Too Many Requests"}, which the AWS SDKs retry with backoff as
// a throttling error, and does not reach the ConnectionManager. The limits
// are checked once the caller is authenticated, before the body is read.
type ManagementThrottle struct {
	// Total limits all calls together, as API Gateway's account-level
	// throttle limits @connections calls.
	Total *ThrottleSettings

	// PerCaller limits the calls of each caller: the access key ID of a
	// SigV4-signed call, otherwise the TCP peer's IP address.
	PerCaller *ThrottleSettings

	// MaxCallers bounds the callers whose buckets are kept, as
	// [Throttle.MaxKeys] does. Default 100,000.
	MaxCallers int

	now func() time.Time // nil: time.Now; tests set it
}

// mgmtThrottler enforces a ManagementThrottle. A nil *mgmtThrottler
// enforces nothing.
type mgmtThrottler struct {
	total  *tokenBucket
	caller *bucketTable
	now    func() time.Time
}

// newManagementThrottler panics on invalid settings, as NewManagementHandler
// does on every invalid option.
func newManagementThrottler(t *ManagementThrottle) *mgmtThrottler {
	if t == nil {
		return nil
	}
	for _, s := range []*ThrottleSettings{t.Total, t.PerCaller} {
		if s != nil && !s.valid() {
			panic("wsroute: NewManagementHandler: Throttle needs RateLimit > 0 and BurstLimit >= 1")
		}
	}
	if t.MaxCallers < 0 {
		panic("wsroute: NewManagementHandler: negative Throttle.MaxCallers")
	}
	m := &mgmtThrottler{now: t.now}
	if m.now == nil {
		m.now = time.Now
	}
	if s := t.Total; s != nil {
		m.total = newTokenBucket(s.RateLimit, s.BurstLimit, m.now)
	}
	if s := t.PerCaller; s != nil {
		n := t.MaxCallers
		if n == 0 {
			n = defaultThrottleKeys
		}
		m.caller = newBucketTable(*s, n)
	}
	return m
}

// take counts one call of r, signed by sig (nil when it was not signed).
// Over a limit it returns the error to answer.
func (m *mgmtThrottler) take(r *http.Request, sig *sigv4.Signature) *mgmtError {
	if m == nil {
		return nil
	}
	now := m.now().UnixNano()
	caller := "ip:" + remoteIP(r.RemoteAddr)
	if sig != nil {
		caller = "key:" + sig.AccessKeyID
	}
	if (m.caller != nil && !m.caller.take(caller, now)) || (m.total != nil && !m.total.takeAt(now)) {
		return &mgmtError{http.StatusTooManyRequests, shapeLimit, "Too Many Requests"}
	}
	return nil
}
