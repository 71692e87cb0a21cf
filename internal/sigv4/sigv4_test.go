package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"
)

// The credentials, scope and date of AWS's published SigV4 test suite.
const (
	suiteKeyID  = "AKIDEXAMPLE"
	suiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	suiteDate   = "20150830T123600Z"
	suiteHost   = "example.amazonaws.com"
	suiteScope  = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
)

var suiteTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

func suiteVerifier() *Verifier {
	return &Verifier{
		Service: "service",
		Secret: func(id string) (string, bool) {
			if id == suiteKeyID {
				return suiteSecret, true
			}
			return "", false
		},
		Now: func() time.Time { return suiteTime },
	}
}

type header struct{ name, value string }

// TestAWSTestSuite verifies requests of AWS's SigV4 test suite
// (aws-sig-v4-test-suite, service "service", region us-east-1) carrying the
// signatures AWS publishes for them.
func TestAWSTestSuite(t *testing.T) {
	tests := []struct {
		name          string
		method        string
		target        string // the request-target as sent
		headers       []header
		body          string
		signedHeaders string
		signature     string
	}{
		{"get-vanilla", "GET", "/", nil, "", "host;x-amz-date",
			"5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"post-vanilla", "POST", "/", nil, "", "host;x-amz-date",
			"5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{"get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", nil, "", "host;x-amz-date",
			"07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
		{"get-utf8", "GET", "/\u1234", nil, "", "host;x-amz-date",
			"8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
		{"get-vanilla-empty-query-key", "GET", "/?Param1=value1", nil, "", "host;x-amz-date",
			"a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
		{"get-vanilla-query-order-key-case", "GET", "/?Param2=value2&Param1=value1", nil, "", "host;x-amz-date",
			"b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"get-vanilla-query-order-value", "GET", "/?Param1=value2&Param1=value1", nil, "", "host;x-amz-date",
			"5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
		{"get-vanilla-utf8-query", "GET", "/?%E1%88%B4=bar", nil, "", "host;x-amz-date",
			"2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
		{"get-header-value-order", "GET", "/",
			[]header{{"My-Header1", "value4"}, {"My-Header1", "value1"}, {"My-Header1", "value3"}, {"My-Header1", "value2"}},
			"", "host;my-header1;x-amz-date",
			"08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
		{"get-header-key-duplicate", "GET", "/",
			[]header{{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
			"", "host;my-header1;x-amz-date",
			"c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
		{"get-header-value-trim", "GET", "/",
			[]header{{"My-Header1", " value1"}, {"My-Header2", `"a   b   c"`}},
			"", "host;my-header1;my-header2;x-amz-date",
			"acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
		{"post-x-www-form-urlencoded", "POST", "/",
			[]header{{"Content-Type", "application/x-www-form-urlencoded"}},
			"Param1=value1", "content-type;host;x-amz-date",
			"ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
		{"get-vanilla-with-session-token", "GET", "/",
			[]header{{"X-Amz-Security-Token", "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"}},
			"", "host;x-amz-date;x-amz-security-token",
			"07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"},
	}
	v := suiteVerifier()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			r.Host = suiteHost
			for _, h := range tt.headers {
				r.Header.Add(h.name, h.value)
			}
			r.Header.Set("X-Amz-Date", suiteDate)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+suiteScope+
				", SignedHeaders="+tt.signedHeaders+", Signature="+tt.signature)
			sig, err := v.Parse(r)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := v.Verify(r, sig, PayloadHash([]byte(tt.body))); err != nil {
				t.Fatalf("Verify: %v\ncanonical request:\n%s", err,
					CanonicalRequest(r, sig.signedHeaders, PayloadHash([]byte(tt.body)), false))
			}
			// The same request with the last signature digit changed fails.
			last := tt.signature[len(tt.signature)-1]
			bad := tt.signature[:len(tt.signature)-1] + string("01"[(last-'0'+1)%2])
			if last != '0' && last != '1' {
				bad = tt.signature[:len(tt.signature)-1] + "0"
			}
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+suiteScope+
				", SignedHeaders="+tt.signedHeaders+", Signature="+bad)
			sig, err = v.Parse(r)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := v.Verify(r, sig, PayloadHash([]byte(tt.body))); !errors.Is(err, ErrSignature) {
				t.Fatalf("Verify with a changed signature: %v, want ErrSignature", err)
			}
		})
	}
}

// TestAWSTestSuiteIntermediates checks the canonical request and the string
// to sign of get-vanilla against the published ones.
func TestAWSTestSuiteIntermediates(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = suiteHost
	r.Header.Set("X-Amz-Date", suiteDate)
	cr := CanonicalRequest(r, []string{"host", "x-amz-date"}, EmptyPayloadHash, false)
	want := "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" + EmptyPayloadHash
	if cr != want {
		t.Fatalf("canonical request\n%q\nwant\n%q", cr, want)
	}
	sts := StringToSign(suiteDate, "20150830/us-east-1/service/aws4_request", cr)
	wantSTS := "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n" +
		"bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
	if sts != wantSTS {
		t.Fatalf("string to sign\n%q\nwant\n%q", sts, wantSTS)
	}
	if PayloadHash(nil) != EmptyPayloadHash {
		t.Fatal("PayloadHash(nil) is not the empty payload hash")
	}
}

// TestAWSPresignedSuite verifies the presigned (query-string) form of
// get-vanilla as the test suite publishes it.
func TestAWSPresignedSuite(t *testing.T) {
	const q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request" +
		"&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
	v := suiteVerifier()
	r := httptest.NewRequest("GET", "/?"+q+"&X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d", nil)
	r.Host = suiteHost
	sig, err := v.Parse(r)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !sig.Presigned {
		t.Fatal("not seen as presigned")
	}
	if err := v.Verify(r, sig, EmptyPayloadHash); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	// Past X-Amz-Expires it has expired.
	late := *v
	late.Now = func() time.Time { return suiteTime.Add(time.Hour + time.Second) }
	if _, err := late.Parse(r); !errors.Is(err, ErrExpired) {
		t.Fatalf("Parse an hour later: %v, want ErrExpired", err)
	}
	// Before X-Amz-Date minus the skew it is not valid yet.
	early := *v
	early.Now = func() time.Time { return suiteTime.Add(-6 * time.Minute) }
	if _, err := early.Parse(r); !errors.Is(err, ErrExpired) {
		t.Fatalf("Parse 6 minutes early: %v, want ErrExpired", err)
	}
	// A changed parameter breaks the signature.
	r2 := httptest.NewRequest("GET", "/?"+strings.Replace(q, "Expires=3600", "Expires=3601", 1)+
		"&X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d", nil)
	r2.Host = suiteHost
	if sig, err = v.Parse(r2); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := v.Verify(r2, sig, EmptyPayloadHash); !errors.Is(err, ErrSignature) {
		t.Fatalf("Verify with X-Amz-Expires changed: %v, want ErrSignature", err)
	}
	// Expiry over 7 days is refused.
	r3 := httptest.NewRequest("GET", "/?"+strings.Replace(q, "Expires=3600", "Expires=604801", 1)+
		"&X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d", nil)
	if _, err := v.Parse(r3); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Parse with X-Amz-Expires over 7 days: %v, want ErrMalformed", err)
	}
}

// refRequest is a request for refSign: its canonical URI and query are
// written out by hand in each test, so that the signatures below do not come
// from the code under test.
type refRequest struct {
	method, canonicalURI, canonicalQuery string
	headers                              map[string]string // lower-case name → canonical value
	payloadHash                          string
	keyID, secret, date, region, service string
}

// refSign computes a SigV4 Authorization header the long way, straight from
// AWS's description of the algorithm.
func refSign(rq refRequest) string {
	names := make([]string, 0, len(rq.headers))
	for n := range rq.headers {
		names = append(names, n)
	}
	sort.Strings(names)
	canon := rq.method + "\n" + rq.canonicalURI + "\n" + rq.canonicalQuery + "\n"
	for _, n := range names {
		canon += n + ":" + rq.headers[n] + "\n"
	}
	canon += "\n" + strings.Join(names, ";") + "\n" + rq.payloadHash
	day := rq.date[:8]
	scope := day + "/" + rq.region + "/" + rq.service + "/aws4_request"
	h := sha256.Sum256([]byte(canon))
	sts := "AWS4-HMAC-SHA256\n" + rq.date + "\n" + scope + "\n" + hex.EncodeToString(h[:])
	mac := func(key []byte, s string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	key := mac(mac(mac(mac([]byte("AWS4"+rq.secret), day), rq.region), rq.service), "aws4_request")
	return "AWS4-HMAC-SHA256 Credential=" + rq.keyID + "/" + scope + ", SignedHeaders=" +
		strings.Join(names, ";") + ", Signature=" + hex.EncodeToString(mac(key, sts))
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

const (
	testKeyID  = "AKIAWSROUTETEST00001"
	testSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"
	testHost   = "127.0.0.1:8080"
)

var testNow = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func testVerifier() *Verifier {
	return &Verifier{
		Service: "execute-api",
		Secret: func(id string) (string, bool) {
			if id == testKeyID {
				return testSecret, true
			}
			return "", false
		},
		Now: func() time.Time { return testNow },
	}
}

// managementRequest is a signed PostToConnection as an SDK sends it.
type managementRequest struct {
	method, target, body string
	headers              map[string]string // sent; all of them are signed
	signed               refRequest
}

func newManagementRequest(target, canonicalURI, body string) managementRequest {
	date := testNow.Format(TimeFormat)
	h := map[string]string{"host": testHost, "x-amz-date": date, "content-type": "application/octet-stream"}
	return managementRequest{
		method: "POST", target: target, body: body,
		headers: map[string]string{"X-Amz-Date": date, "Content-Type": "application/octet-stream"},
		signed: refRequest{
			method: "POST", canonicalURI: canonicalURI, headers: h, payloadHash: sha(body),
			keyID: testKeyID, secret: testSecret, date: date, region: "eu-west-1", service: "execute-api",
		},
	}
}

func (m managementRequest) build() *http.Request {
	r := httptest.NewRequest(m.method, m.target, strings.NewReader(m.body))
	r.Host = testHost
	for k, v := range m.headers {
		r.Header.Set(k, v)
	}
	r.Header.Set("Authorization", refSign(m.signed))
	return r
}

func verify(v *Verifier, r *http.Request, body string) error {
	sig, err := v.Parse(r)
	if err != nil {
		return err
	}
	return v.Verify(r, sig, PayloadHash([]byte(body)))
}

// TestPathForms checks that the canonical URI is the path as sent, encoded
// once more, for the forms the SDKs and other clients send.
func TestPathForms(t *testing.T) {
	tests := []struct {
		name, target, canonical string
	}{
		{"raw @ and %3D (boto3, JS v3, Go v2)", "/prod/@connections/L0SM9cOFvHcCIhw%3D", "/prod/%40connections/L0SM9cOFvHcCIhw%253D"},
		{"%40 and %3D (awscurl)", "/prod/%40connections/L0SM9cOFvHcCIhw%3D", "/prod/%2540connections/L0SM9cOFvHcCIhw%253D"},
		{"raw =", "/prod/@connections/L0SM9cOFvHcCIhw=", "/prod/%40connections/L0SM9cOFvHcCIhw%3D"},
		{"no stage", "/@connections/L0SM9cOFvHcCIhw%3D", "/%40connections/L0SM9cOFvHcCIhw%253D"},
		{"nested stage", "/v1/a/@connections/abc", "/v1/a/%40connections/abc"},
		{"encoded slash stays in its segment", "/a%2Fb/@connections/x", "/a%252Fb/%40connections/x"},
	}
	v := testVerifier()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newManagementRequest(tt.target, tt.canonical, "hello")
			r := m.build()
			if got := CanonicalURI(r); got != tt.canonical {
				t.Fatalf("CanonicalURI = %q, want %q", got, tt.canonical)
			}
			if err := verify(v, r, m.body); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
	// A client-side request (no RequestURI) uses the URL's escaped path.
	r, _ := http.NewRequest("GET", "http://h/prod/%40connections/a%3D", nil)
	if got, want := CanonicalURI(r), "/prod/%2540connections/a%253D"; got != want {
		t.Fatalf("CanonicalURI of a client request = %q, want %q", got, want)
	}
	r, _ = http.NewRequest("GET", "http://h", nil)
	if got := CanonicalURI(r); got != "/" {
		t.Fatalf("CanonicalURI of an empty path = %q, want /", got)
	}
}

// TestTampering signs a request, changes one thing, and checks the verdict.
func TestTampering(t *testing.T) {
	const target, canonical = "/prod/@connections/L0SM9cOFvHcCIhw%3D", "/prod/%40connections/L0SM9cOFvHcCIhw%253D"
	tests := []struct {
		name   string
		change func(m *managementRequest, v *Verifier) // before signing and building
		after  func(r *http.Request)                   // after building
		body   string                                  // the body the server hashes, when not m.body
		want   error
	}{
		{name: "untouched", want: nil},
		{name: "changed body", body: "hellO", want: ErrSignature},
		{name: "changed signed header", after: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, want: ErrSignature},
		{name: "added unsigned header", after: func(r *http.Request) { r.Header.Set("X-Other", "1") }, want: nil},
		{name: "changed host", after: func(r *http.Request) { r.Host = "127.0.0.1:8081" }, want: ErrSignature},
		{name: "changed method", after: func(r *http.Request) { r.Method = "DELETE" }, want: ErrSignature},
		{name: "changed path", after: func(r *http.Request) {
			r.RequestURI = "/prod/@connections/AAAAAAAAAAAAAAA%3D"
		}, want: ErrSignature},
		{name: "@ signed, %40 sent", after: func(r *http.Request) {
			r.RequestURI = "/prod/%40connections/L0SM9cOFvHcCIhw%3D"
		}, want: ErrSignature},
		{name: "added query", after: func(r *http.Request) { r.URL.RawQuery = "a=b" }, want: ErrSignature},
		{name: "changed date, same day", after: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", testNow.Add(time.Second).Format(TimeFormat))
		}, want: ErrSignature},
		{name: "wrong secret", change: func(m *managementRequest, _ *Verifier) { m.signed.secret = "not-the-secret" }, want: ErrSignature},
		{name: "unknown key", change: func(m *managementRequest, _ *Verifier) { m.signed.keyID = "AKIAUNKNOWN" }, want: ErrSignature},
		{name: "expired date", change: func(m *managementRequest, _ *Verifier) {
			d := testNow.Add(-5*time.Minute - time.Second).Format(TimeFormat)
			m.headers["X-Amz-Date"], m.signed.headers["x-amz-date"], m.signed.date = d, d, d
		}, want: ErrExpired},
		{name: "date at the edge of the window", change: func(m *managementRequest, _ *Verifier) {
			d := testNow.Add(-5 * time.Minute).Format(TimeFormat)
			m.headers["X-Amz-Date"], m.signed.headers["x-amz-date"], m.signed.date = d, d, d
		}, want: nil},
		{name: "future date", change: func(m *managementRequest, _ *Verifier) {
			d := testNow.Add(6 * time.Minute).Format(TimeFormat)
			m.headers["X-Amz-Date"], m.signed.headers["x-amz-date"], m.signed.date = d, d, d
		}, want: ErrExpired},
		{name: "custom skew", change: func(m *managementRequest, v *Verifier) {
			v.MaxSkew = time.Minute
			d := testNow.Add(-2 * time.Minute).Format(TimeFormat)
			m.headers["X-Amz-Date"], m.signed.headers["x-amz-date"], m.signed.date = d, d, d
		}, want: ErrExpired},
		{name: "scope date differs from X-Amz-Date", after: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", testNow.Add(24*time.Hour).Format(TimeFormat))
		}, want: ErrScope},
		{name: "other service", change: func(m *managementRequest, _ *Verifier) { m.signed.service = "s3" }, want: ErrScope},
		{name: "any region by default", change: func(m *managementRequest, _ *Verifier) { m.signed.region = "local" }, want: nil},
		{name: "configured region", change: func(m *managementRequest, v *Verifier) { v.Region = "us-east-1" }, want: ErrScope},
		{name: "declared payload hash", change: func(m *managementRequest, _ *Verifier) {
			m.headers["X-Amz-Content-Sha256"] = sha(m.body)
			m.signed.headers["x-amz-content-sha256"] = sha(m.body)
		}, want: nil},
		{name: "declared payload hash, other body", change: func(m *managementRequest, _ *Verifier) {
			m.headers["X-Amz-Content-Sha256"] = sha(m.body)
			m.signed.headers["x-amz-content-sha256"] = sha(m.body)
		}, body: "other", want: ErrPayloadHash},
		{name: "declared payload hash, changed after signing", change: func(m *managementRequest, _ *Verifier) {
			m.headers["X-Amz-Content-Sha256"] = sha(m.body)
			m.signed.headers["x-amz-content-sha256"] = sha(m.body)
		}, after: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", sha("other")) }, body: "other", want: ErrSignature},
		{name: "unsigned payload", change: func(m *managementRequest, _ *Verifier) {
			m.headers["X-Amz-Content-Sha256"] = UnsignedPayload
			m.signed.headers["x-amz-content-sha256"] = UnsignedPayload
			m.signed.payloadHash = UnsignedPayload
		}, want: ErrUnsignedPayload},
		{name: "streaming payload", change: func(m *managementRequest, _ *Verifier) {
			m.headers["X-Amz-Content-Sha256"] = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
		}, want: ErrUnsignedPayload},
		{name: "payload hash not hex", change: func(m *managementRequest, _ *Verifier) {
			m.headers["X-Amz-Content-Sha256"] = strings.ToUpper(sha(m.body))
		}, want: ErrMalformed},
		{name: "host not signed", change: func(m *managementRequest, _ *Verifier) { delete(m.signed.headers, "host") }, want: ErrMalformed},
		{name: "no X-Amz-Date", after: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, want: ErrMalformed},
		{name: "bad X-Amz-Date", after: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2026-03-01T10:00:00Z") }, want: ErrMalformed},
		{name: "no Authorization", after: func(r *http.Request) { r.Header.Del("Authorization") }, want: ErrMissing},
		{name: "bearer token", after: func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, want: ErrMissing},
		{name: "other AWS algorithm", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1))
		}, want: ErrMalformed},
		{name: "two Authorization headers", after: func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) }, want: ErrMalformed},
		{name: "upper-case signature", after: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			i := strings.Index(a, "Signature=") + len("Signature=")
			r.Header.Set("Authorization", a[:i]+strings.ToUpper(a[i:]))
		}, want: ErrMalformed},
		{name: "short signature", after: func(r *http.Request) { r.Header.Set("Authorization", r.Header.Get("Authorization")[:200]) }, want: ErrMalformed},
		{name: "unsorted SignedHeaders", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "content-type;host", "host;content-type", 1))
		}, want: ErrMalformed},
		{name: "missing component", after: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:strings.Index(a, ", Signature=")])
		}, want: ErrMalformed},
		{name: "unknown component", after: func(r *http.Request) { r.Header.Set("Authorization", r.Header.Get("Authorization")+", Extra=1") }, want: ErrMalformed},
		{name: "bad credential", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/aws4_request", "/aws5_request", 1))
		}, want: ErrMalformed},
		{name: "huge header", after: func(r *http.Request) {
			r.Header.Set("Authorization", r.Header.Get("Authorization")+strings.Repeat(" ", MaxAuthorizationLength))
		}, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testVerifier()
			m := newManagementRequest(target, canonical, "hello")
			if tt.change != nil {
				tt.change(&m, v)
			}
			r := m.build()
			if tt.after != nil {
				tt.after(r)
			}
			body := m.body
			if tt.body != "" {
				body = tt.body
			}
			err := verify(v, r, body)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestUnknownKeyTakesTheSamePath checks that an unknown key ID and a wrong
// secret are refused with the same error, whatever else is right.
func TestUnknownKeyTakesTheSamePath(t *testing.T) {
	v := testVerifier()
	for _, id := range []string{testKeyID, "AKIAUNKNOWN"} {
		m := newManagementRequest("/@connections/a", "/%40connections/a", "")
		m.signed.keyID = id
		m.signed.secret = "wrong"
		if err := verify(v, m.build(), ""); !errors.Is(err, ErrSignature) || err.Error() != ErrSignature.Error() {
			t.Fatalf("key %s: %v, want exactly ErrSignature", id, err)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", ""},
		{"b&a=1", "a=1&b="},
		{"a=10&a=9", "a=10&a=9"},
		{"x=a.b&x=a%2Fb", "x=a%2Fb&x=a.b"},
		{"q=a+b", "q=a%2Bb"},
		{"q=a%20b", "q=a%20b"},
		{"a=1=2", "a=1%3D2"},
		{"&&a=1&", "a=1"},
	}
	for _, tt := range tests {
		if got := canonicalQuery(tt.raw, false); got != tt.want {
			t.Errorf("canonicalQuery(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
	if got := canonicalQuery("a=1&X-Amz-Signature=00", true); got != "a=1" {
		t.Errorf("presigned canonicalQuery kept the signature: %q", got)
	}
}
