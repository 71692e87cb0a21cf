package wsroute

import (
	"encoding/json"
	"net/textproto"
	"strings"
	"time"
)

// Route keys that API Gateway reserves. Custom route keys may not start with
// "$".
const (
	RouteConnect    = "$connect"
	RouteDisconnect = "$disconnect"
	RouteDefault    = "$default"
)

// Event types, as in [RequestContext.EventType].
const (
	EventConnect    = "CONNECT"
	EventMessage    = "MESSAGE"
	EventDisconnect = "DISCONNECT"
)

// Request is the event a [Handler] receives. Its JSON encoding is API
// Gateway's Lambda proxy event for WebSocket APIs, field for field, so a
// handler written for Lambda ports by changing its signature, and an event can
// be logged or forwarded as the same JSON.
//
// Which fields are set depends on the event:
//   - CONNECT: Headers, MultiValueHeaders, and the query string parameters
//     when the URL had a query. The hop-by-hop Connection and Upgrade headers
//     are left out. Header names keep API Gateway's spelling
//     ("Sec-WebSocket-Protocol", not Go's "Sec-Websocket-Protocol"): look
//     them up with [Request.Header], which ignores case.
//   - MESSAGE: Body and RequestContext.MessageID; no headers.
//   - DISCONNECT: RequestContext.DisconnectStatusCode and DisconnectReason,
//     and the headers API Gateway sends on DISCONNECT: Host (the domain
//     name), and x-api-key, X-Forwarded-For and x-restapi, all empty. The
//     client's own handshake headers are not repeated; keep what you need
//     from CONNECT.
//
// A handler may keep a Request after it returns; the router does not reuse
// it. A MESSAGE event whose Body is at most 128 bytes is made with one
// allocation together with its Body and its two IDs, so keeping the Body
// string, or an ID, of such a message keeps the whole 704 bytes: a handler
// that stores many small bodies for long can store strings.Clone(req.Body)
// instead. Two maps are shared rather than copied: StageVariables (by every event
// of the router) and RequestContext.Authorizer (by every event of the
// connection). Read them; do not modify them.
type Request struct {
	Headers                         map[string]string   `json:"headers,omitempty"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders,omitempty"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters,omitempty"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters,omitempty"`
	StageVariables                  map[string]string   `json:"stageVariables,omitempty"`
	RequestContext                  RequestContext      `json:"requestContext"`
	Body                            string              `json:"body,omitempty"`
	IsBase64Encoded                 bool                `json:"isBase64Encoded"`
}

// RequestContext is the requestContext object of a [Request].
type RequestContext struct {
	RouteKey             string   `json:"routeKey"`
	MessageID            string   `json:"messageId,omitempty"`
	EventType            string   `json:"eventType"`
	ExtendedRequestID    string   `json:"extendedRequestId"`
	RequestTime          string   `json:"requestTime"` // 02/Jan/2006:15:04:05 +0000
	MessageDirection     string   `json:"messageDirection"`
	DisconnectStatusCode int      `json:"disconnectStatusCode,omitempty"`
	DisconnectReason     string   `json:"disconnectReason,omitempty"`
	Stage                string   `json:"stage"`
	ConnectedAt          int64    `json:"connectedAt"`      // epoch milliseconds
	RequestTimeEpoch     int64    `json:"requestTimeEpoch"` // epoch milliseconds
	Identity             Identity `json:"identity"`
	RequestID            string   `json:"requestId"`
	DomainName           string   `json:"domainName"`
	ConnectionID         string   `json:"connectionId"`
	APIID                string   `json:"apiId"`

	// Authorizer holds what Options.Authorizer returned for this connection:
	// "principalId", every key of its context, and "integrationLatency" in
	// milliseconds. It is nil when no authorizer is configured. It is shared by
	// every event of the connection: read it, do not modify it.
	Authorizer map[string]any `json:"authorizer,omitempty"`
}

// MarshalJSON encodes c as API Gateway does: a DISCONNECT event always has
// disconnectReason, even when it is empty.
func (c RequestContext) MarshalJSON() ([]byte, error) {
	type plain RequestContext
	if c.EventType != EventDisconnect || c.DisconnectReason != "" {
		return json.Marshal(plain(c))
	}
	return json.Marshal(struct {
		plain
		DisconnectReason string `json:"disconnectReason"`
	}{plain: plain(c)})
}

// Identity is the caller's identity as API Gateway reports it.
type Identity struct {
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent,omitempty"` // only when the client sent one

	// The caller of an AWS_IAM connection ([IAMAuth]) and the API key of one
	// that used a usage plan's key ([UsagePlans]); empty otherwise.
	AccessKey                     string `json:"accessKey,omitempty"`
	AccountID                     string `json:"accountId,omitempty"`
	Caller                        string `json:"caller,omitempty"`
	User                          string `json:"user,omitempty"`
	UserARN                       string `json:"userArn,omitempty"`
	PrincipalOrgID                string `json:"principalOrgId,omitempty"`
	CognitoIdentityID             string `json:"cognitoIdentityId,omitempty"`
	CognitoIdentityPoolID         string `json:"cognitoIdentityPoolId,omitempty"`
	CognitoAuthenticationType     string `json:"cognitoAuthenticationType,omitempty"`
	CognitoAuthenticationProvider string `json:"cognitoAuthenticationProvider,omitempty"`
	APIKey                        string `json:"apiKey,omitempty"`
	APIKeyID                      string `json:"apiKeyId,omitempty"`
}

// Response is what a [Handler] returns: the Lambda proxy result.
//
// On $connect, a 2xx StatusCode (or 0, which counts as 200) accepts the
// connection and a 3xx, 4xx or 5xx refuses the handshake with that status (an
// invalid one, with 500); Headers["Sec-WebSocket-Protocol"] selects the
// subprotocol. On every other route StatusCode is ignored, and a non-empty Body
// is sent back to the caller as one text frame (a two-way route; binary when
// IsBase64Encoded, decoded). Frames the handler posted to its own connection
// before returning are sent before the Body.
type Response struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers,omitempty"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders,omitempty"`
	Body              string              `json:"body,omitempty"`
	IsBase64Encoded   bool                `json:"isBase64Encoded,omitempty"`
}

// Connection describes an open connection, as [ConnectionManager.GetConnection]
// returns it. Its JSON encoding is the body of API Gateway's GetConnection
// response: {"connectedAt":"…","identity":{…},"lastActiveAt":"…"} with times in
// ISO-8601 UTC with milliseconds.
type Connection struct {
	ConnectionID string    `json:"-"`
	ConnectedAt  time.Time `json:"-"`
	// LastActiveAt is when the last message went in either direction; before
	// any, the time the connection was accepted.
	LastActiveAt time.Time `json:"-"`
	Identity     Identity  `json:"-"`

	// Authorizer is what Options.Authorizer granted the connection, as in
	// [RequestContext.Authorizer]; nil without an authorizer. It is not part
	// of the JSON encoding (API Gateway's GetConnection has no such field)
	// and is shared: read it, do not modify it.
	Authorizer map[string]any `json:"-"`
}

const isoMillis = "2006-01-02T15:04:05.000Z"

type connectionJSON struct {
	ConnectedAt  string   `json:"connectedAt"`
	Identity     Identity `json:"identity"`
	LastActiveAt string   `json:"lastActiveAt"`
}

// MarshalJSON encodes c as API Gateway's GetConnection response body.
func (c Connection) MarshalJSON() ([]byte, error) {
	return json.Marshal(connectionJSON{
		ConnectedAt:  c.ConnectedAt.UTC().Format(isoMillis),
		Identity:     c.Identity,
		LastActiveAt: c.LastActiveAt.UTC().Format(isoMillis),
	})
}

// UnmarshalJSON decodes API Gateway's GetConnection response body. It leaves
// ConnectionID unchanged.
func (c *Connection) UnmarshalJSON(data []byte) error {
	var v connectionJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	var err error
	if c.ConnectedAt, err = time.Parse(time.RFC3339Nano, v.ConnectedAt); err != nil {
		return err
	}
	if c.LastActiveAt, err = time.Parse(time.RFC3339Nano, v.LastActiveAt); err != nil {
		return err
	}
	c.Identity = v.Identity
	return nil
}

// Header returns the value of the request header name, matched
// case-insensitively ("sec-websocket-protocol" finds the
// "Sec-WebSocket-Protocol" that API Gateway's spelling keeps, which
// [net/http.Header.Get] would not). It reads Headers, as a Lambda handler
// reads event.headers, and falls back to the last value in
// MultiValueHeaders; it returns "" when the header is absent. Only CONNECT
// and DISCONNECT events carry headers.
func (r *Request) Header(name string) string {
	if v, ok := lookupFold(r.Headers, name); ok {
		return v
	}
	if vs, ok := lookupFold(r.MultiValueHeaders, name); ok && len(vs) > 0 {
		return vs[len(vs)-1]
	}
	return ""
}

// HeaderValues returns every value of the request header name, matched
// case-insensitively, from MultiValueHeaders, or else the single value in
// Headers; nil when the header is absent. The slice is the event's own: do
// not modify it.
func (r *Request) HeaderValues(name string) []string {
	if vs, ok := lookupFold(r.MultiValueHeaders, name); ok {
		return vs
	}
	if v, ok := lookupFold(r.Headers, name); ok {
		return []string{v}
	}
	return nil
}

// lookupFold finds name in m: as spelt, in Go's canonical form, then by a
// case-insensitive scan.
func lookupFold[V any](m map[string]V, name string) (V, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	if v, ok := m[textproto.CanonicalMIMEHeaderKey(name)]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	var zero V
	return zero, false
}
