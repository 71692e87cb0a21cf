// Package sigv4 verifies AWS Signature Version 4 (AWS4-HMAC-SHA256) on
// incoming HTTP requests, as AWS services do, so that an unmodified AWS SDK
// can authenticate to a server of ours. It uses the standard library only.
//
// A request is verified in two steps, so that a server can refuse a request
// whose signature is malformed, out of date or for an unknown scope before it
// reads the body:
//
//	sig, err := v.Parse(r)             // the Authorization header or a presigned URL
//	body := …                          // read the body, bounded
//	err = v.Verify(r, sig, PayloadHash(body))
//
// When the client declared the payload hash in x-amz-content-sha256,
// [Signature.PayloadHash] holds it and [Verify] checks it against the hash
// passed in.
//
// A request without a body, such as a WebSocket upgrade, is verified with
// [Verifier.VerifyNoBody]; with [Verifier.AllowUnsignedPayload] set it also
// accepts the UNSIGNED-PAYLOAD that presigners sign.
//
// # The canonical request
//
// The canonical URI is the request path exactly as it came on the wire (the
// request-target, or [url.URL.EscapedPath] when the request has none), with
// every byte other than an unreserved character or "/" percent-encoded once
// more: "/prod/@connections/abc%3D" signs as "/prod/%40connections/abc%253D",
// and "/prod/%40connections/abc%3D" as "/prod/%2540connections/abc%253D". This
// is what the AWS SDKs compute for every service but S3, so both forms verify
// when each is signed as sent. The path is not normalized ("//", "." and ".."
// are signed as sent).
//
// The canonical query string is the query's parameters, each name and value
// percent-decoded ("+" is a plus sign) and encoded again with only unreserved
// characters left as they are, sorted by name and then value. The canonical
// headers are the headers named in SignedHeaders, which must be lower case and
// sorted; the values of a header sent several times are joined with ",", each
// trimmed and with runs of spaces made one. "host" is the request's Host.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Names and values of the protocol.
const (
	// Algorithm is the only signing algorithm accepted.
	Algorithm = "AWS4-HMAC-SHA256"

	// UnsignedPayload is the x-amz-content-sha256 value that leaves the body
	// out of the signature. It is refused (see [ErrUnsignedPayload]) unless
	// [Verifier.AllowUnsignedPayload] is set.
	UnsignedPayload = "UNSIGNED-PAYLOAD"

	// EmptyPayloadHash is the payload hash of an empty body.
	EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	// TimeFormat is the layout of X-Amz-Date.
	TimeFormat = "20060102T150405Z"

	// DefaultMaxSkew is the clock skew allowed when [Verifier.MaxSkew] is 0,
	// as AWS allows.
	DefaultMaxSkew = 5 * time.Minute

	// MaxPresignExpiry is the longest X-Amz-Expires of a presigned URL: 7 days.
	MaxPresignExpiry = 7 * 24 * time.Hour

	// MaxAuthorizationLength bounds the Authorization header and the
	// presigned query parameters; MaxSignedHeaders bounds SignedHeaders.
	MaxAuthorizationLength = 4096
	MaxSignedHeaders       = 64

	terminator      = "aws4_request"
	headerDate      = "X-Amz-Date"
	headerContent   = "X-Amz-Content-Sha256"
	querySignature  = "X-Amz-Signature"
	maxAccessKeyLen = 128
)

// Errors of [Verifier.Parse] and [Verifier.Verify]. Each returned error
// wraps exactly one of them (errors.Is); its text may add detail for logs,
// which a server should not send to the client.
var (
	// ErrMissing: the request carries no SigV4 signature at all.
	ErrMissing = errors.New("sigv4: request is not signed")
	// ErrMalformed: the Authorization header or presigned query is not
	// well-formed, or names another algorithm.
	ErrMalformed = errors.New("sigv4: malformed signature")
	// ErrExpired: the request's date is outside the allowed clock skew, or
	// the presigned URL has expired.
	ErrExpired = errors.New("sigv4: signature expired")
	// ErrScope: the credential scope names another service or region, or a
	// date other than the request's.
	ErrScope = errors.New("sigv4: credential scope does not match")
	// ErrUnsignedPayload: x-amz-content-sha256 says UNSIGNED-PAYLOAD or a
	// streaming payload; the body would not be covered by the signature.
	ErrUnsignedPayload = errors.New("sigv4: unsigned payload")
	// ErrSignature: the access key ID is unknown or the signature does not
	// match. The two are not told apart, so that key IDs cannot be probed.
	ErrSignature = errors.New("sigv4: signature does not match")
	// ErrPayloadHash: x-amz-content-sha256 does not match the body.
	ErrPayloadHash = errors.New("sigv4: payload hash does not match the body")
)

// Verifier checks SigV4 signatures. Its fields are read-only once it is in
// use; it is then safe for concurrent use.
type Verifier struct {
	// Service is the service name the credential scope must carry, e.g.
	// "execute-api". Required.
	Service string

	// Region, when not empty, is the only region accepted in the credential
	// scope. Empty accepts any region.
	Region string

	// MaxSkew is how far X-Amz-Date may be from now, either way. Zero means
	// DefaultMaxSkew.
	MaxSkew time.Duration

	// Secret returns the secret access key of an access key ID. Required.
	Secret func(accessKeyID string) (secret string, ok bool)

	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	// AllowUnsignedPayload accepts UNSIGNED-PAYLOAD as the payload hash, in
	// x-amz-content-sha256 or in place of the body's hash in the canonical
	// request, as presigners produce it. Set it only for requests that carry
	// no body, such as WebSocket upgrades (see [Verifier.VerifyNoBody]),
	// where it leaves nothing out of the signature.
	AllowUnsignedPayload bool
}

// Signature is a parsed, not yet verified, SigV4 signature.
type Signature struct {
	AccessKeyID string
	Date        time.Time // X-Amz-Date
	Region      string    // from the credential scope
	Presigned   bool      // from the query string, not the Authorization header

	// PayloadHash is the hex SHA-256 the client declared in
	// x-amz-content-sha256, or "" when it sent none and the hash of the body
	// is what was signed.
	PayloadHash string

	amzDate       string
	scope         string // date/region/service/aws4_request
	signedHeaders []string
	signature     []byte
}

// PayloadHash returns the lower-case hex SHA-256 of body.
func PayloadHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Parse reads the signature of r, from its Authorization header or, for a
// presigned URL, its query string, and checks everything that does not need
// the secret or the body: the form, the algorithm, the credential scope and
// the date. It returns ErrMissing when r carries no SigV4 signature.
func (v *Verifier) Parse(r *http.Request) (*Signature, error) {
	auths := r.Header.Values("Authorization")
	presigned := strings.Contains(r.URL.RawQuery, "X-Amz-") || strings.Contains(r.URL.RawQuery, "x-amz-")
	var q url.Values
	if presigned {
		var err error
		if q, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			return nil, malformed("query string: %v", err)
		}
		presigned = q.Has(querySignature) || q.Has("X-Amz-Algorithm")
	}
	switch {
	case len(auths) == 0 && !presigned:
		return nil, ErrMissing
	case len(auths) > 0 && presigned:
		return nil, malformed("both an Authorization header and a presigned query")
	case len(auths) > 1:
		return nil, malformed("more than one Authorization header")
	}
	var (
		s          *Signature
		credential string
		err        error
	)
	if presigned {
		s, credential, err = parseQuery(q)
	} else {
		s, credential, err = parseHeader(auths[0])
		if err == nil {
			dates := r.Header.Values(headerDate)
			if len(dates) != 1 {
				err = malformed("want one X-Amz-Date header, got %d", len(dates))
			} else {
				s.amzDate = dates[0]
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if err := v.checkCredential(s, credential); err != nil {
		return nil, err
	}
	if err := v.checkDate(s, q); err != nil {
		return nil, err
	}
	if !slices.Contains(s.signedHeaders, "host") {
		return nil, malformed("SignedHeaders must include host")
	}
	hs := r.Header.Values(headerContent)
	if presigned && len(hs) == 0 {
		hs = q[headerContent] // some presigners hoist it into the query
	}
	if len(hs) > 0 {
		switch h := hs[0]; {
		case len(hs) > 1:
			return nil, malformed("more than one X-Amz-Content-Sha256 header")
		case h == UnsignedPayload && v.AllowUnsignedPayload:
			s.PayloadHash = h
		case h == UnsignedPayload || strings.HasPrefix(h, "STREAMING-"):
			return nil, fmt.Errorf("%w: x-amz-content-sha256 is %s", ErrUnsignedPayload, h)
		case !isLowerHex(h, sha256.Size*2):
			return nil, malformed("x-amz-content-sha256 is not a lower-case hex SHA-256")
		default:
			s.PayloadHash = h
		}
	}
	return s, nil
}

// parseHeader parses "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…".
func parseHeader(h string) (*Signature, string, error) {
	if len(h) > MaxAuthorizationLength {
		return nil, "", malformed("Authorization header longer than %d bytes", MaxAuthorizationLength)
	}
	alg, rest, _ := strings.Cut(h, " ")
	if alg != Algorithm {
		if strings.HasPrefix(alg, "AWS4-") || strings.HasPrefix(alg, "AWS ") || alg == "AWS" {
			return nil, "", malformed("algorithm %q is not supported", truncate(alg, 32))
		}
		return nil, "", ErrMissing // another scheme (Bearer, Basic, …)
	}
	var credential, signedHeaders, signature string
	var seen int
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, "", malformed("Authorization component without '='")
		}
		var dst *string
		switch k {
		case "Credential":
			dst = &credential
		case "SignedHeaders":
			dst = &signedHeaders
		case "Signature":
			dst = &signature
		default:
			return nil, "", malformed("unknown Authorization component %q", truncate(k, 32))
		}
		if *dst != "" || v == "" {
			return nil, "", malformed("empty or repeated %s", k)
		}
		*dst = v
		seen++
	}
	if seen != 3 {
		return nil, "", malformed("Authorization needs Credential, SignedHeaders and Signature")
	}
	s, err := newSignature(signedHeaders, signature)
	return s, credential, err
}

// parseQuery reads the X-Amz-* parameters of a presigned URL.
func parseQuery(q url.Values) (*Signature, string, error) {
	get := func(name string) (string, error) {
		vs := q[name]
		if len(vs) != 1 || vs[0] == "" {
			return "", malformed("want one non-empty %s parameter", name)
		}
		if len(vs[0]) > MaxAuthorizationLength {
			return "", malformed("%s longer than %d bytes", name, MaxAuthorizationLength)
		}
		return vs[0], nil
	}
	var vals [5]string
	for i, name := range [...]string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", querySignature} {
		var err error
		if vals[i], err = get(name); err != nil {
			return nil, "", err
		}
	}
	if vals[0] != Algorithm {
		return nil, "", malformed("algorithm %q is not supported", truncate(vals[0], 32))
	}
	s, err := newSignature(vals[3], vals[4])
	if err != nil {
		return nil, "", err
	}
	s.Presigned = true
	s.amzDate = vals[2]
	return s, vals[1], nil
}

func newSignature(signedHeaders, signature string) (*Signature, error) {
	if !isLowerHex(signature, sha256.Size*2) {
		return nil, malformed("Signature is not 64 lower-case hex digits")
	}
	sig, _ := hex.DecodeString(signature)
	names := strings.Split(signedHeaders, ";")
	if len(names) > MaxSignedHeaders {
		return nil, malformed("more than %d signed headers", MaxSignedHeaders)
	}
	for i, n := range names {
		if n == "" || !isHeaderName(n) {
			return nil, malformed("SignedHeaders has an empty, upper-case or invalid name")
		}
		if i > 0 && names[i-1] >= n {
			return nil, malformed("SignedHeaders is not sorted, or repeats a name")
		}
	}
	return &Signature{signedHeaders: names, signature: sig}, nil
}

// checkCredential parses "AKID/20150830/us-east-1/service/aws4_request".
func (v *Verifier) checkCredential(s *Signature, credential string) error {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 {
		return malformed("Credential is not KEY/DATE/REGION/SERVICE/aws4_request")
	}
	key, date, region, service, term := parts[0], parts[1], parts[2], parts[3], parts[4]
	if key == "" || len(key) > maxAccessKeyLen || strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return malformed("invalid access key ID")
	}
	if len(date) != 8 || region == "" || term != terminator {
		return malformed("Credential is not KEY/DATE/REGION/SERVICE/aws4_request")
	}
	if service != v.Service {
		return fmt.Errorf("%w: service %q, want %q", ErrScope, truncate(service, 32), v.Service)
	}
	if v.Region != "" && region != v.Region {
		return fmt.Errorf("%w: region %q, want %q", ErrScope, truncate(region, 32), v.Region)
	}
	s.AccessKeyID = key
	s.Region = region
	s.scope = date + "/" + region + "/" + service + "/" + terminator
	return nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) checkDate(s *Signature, q url.Values) error {
	t, err := time.Parse(TimeFormat, s.amzDate)
	if err != nil || len(s.amzDate) != len(TimeFormat) {
		return malformed("X-Amz-Date is not in the form %s", TimeFormat)
	}
	if !strings.HasPrefix(s.scope, s.amzDate[:8]+"/") {
		return fmt.Errorf("%w: the credential's date is not X-Amz-Date's", ErrScope)
	}
	s.Date = t
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	now := v.now()
	if t.After(now.Add(skew)) {
		return fmt.Errorf("%w: X-Amz-Date %s is later than now (%s) plus %v", ErrExpired, s.amzDate, now.UTC().Format(TimeFormat), skew)
	}
	if !s.Presigned {
		if t.Before(now.Add(-skew)) {
			return fmt.Errorf("%w: X-Amz-Date %s is earlier than now (%s) minus %v", ErrExpired, s.amzDate, now.UTC().Format(TimeFormat), skew)
		}
		return nil
	}
	expires := q.Get("X-Amz-Expires")
	secs, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > MaxPresignExpiry || len(q["X-Amz-Expires"]) != 1 {
		return malformed("X-Amz-Expires must be one number of seconds from 1 to %d", int64(MaxPresignExpiry/time.Second))
	}
	if now.After(t.Add(time.Duration(secs) * time.Second)) {
		return fmt.Errorf("%w: the presigned URL expired at %s", ErrExpired, t.Add(time.Duration(secs)*time.Second).Format(TimeFormat))
	}
	return nil
}

// Verify checks the signature s that [Verifier.Parse] read from r.
// payloadHash is the lower-case hex SHA-256 of the body r carried (see
// [PayloadHash]). It returns ErrPayloadHash when the client declared another
// hash in x-amz-content-sha256, and ErrSignature when the access key ID is
// unknown or the signature is wrong; both take the same time.
func (v *Verifier) Verify(r *http.Request, s *Signature, payloadHash string) error {
	signed := payloadHash
	if s.PayloadHash != "" {
		signed = s.PayloadHash
	}
	secret, ok := v.Secret(s.AccessKeyID)
	if !ok {
		// Do the same work with a secret no one has, so that the time taken
		// does not tell whether the key ID exists.
		secret = "wsroute/sigv4: no such access key"
	}
	cr := CanonicalRequest(r, s.signedHeaders, signed, s.Presigned)
	want := sign(secret, s.scope, StringToSign(s.amzDate, s.scope, cr))
	if !hmac.Equal(want, s.signature) || !ok {
		return ErrSignature
	}
	if s.PayloadHash != "" && s.PayloadHash != UnsignedPayload && !hmac.Equal([]byte(s.PayloadHash), []byte(payloadHash)) {
		return ErrPayloadHash
	}
	return nil
}

// VerifyNoBody checks the signature s of r, a request without a body such as
// a WebSocket upgrade. The canonical request may end in the empty body's
// hash, which header signers use, or, when [Verifier.AllowUnsignedPayload]
// is set, in UNSIGNED-PAYLOAD, which presigners use; both verify.
func (v *Verifier) VerifyNoBody(r *http.Request, s *Signature) error {
	err := v.Verify(r, s, EmptyPayloadHash)
	if errors.Is(err, ErrSignature) && s.PayloadHash == "" && v.AllowUnsignedPayload {
		s2 := *s
		s2.PayloadHash = UnsignedPayload
		return v.Verify(r, &s2, EmptyPayloadHash)
	}
	return err
}

// SignsHeader reports whether the lower-case header name is one of the
// signed headers. A presigned URL's query is always signed.
func (s *Signature) SignsHeader(name string) bool {
	return slices.Contains(s.signedHeaders, name)
}

// CanonicalRequest returns the canonical request of r (see the package
// documentation) for the given signed headers and payload hash. When
// presigned is true, X-Amz-Signature is left out of the canonical query.
func CanonicalRequest(r *http.Request, signedHeaders []string, payloadHash string, presigned bool) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(CanonicalURI(r))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery, presigned))
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// StringToSign returns the string to sign for a canonical request.
func StringToSign(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// sign derives the signing key of secret for scope and signs stringToSign.
func sign(secret, scope, stringToSign string) []byte {
	date, rest, _ := strings.Cut(scope, "/")
	region, rest, _ := strings.Cut(rest, "/")
	service, _, _ := strings.Cut(rest, "/")
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, terminator)
	return hmacSHA256(k, stringToSign)
}

// CanonicalURI returns the canonical URI of r: its path as sent, encoded
// once more.
func CanonicalURI(r *http.Request) string {
	p := r.RequestURI
	if strings.HasPrefix(p, "/") {
		p, _, _ = strings.Cut(p, "?")
	} else {
		p = r.URL.EscapedPath()
	}
	if p == "" {
		return "/"
	}
	return encode(p, true)
}

func canonicalQuery(raw string, presigned bool) string {
	if raw == "" {
		return ""
	}
	type pair struct{ k, v string }
	var pairs []pair
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err1 := url.PathUnescape(k)
		dv, err2 := url.PathUnescape(v)
		if err1 != nil || err2 != nil {
			// Sign the bytes as sent; the signature will not match a
			// well-formed request's.
			dk, dv = k, v
		}
		if presigned && dk == querySignature {
			continue
		}
		pairs = append(pairs, pair{encode(dk, false), encode(dv, false)})
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

func canonicalHeaderValue(r *http.Request, name string) string {
	var values []string
	switch name {
	case "host":
		h := r.Host
		if h == "" {
			h = r.URL.Host
		}
		values = []string{h}
	default:
		values = r.Header.Values(name)
		if len(values) == 0 {
			for k, vs := range r.Header {
				if strings.EqualFold(k, name) {
					values = vs
					break
				}
			}
		}
		if len(values) == 0 && name == "content-length" && r.ContentLength >= 0 {
			values = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	}
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		space := false
		for _, c := range []byte(strings.Trim(v, " \t")) {
			if c == ' ' {
				if space {
					continue
				}
				space = true
			} else {
				space = false
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

// encode percent-encodes every byte of s but the unreserved characters
// A-Z a-z 0-9 - . _ ~ (and "/" when keepSlash), with upper-case hex.
func encode(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || (keepSlash && c == '/') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isHeaderName reports whether s is a lower-case HTTP token.
func isHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
