package wsroutetest

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/wsroute/wsroute"
)

// NewID returns an ID shaped like API Gateway's connection, request and
// message IDs: 11 random bytes in URL-safe base64 with its "=" padding, 16
// characters (for example "L0SM9cOFvHcCIhw=").
func NewID() string {
	var b [11]byte
	_, _ = rand.Read(b[:]) // never fails
	return base64.URLEncoding.EncodeToString(b[:])
}

const requestTimeLayout = "02/Jan/2006:15:04:05 +0000"

// Events builds the events of one simulated connection, as a router would pass
// them to a handler, so a handler can be called directly:
//
//	ev := wsroutetest.NewEvents()
//	resp, err := handler.ServeEvent(ctx, ev.Message(`{"action":"join","room":"r1"}`))
//
// Every event carries the same connection ID, connectedAt, identity, stage,
// API ID and domain name, and a fresh request ID and time. Set the exported
// fields before building events to change them. Events is safe for concurrent
// use.
type Events struct {
	ConnectionID string
	ConnectedAt  time.Time
	Identity     wsroute.Identity
	Stage        string // default "local", as the router's default
	APIID        string // default "local"
	DomainName   string // default "127.0.0.1"

	// Authorizer is set as requestContext.authorizer on every event, as a
	// router does after Options.Authorizer granted the connection.
	Authorizer map[string]any

	// RouteSelection computes the route key of Message events and the body
	// of Action events. Default: the default expression,
	// $request.body.action; [NewEventsFor] sets the router's.
	RouteSelection *wsroute.Expression

	// Now returns the time of each event. Default time.Now.
	Now func() time.Time

	mu sync.Mutex
}

// NewEventsFor returns [NewEvents] with RouteSelection set to r's route
// selection expression, so that Message and Action route as r does.
func NewEventsFor(r *wsroute.Router) *Events {
	e := NewEvents()
	e.RouteSelection = r.RouteSelectionExpression()
	return e
}

// NewEvents returns the events of a new simulated connection with a fresh ID,
// connected now from 127.0.0.1.
func NewEvents() *Events {
	return &Events{
		ConnectionID: NewID(),
		ConnectedAt:  time.Now(),
		Identity:     wsroute.Identity{SourceIP: "127.0.0.1", UserAgent: "wsroutetest"},
		Stage:        "local",
		APIID:        "local",
		DomainName:   "127.0.0.1",
	}
}

func (e *Events) context(routeKey, eventType string) wsroute.RequestContext {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	t := now().UTC()
	rid := NewID()
	return wsroute.RequestContext{
		RouteKey:          routeKey,
		EventType:         eventType,
		ExtendedRequestID: rid,
		RequestID:         rid,
		RequestTime:       t.Format(requestTimeLayout),
		RequestTimeEpoch:  t.UnixMilli(),
		MessageDirection:  "IN",
		Stage:             e.Stage,
		ConnectedAt:       e.ConnectedAt.UnixMilli(),
		Identity:          e.Identity,
		DomainName:        e.DomainName,
		ConnectionID:      e.ConnectionID,
		APIID:             e.APIID,
		Authorizer:        e.Authorizer,
	}
}

// Connect returns the CONNECT event of the connection, with header and query
// as the upgrade request's (either may be nil). As a router does, it leaves
// out the hop-by-hop Connection and Upgrade headers and sets the query
// string parameters only when query is not empty.
func (e *Events) Connect(header http.Header, query url.Values) *wsroute.Request {
	req := &wsroute.Request{
		Headers:           map[string]string{},
		MultiValueHeaders: map[string][]string{},
		RequestContext:    e.context(wsroute.RouteConnect, wsroute.EventConnect),
	}
	req.Headers["Host"] = e.DomainName
	req.MultiValueHeaders["Host"] = []string{e.DomainName}
	for k, vs := range header {
		ck := http.CanonicalHeaderKey(k)
		if ck == "Connection" || ck == "Upgrade" || len(vs) == 0 {
			continue
		}
		if n, ok := webSocketHeaderNames[ck]; ok {
			ck = n
		}
		req.Headers[ck] = vs[len(vs)-1]
		req.MultiValueHeaders[ck] = append([]string(nil), vs...)
	}
	if len(query) > 0 {
		req.QueryStringParameters = map[string]string{}
		req.MultiValueQueryStringParameters = map[string][]string{}
		for k, vs := range query {
			if len(vs) == 0 {
				continue
			}
			req.QueryStringParameters[k] = vs[len(vs)-1]
			req.MultiValueQueryStringParameters[k] = append([]string(nil), vs...)
		}
	}
	return req
}

// webSocketHeaderNames restores the spelling API Gateway (and a router) uses
// for the headers that Go's canonical form changes.
var webSocketHeaderNames = map[string]string{
	"Sec-Websocket-Key":        "Sec-WebSocket-Key",
	"Sec-Websocket-Version":    "Sec-WebSocket-Version",
	"Sec-Websocket-Extensions": "Sec-WebSocket-Extensions",
	"Sec-Websocket-Protocol":   "Sec-WebSocket-Protocol",
}

var defaultExpression = wsroute.MustParseExpression("$request.body.action")

// Message returns a MESSAGE event carrying body, with the route key that the
// route selection expression gives ($default when body is not JSON or the
// expression yields nothing). The router would send a message whose key has
// no route to $default; call the $default handler yourself for that case.
func (e *Events) Message(body string) *wsroute.Request {
	key, ok := e.expression().Evaluate([]byte(body))
	if !ok || key == "" {
		key = wsroute.RouteDefault
	}
	return e.MessageRoute(key, body)
}

// MessageRoute returns a MESSAGE event carrying body with the given route key.
func (e *Events) MessageRoute(routeKey, body string) *wsroute.Request {
	rc := e.context(routeKey, wsroute.EventMessage)
	rc.MessageID = NewID()
	return &wsroute.Request{RequestContext: rc, Body: body}
}

// Disconnect returns the DISCONNECT event of the connection with the close
// code and reason the router would report: 1000 "Connection Closed Normally"
// after DeleteConnection, 1001 "Going away" on timeouts and shutdown, 1005
// "Client-side close frame status not set" when the client sent no code, 1006
// for an abrupt drop, or the client's own code and reason.
func (e *Events) Disconnect(code int, reason string) *wsroute.Request {
	rc := e.context(wsroute.RouteDisconnect, wsroute.EventDisconnect)
	rc.DisconnectStatusCode = code
	rc.DisconnectReason = reason
	// The headers API Gateway (and a router) sends on DISCONNECT.
	return &wsroute.Request{
		Headers:           map[string]string{"Host": e.DomainName, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""},
		MultiValueHeaders: map[string][]string{"Host": {e.DomainName}, "x-api-key": {""}, "X-Forwarded-For": {""}, "x-restapi": {""}},
		RequestContext:    rc,
	}
}

// Action returns a MESSAGE event for routeKey whose body is the message the
// route selection expression routes there: fields, with the values the
// expression reads set (see [wsroute.Expression.Message]); with the default
// expression, {"action":routeKey, …fields}. It is the event a router passes
// for [Client.SendAction]. It panics when no message yields routeKey, as a
// test's own mistake.
func (e *Events) Action(routeKey string, fields map[string]any) *wsroute.Request {
	body, err := e.expression().Message(routeKey, fields)
	if err != nil {
		panic("wsroutetest: Events.Action: " + err.Error())
	}
	return e.MessageRoute(routeKey, string(body))
}

func (e *Events) expression() *wsroute.Expression {
	if e.RouteSelection != nil {
		return e.RouteSelection
	}
	return defaultExpression
}
