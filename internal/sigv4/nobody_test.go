package sigv4

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

// presign returns the query of a presigned GET of /ws, signed the long way
// with payloadHash as the canonical request's last line. extra is a
// canonical query parameter signed with the rest ("" for none).
func presign(payloadHash, extra string) string {
	date := testNow.Format(TimeFormat)
	q := "X-Amz-Algorithm=AWS4-HMAC-SHA256&"
	if extra != "" {
		q += extra + "&" // sorts between Algorithm and Credential
	}
	q += "X-Amz-Credential=" + testKeyID + "%2F" + date[:8] + "%2Feu-west-1%2Fexecute-api%2Faws4_request"
	q += "&X-Amz-Date=" + date + "&X-Amz-Expires=60&X-Amz-SignedHeaders=host"
	h := refSign(refRequest{
		method: "GET", canonicalURI: "/ws", canonicalQuery: q, headers: map[string]string{"host": testHost},
		payloadHash: payloadHash, keyID: testKeyID, secret: testSecret, date: date, region: "eu-west-1", service: "execute-api",
	})
	_, sig, _ := strings.Cut(h, "Signature=")
	return q + "&X-Amz-Signature=" + sig
}

func TestVerifyNoBody(t *testing.T) {
	strict := testVerifier()
	upgrades := testVerifier()
	upgrades.AllowUnsignedPayload = true
	tests := []struct {
		name          string
		query         string
		header        map[string]string
		strict, loose error // VerifyNoBody's result without and with AllowUnsignedPayload
	}{
		{"presigned, empty body's hash", presign(EmptyPayloadHash, ""), nil, nil, nil},
		{"presigned, UNSIGNED-PAYLOAD", presign(UnsignedPayload, ""), nil, ErrSignature, nil},
		{"presigned, UNSIGNED-PAYLOAD hoisted into the query",
			presign(UnsignedPayload, "X-Amz-Content-Sha256=UNSIGNED-PAYLOAD"), nil, ErrUnsignedPayload, nil},
		{"presigned, another payload's hash", presign(sha("x"), ""), nil, ErrSignature, ErrSignature},
		{"presigned, a declared hash of another payload",
			presign(sha("x"), "X-Amz-Content-Sha256="+sha("x")), nil, ErrPayloadHash, ErrPayloadHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				v    *Verifier
				want error
			}{{strict, tt.strict}, {upgrades, tt.loose}} {
				r := httptest.NewRequest("GET", "/ws?"+tt.query, nil)
				r.Host = testHost
				sig, err := c.v.Parse(r)
				if err == nil {
					err = c.v.VerifyNoBody(r, sig)
				}
				if !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
					t.Errorf("AllowUnsignedPayload=%v: got %v, want %v", c.v.AllowUnsignedPayload, err, c.want)
				}
			}
		})
	}
}

// TestHeaderSignedUpgradeWithUnsignedPayload: a header-signed GET that
// declares UNSIGNED-PAYLOAD verifies only where unsigned payloads are allowed.
func TestHeaderSignedUpgradeWithUnsignedPayload(t *testing.T) {
	date := testNow.Format(TimeFormat)
	r := httptest.NewRequest("GET", "/ws", nil)
	r.Host = testHost
	r.Header.Set("X-Amz-Date", date)
	r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
	r.Header.Set("Authorization", refSign(refRequest{
		method: "GET", canonicalURI: "/ws",
		headers:     map[string]string{"host": testHost, "x-amz-date": date, "x-amz-content-sha256": UnsignedPayload},
		payloadHash: UnsignedPayload, keyID: testKeyID, secret: testSecret, date: date, region: "eu-west-1", service: "execute-api",
	}))
	if _, err := testVerifier().Parse(r); !errors.Is(err, ErrUnsignedPayload) {
		t.Fatalf("strict Parse: %v, want ErrUnsignedPayload", err)
	}
	v := testVerifier()
	v.AllowUnsignedPayload = true
	sig, err := v.Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyNoBody(r, sig); err != nil {
		t.Fatalf("VerifyNoBody: %v", err)
	}
	if !sig.SignsHeader("x-amz-content-sha256") || sig.SignsHeader("x-amz-security-token") {
		t.Error("SignsHeader disagrees with SignedHeaders")
	}
}
