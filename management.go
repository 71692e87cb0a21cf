package wsroute

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wsroute/wsroute/internal/sigv4"
)

// ManagementOptions configures [NewManagementHandler]. Its authentication
// fields say who may call the API; at least one of Credentials, BearerTokens
// and Authenticate must be set, or else InsecureSkipAuthentication.
//
// # Which method decides
//
// Each request is authenticated by exactly one method, the first that
// applies:
//
//  1. SigV4, when Credentials is set and the request carries a SigV4
//     signature (an "Authorization: AWS4-HMAC-SHA256 …" header, or a
//     presigned URL's X-Amz-Signature).
//  2. A bearer token, when BearerTokens is set and the request carries
//     "Authorization: Bearer …".
//  3. Authenticate, when set, for every other request (so it can accept its
//     own bearer tokens, such as JWTs, when BearerTokens is empty).
//
// A request none of them applies to, or that the one which applies refuses,
// gets 403 ForbiddenException.
type ManagementOptions struct {
	// Credentials are the AWS access keys accepted in SigV4 signatures:
	// access key ID → secret access key. The signature must be for service
	// "execute-api"; an AWS SDK signs so when its endpoint is the handler's
	// stage URL. NewManagementHandler copies the map.
	Credentials map[string]string

	// Region, when not empty, is the only region accepted in a SigV4
	// credential scope. Default: any region, so that an SDK works with
	// whatever region it was configured with.
	Region string

	// MaxClockSkew is how far a SigV4 request's X-Amz-Date may be from the
	// server's clock, either way. Default 5 minutes, as AWS. A signed request
	// can be replayed within this window: use TLS.
	MaxClockSkew time.Duration

	// BearerTokens are accepted in an "Authorization: Bearer <token>"
	// header. They are compared in constant time. NewManagementHandler copies
	// the slice.
	BearerTokens []string

	// Authenticate, when set, decides the requests SigV4 and bearer tokens do
	// not (see the type's documentation): it returns nil to accept r and an
	// error to refuse it with 403. The error's text is logged, never sent.
	// It runs on the request's goroutine, before the body is read; it sees r
	// with Body set to http.NoBody. It must be safe for concurrent use.
	Authenticate func(r *http.Request) error

	// InsecureSkipAuthentication serves every request without any
	// authentication: anyone who can reach the handler can read, message and
	// close every connection. Use it only behind something that
	// authenticates, or on a loopback address in development. It cannot be
	// combined with the other authentication fields.
	InsecureSkipAuthentication bool

	// MaxBodySize bounds the body of a request, in bytes. A larger body gets
	// 413 PayloadTooLargeException without being read. Default 131072
	// (128 KiB), API Gateway's limit on PostToConnection data. The
	// ConnectionManager may enforce its own limit ([Options.MaxPostSize]).
	MaxBodySize int64

	// Logger receives refused requests (at Info, with the reason, which the
	// client is not told in detail) and errors of the ConnectionManager (at
	// Error). Default: [slog.Default]; pass slog.New(slog.DiscardHandler) to
	// log nothing.
	Logger *slog.Logger

	// Observer, when set, is told of every request answered, with its
	// method and status (see [Observer.ManagementCall]). Default nil.
	Observer Observer

	// Throttle, when set, limits the calls served, in total and per caller
	// (see [ManagementThrottle]); a call over a limit gets 429
	// LimitExceededException. Default nil: no limit.
	Throttle *ManagementThrottle
}

const (
	defaultManagementMaxBody = 128 << 10
	maxAuthorizationHeader   = 8 << 10 // bytes of Authorization we look at
	maxConnectionIDLength    = 128
	connectionsSegment       = "@connections"
)

// The error shapes of the @connections API, as API Gateway names them in
// x-amzn-ErrorType.
const (
	shapeBadRequest  = "BadRequestException"
	shapeForbidden   = "ForbiddenException"
	shapeGone        = "GoneException"
	shapeLimit       = "LimitExceededException"
	shapeTooLarge    = "PayloadTooLargeException"
	shapeInternal    = "InternalServerErrorException"
	shapeUnavailable = "ServiceUnavailableException"
	shapeTimeout     = "GatewayTimeoutException"
)

// Messages sent with the errors. Each is the value of the only key,
// "message", of the JSON body.
const (
	msgMissingToken   = "Missing Authentication Token"
	msgForbidden      = "Forbidden"
	msgBadToken       = "Invalid bearer token"
	msgAuthTooLong    = "Authorization header too long"
	msgSigMalformed   = "Malformed SigV4 signature"
	msgSigUnknownKey  = "The security token included in the request is invalid."
	msgSigMismatch    = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
	msgSigUnsigned    = "Unsigned payloads are not accepted: sign the request body"
	msgSigPayloadHash = "The x-amz-content-sha256 header does not match the request body"
	msgGone           = "Gone"
	msgInvalidID      = "Invalid connectionId"
	msgMissingID      = "Missing connectionId"
	msgLimitExceeded  = "Limit Exceeded"
	msgTooLarge       = "Payload Too Large"
	msgUnreadableBody = "Could not read the request body"
	msgInternal       = "Internal server error"
	msgUnavailable    = "Service Unavailable"
	msgTimeout        = "Gateway Timeout"
)

const (
	allowedMethods     = "DELETE, GET, POST"
	headerErrorType    = "x-amzn-ErrorType"
	headerRequestID    = "x-amzn-RequestId"
	headerContentType  = "Content-Type"
	jsonContentType    = "application/json"
	authBearerPrefix   = "bearer " // compared case-insensitively
	routeForMessages   = connectionsSegment + "/{connectionId}"
	maxEchoedMethodLen = 16
	maxAccessKeyIDLen  = 128
)

// NewManagementHandler returns an http.Handler that serves API Gateway's
// @connections management API over cm, so that AWS SDK clients given the
// handler's URL as their endpoint can post to, describe and close
// connections.
//
// # Requests
//
// It serves, under any path prefix (the stage), so that it can be mounted at
// "/" or under any pattern:
//
//	POST   …/@connections/{connectionId}   body: the message → 200, empty body
//	GET    …/@connections/{connectionId}   → 200 {"connectedAt":…,"identity":{…},"lastActiveAt":…}
//	DELETE …/@connections/{connectionId}   → 204
//
// When cm has groups (a method Groups() [GroupManager], as the
// ConnectionManager of a [Router] has), it also serves the group paths:
//
//	POST   …/@groups/{group}                        body: the message → 200 {"delivered":2,"skipped":0,"gone":0}
//	GET    …/@groups/{group}/members                → 200 {"members":["…"]}
//	PUT    …/@groups/{group}/members/{connectionId} → 204 (join)
//	DELETE …/@groups/{group}/members/{connectionId} → 204 (leave)
//	POST   …/@broadcast                             body: the message → 200, as a group post
//
// with the same authentication and error shapes; an invalid group name gets
// 400 BadRequestException.
//
// The path is percent-decoded segment by segment: "@" or "%40", "=" or
// "%3D". An SDK given the endpoint "http://host:port/prod" sends
// "/prod/@connections/L0SM9cOFvHcCIhw%3D".
//
// # Errors
//
// Every error has a JSON body {"message":"…"} whose values are strings,
// Content-Type application/json, and the header x-amzn-ErrorType naming its
// shape, as API Gateway sends them, so that the SDKs return their typed
// errors:
//
//   - 403 ForbiddenException: not authenticated (checked before anything
//     else); a path that is not …/@connections/{id}, or a method other than
//     GET, POST and DELETE (with an Allow header), as API Gateway answers
//     "No method found matching route …".
//   - 400 BadRequestException: an empty connection ID, or a body that could
//     not be read.
//   - 410 GoneException: the connection is unknown, closed or not yet
//     connected ([ErrGone]); also a malformed ID (longer than 128 bytes, or
//     with bytes outside printable ASCII), which cm is not asked about.
//   - 413 PayloadTooLargeException: a body over MaxBodySize (not read), or
//     [ErrPayloadTooLarge] from cm.
//   - 429 LimitExceededException: [ErrLimitExceeded] from cm, or a call over Throttle.
//   - 503 ServiceUnavailableException: cm returned context.Canceled,
//     [ErrRouterClosed] or [ErrBackplaneUnavailable]; 504
//     GatewayTimeoutException: it returned context.DeadlineExceeded; 500 InternalServerErrorException: any other
//     error, or a panic, of cm (logged, not sent).
//
// Every response carries an x-amzn-RequestId header, which the SDKs report
// as the request ID.
//
// # Authentication
//
// Authentication is required: opts must set Credentials, BearerTokens or
// Authenticate, or InsecureSkipAuthentication to run without. A nil opts, or
// options that set none of them, or that contradict each other, make
// NewManagementHandler panic with a message that starts with "wsroute: ".
//
// SigV4 requests are verified as AWS does (service "execute-api", any region
// unless Region is set, X-Amz-Date within MaxClockSkew, the signed headers
// named in the Authorization header, the body's SHA-256 or the
// x-amz-content-sha256 header). UNSIGNED-PAYLOAD and streaming payloads are
// refused. Presigned URLs (X-Amz-Signature in the query, at most 7 days)
// are accepted. The canonical URI is the path as sent, encoded once more, so
// requests sent with "@" and with "%40" both verify when signed as sent.
//
// Everything but the signature's match with the body is checked before the
// body is read: a request without credentials, with a malformed
// Authorization header, an unknown access key ID (answered "The security
// token included in the request is invalid.", as AWS does), a wrong bearer
// token or a refusal of Authenticate is answered at once, unread. Every
// refusal carries "Connection: close", so that the server closes the
// connection instead of reading the body first. Serve the handler from an
// [http.Server] with ReadHeaderTimeout and ReadTimeout set: they bound a
// client that sends its headers or body slowly (see the README).
//
// The handler is safe for concurrent use. It does not retain r or its body
// after ServeHTTP returns.
func NewManagementHandler(cm ConnectionManager, opts *ManagementOptions) http.Handler {
	if cm == nil {
		panic("wsroute: NewManagementHandler: nil ConnectionManager")
	}
	if opts == nil {
		panic("wsroute: NewManagementHandler: nil *ManagementOptions; set Credentials, BearerTokens or Authenticate " +
			"(or InsecureSkipAuthentication to serve without authentication)")
	}
	o := *opts
	authConfigured := len(o.Credentials) > 0 || len(o.BearerTokens) > 0 || o.Authenticate != nil
	switch {
	case !authConfigured && !o.InsecureSkipAuthentication:
		panic("wsroute: NewManagementHandler: no authentication configured; set Credentials, BearerTokens or " +
			"Authenticate (or InsecureSkipAuthentication to serve without authentication)")
	case authConfigured && o.InsecureSkipAuthentication:
		panic("wsroute: NewManagementHandler: InsecureSkipAuthentication is set together with Credentials, " +
			"BearerTokens or Authenticate")
	case o.MaxBodySize < 0 || o.MaxClockSkew < 0:
		panic("wsroute: NewManagementHandler: negative MaxBodySize or MaxClockSkew")
	}
	h := &managementHandler{
		cm:           cm,
		authenticate: o.Authenticate,
		insecure:     o.InsecureSkipAuthentication,
		maxBody:      o.MaxBodySize,
		log:          o.Logger,
		obs:          o.Observer,
		throttle:     newManagementThrottler(o.Throttle),
	}
	if h.maxBody == 0 {
		h.maxBody = defaultManagementMaxBody
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if len(o.Credentials) > 0 {
		secrets := make(map[string]string, len(o.Credentials))
		for id, secret := range o.Credentials {
			if id == "" || secret == "" || len(id) > maxAccessKeyIDLen || strings.ContainsAny(id, "/ \t\r\n") {
				panic(fmt.Sprintf("wsroute: NewManagementHandler: invalid credential %q: the access key ID must be "+
					"1 to 128 bytes without '/' or spaces, and the secret must not be empty", id))
			}
			secrets[id] = secret
		}
		h.sigv4 = &sigv4.Verifier{
			Service: "execute-api",
			Region:  o.Region,
			MaxSkew: o.MaxClockSkew,
			Secret: func(id string) (string, bool) {
				s, ok := secrets[id]
				return s, ok
			},
		}
	}
	for _, tok := range o.BearerTokens {
		if tok == "" || strings.TrimSpace(tok) != tok {
			panic("wsroute: NewManagementHandler: empty bearer token, or one with leading or trailing spaces")
		}
		h.tokens = append(h.tokens, sha256.Sum256([]byte(tok)))
	}
	return h
}

// managementHandler is the http.Handler NewManagementHandler returns. It is
// immutable once built.
type managementHandler struct {
	cm           ConnectionManager
	sigv4        *sigv4.Verifier // nil without Credentials
	tokens       [][sha256.Size]byte
	authenticate func(*http.Request) error
	insecure     bool
	maxBody      int64
	log          *slog.Logger
	obs          Observer       // nil unless ManagementOptions.Observer
	throttle     *mgmtThrottler // nil without ManagementOptions.Throttle
}

var _ http.Handler = (*managementHandler)(nil)

// mgmtError is an error response.
type mgmtError struct {
	status  int
	shape   string
	message string
}

func (h *managementHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newManagementRequestID()
	w.Header().Set(headerRequestID, requestID)
	w, observed := h.observe(w, r, requestID)
	defer observed()

	// 1. Who is calling: everything that does not need the body.
	sig, e, reason := h.authenticateHeaders(r)
	if e != nil {
		h.refuse(w, r, requestID, e, reason)
		return
	}

	if e := h.throttle.take(r, sig); e != nil {
		writeManagementError(w, e)
		return
	}

	// 2. The body, bounded.
	body, e := h.readBody(w, r)
	if e != nil {
		writeManagementError(w, e)
		return
	}

	// 3. A SigV4 signature covers the body.
	if sig != nil {
		if err := h.sigv4.Verify(r, sig, sigv4.PayloadHash(body)); err != nil {
			h.refuse(w, r, requestID, h.sigv4Error(err), err.Error())
			return
		}
	}

	// 4. The route.
	id, ok := parseManagementPath(r.URL.EscapedPath())
	if !ok && h.serveGroups(w, r, requestID, body) { // management_groups.go
		return
	}
	if !ok || (r.Method != http.MethodPost && r.Method != http.MethodGet && r.Method != http.MethodDelete) {
		route := routeForMessages
		if !ok {
			route = strings.TrimPrefix(r.URL.EscapedPath(), "/")
			if len(route) > 256 {
				route = route[:256] + "…"
			}
		}
		method := r.Method
		if len(method) > maxEchoedMethodLen {
			method = method[:maxEchoedMethodLen] + "…"
		}
		if ok {
			w.Header().Set("Allow", allowedMethods)
		}
		writeManagementError(w, &mgmtError{http.StatusForbidden, shapeForbidden,
			"No method found matching route " + route + " for http method " + method + "."})
		return
	}
	if id == "" {
		writeManagementError(w, &mgmtError{http.StatusBadRequest, shapeBadRequest, msgMissingID})
		return
	}
	if !validConnectionID(id) {
		writeManagementError(w, &mgmtError{http.StatusGone, shapeGone, msgInvalidID})
		return
	}

	// 5. The call.
	h.serveConnection(w, r, requestID, id, body)
}

func (h *managementHandler) serveConnection(w http.ResponseWriter, r *http.Request, requestID, id string, body []byte) {
	var (
		info *Connection
		err  error
	)
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("wsroute: ConnectionManager panicked: %v", p)
			}
		}()
		switch r.Method {
		case http.MethodPost:
			err = h.cm.PostToConnection(r.Context(), id, body)
		case http.MethodGet:
			info, err = h.cm.GetConnection(r.Context(), id)
			if err == nil && info == nil {
				err = errors.New("wsroute: GetConnection returned neither a connection nor an error")
			}
		case http.MethodDelete:
			err = h.cm.DeleteConnection(r.Context(), id)
		}
	}()
	if err != nil {
		e := managerError(err)
		if e.status >= 500 {
			h.log.Error("wsroute: management API: ConnectionManager failed",
				"method", r.Method, "connectionId", id, "requestId", requestID, "error", err)
		}
		writeManagementError(w, e)
		return
	}
	switch r.Method {
	case http.MethodPost:
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		b, err := json.Marshal(info)
		if err != nil { // only with a zero-year time or worse; never from the router
			h.log.Error("wsroute: management API: encoding the connection", "connectionId", id, "error", err)
			writeManagementError(w, &mgmtError{http.StatusInternalServerError, shapeInternal, msgInternal})
			return
		}
		w.Header().Set(headerContentType, jsonContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
	case http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	}
}

// authenticateHeaders applies the one authentication method that decides r
// (see ManagementOptions). For SigV4 it returns the parsed signature, which
// still has to be verified against the body. On refusal it returns the
// response and the reason to log.
func (h *managementHandler) authenticateHeaders(r *http.Request) (*sigv4.Signature, *mgmtError, string) {
	if h.insecure {
		return nil, nil, ""
	}
	authz := r.Header.Values("Authorization")
	for _, a := range authz {
		if len(a) > maxAuthorizationHeader {
			return nil, &mgmtError{http.StatusForbidden, shapeForbidden, msgAuthTooLong}, "Authorization header too long"
		}
	}
	if h.sigv4 != nil {
		sig, err := h.sigv4.Parse(r)
		if err == nil {
			// An unknown key is refused before the body is read, as AWS
			// refuses it: access key IDs are identifiers, not secrets.
			if _, known := h.sigv4.Secret(sig.AccessKeyID); !known {
				return nil, &mgmtError{http.StatusForbidden, shapeForbidden, msgSigUnknownKey}, "unknown access key ID"
			}
			return sig, nil, ""
		}
		if !errors.Is(err, sigv4.ErrMissing) {
			return nil, h.sigv4Error(err), err.Error()
		}
	}
	if len(h.tokens) > 0 && len(authz) == 1 && len(authz[0]) >= len(authBearerPrefix) &&
		strings.EqualFold(authz[0][:len(authBearerPrefix)], authBearerPrefix) {
		sum := sha256.Sum256([]byte(strings.TrimSpace(authz[0][len(authBearerPrefix):])))
		match := 0
		for i := range h.tokens { // every token, so the time does not tell which matched
			match |= subtle.ConstantTimeCompare(sum[:], h.tokens[i][:])
		}
		if match == 1 {
			return nil, nil, ""
		}
		return nil, &mgmtError{http.StatusForbidden, shapeForbidden, msgBadToken}, "bearer token matches none configured"
	}
	if h.authenticate != nil {
		r2 := r.Clone(r.Context())
		r2.Body = http.NoBody
		r2.GetBody = nil
		r2.ContentLength = 0
		if err := h.authenticate(r2); err != nil {
			return nil, &mgmtError{http.StatusForbidden, shapeForbidden, msgForbidden}, "Authenticate: " + err.Error()
		}
		return nil, nil, ""
	}
	return nil, &mgmtError{http.StatusForbidden, shapeForbidden, msgMissingToken}, "no credentials in the request"
}

// sigv4Error is the response to a SigV4 verification error.
func (h *managementHandler) sigv4Error(err error) *mgmtError {
	msg := msgSigMismatch
	switch {
	case errors.Is(err, sigv4.ErrMalformed):
		msg = msgSigMalformed
	case errors.Is(err, sigv4.ErrExpired):
		msg = "Signature expired: X-Amz-Date (or a presigned URL's expiry) is outside the allowed clock skew of the server's time"
	case errors.Is(err, sigv4.ErrScope):
		msg = "Credential should be scoped to service 'execute-api'"
		if h.sigv4.Region != "" {
			msg += " and region '" + h.sigv4.Region + "'"
		}
	case errors.Is(err, sigv4.ErrUnsignedPayload):
		msg = msgSigUnsigned
	case errors.Is(err, sigv4.ErrPayloadHash):
		msg = msgSigPayloadHash
	}
	return &mgmtError{http.StatusForbidden, shapeForbidden, msg}
}

func (h *managementHandler) refuse(w http.ResponseWriter, r *http.Request, requestID string, e *mgmtError, reason string) {
	h.log.Info("wsroute: management API: request refused", "method", r.Method, "remoteAddr", r.RemoteAddr,
		"requestId", requestID, "reason", reason)
	// The body of a refused request is never read: close the connection
	// after the answer, so that the server does not read the body first to
	// keep it.
	w.Header().Set("Connection", "close")
	writeManagementError(w, e)
}

// readBody reads r's body, up to h.maxBody bytes. A larger body is refused
// without being read (http.MaxBytesReader also makes the server close the
// connection rather than drain it).
func (h *managementHandler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *mgmtError) {
	tooLarge := &mgmtError{http.StatusRequestEntityTooLarge, shapeTooLarge,
		msgTooLarge + ": the limit is " + strconv.FormatInt(h.maxBody, 10) + " bytes"}
	if r.ContentLength > h.maxBody {
		// Tell the server not to read the body to keep the connection.
		w.Header().Set("Connection", "close")
		return nil, tooLarge
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, &mgmtError{http.StatusBadRequest, shapeBadRequest, msgUnreadableBody}
	}
	return body, nil
}

// managerError maps an error of a ConnectionManager to a response.
func managerError(err error) *mgmtError {
	switch {
	case errors.Is(err, ErrGone):
		return &mgmtError{http.StatusGone, shapeGone, msgGone}
	case errors.Is(err, ErrLimitExceeded):
		return &mgmtError{http.StatusTooManyRequests, shapeLimit, msgLimitExceeded}
	case errors.Is(err, ErrPayloadTooLarge):
		return &mgmtError{http.StatusRequestEntityTooLarge, shapeTooLarge, msgTooLarge}
	case errors.Is(err, ErrAccessDenied):
		return &mgmtError{http.StatusForbidden, shapeForbidden, msgForbidden}
	case errors.Is(err, ErrBackplaneUnavailable):
		return &mgmtError{http.StatusServiceUnavailable, shapeUnavailable, msgUnavailable}
	case errors.Is(err, context.DeadlineExceeded):
		return &mgmtError{http.StatusGatewayTimeout, shapeTimeout, msgTimeout}
	case errors.Is(err, context.Canceled), errors.Is(err, ErrRouterClosed):
		return &mgmtError{http.StatusServiceUnavailable, shapeUnavailable, msgUnavailable}
	default:
		return &mgmtError{http.StatusInternalServerError, shapeInternal, msgInternal}
	}
}

// writeManagementError writes e as API Gateway does: the status, the
// x-amzn-ErrorType header, and {"message":"…"}.
func writeManagementError(w http.ResponseWriter, e *mgmtError) {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{e.message})
	hdr := w.Header()
	hdr.Set(headerErrorType, e.shape)
	hdr.Set(headerContentType, jsonContentType)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// parseManagementPath returns the connection ID of an escaped path that ends
// in "/@connections/{id}", whatever comes before; "@connections" may be
// percent-encoded, and id is percent-decoded. The ID is "" for a path ending
// in "/@connections/". ok is false for any other path.
func parseManagementPath(escaped string) (id string, ok bool) {
	i := strings.LastIndexByte(escaped, '/')
	if i < 0 {
		return "", false
	}
	rawID, rest := escaped[i+1:], escaped[:i]
	j := strings.LastIndexByte(rest, '/')
	if j < 0 {
		return "", false
	}
	if seg, err := url.PathUnescape(rest[j+1:]); err != nil || seg != connectionsSegment {
		return "", false
	}
	id, err := url.PathUnescape(rawID)
	if err != nil {
		return "", false
	}
	return id, true
}

// validConnectionID reports whether id could be a connection ID at all: 1 to
// 128 bytes of printable ASCII other than space. Anything else is answered
// 410 without asking the ConnectionManager.
func validConnectionID(id string) bool {
	if id == "" || len(id) > maxConnectionIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return false
		}
	}
	return true
}

// newManagementRequestID returns a random UUID (version 4) for
// x-amzn-RequestId.
func newManagementRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
