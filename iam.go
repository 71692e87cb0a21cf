package wsroute

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wsroute/wsroute/internal/sigv4"
)

// IAMAuth turns on AWS_IAM authorization of $connect (see [Options.IAM]):
// every upgrade request must carry a valid AWS Signature Version 4 for
// service "execute-api", in its query string (a presigned URL, which is what
// browsers and Amplify-style clients can send) or in its headers. The
// signature is verified by the same verifier as the management API's, with
// the same rules: the canonical request of the upgrade's GET, with the empty
// body's hash or, as presigners sign it, UNSIGNED-PAYLOAD; X-Amz-Date within
// MaxClockSkew of the server's clock; a presigned URL until its X-Amz-Expires
// (at most 7 days; it is required) has passed.
//
// Refusals answer as API Gateway's gateway responses do, with status 403, a
// JSON body and x-amzn-ErrorType (see the README's "AWS_IAM" section);
// $connect does not run.
//
// On success, requestContext.identity of every event of the connection
// carries the caller's accessKey and the fields of its [IAMCredential].
type IAMAuth struct {
	// Credentials are the callers' access keys: access key ID →
	// credential. New copies the map.
	Credentials map[string]IAMCredential

	// Lookup, when set, finds the credentials Credentials does not hold (a
	// database, an identity broker): it returns nil and no error for an
	// unknown key, which is refused as a wrong signature is; an error
	// refuses the request with 500. It runs on the request's goroutine,
	// must be safe for concurrent use, and is called for every signed
	// upgrade whose key Credentials lacks, before the signature is checked.
	Lookup func(ctx context.Context, accessKeyID string) (*IAMCredential, error)

	// Region, when not empty, is the only region accepted in the credential
	// scope, as an API in that region accepts; it is also the region of the
	// route ARN. Default: any region; the ARN then carries the signature's.
	Region string

	// AccountID is the account that owns the API, in the route ARN the
	// policies see: arn:aws:execute-api:{region}:{AccountID}:{apiId}/{stage}/$connect.
	// Default "000000000000".
	AccountID string

	// MaxClockSkew is how far X-Amz-Date may be from the server's clock,
	// either way. Default 5 minutes, as AWS. A header-signed upgrade can be
	// replayed within this window and a presigned URL until it expires: use
	// TLS, and short expiries.
	MaxClockSkew time.Duration

	// Authorize, when set, decides whether the verified caller may connect,
	// as API Gateway's IAM policy evaluation does, after the credential's
	// own Policy allowed it: it returns nil to allow, an error wrapping
	// [ErrAccessDenied] to refuse with 403, and any other error to refuse
	// with 500. resourceARN is the ARN of the $connect route. It runs on the
	// request's goroutine and must be safe for concurrent use.
	Authorize func(ctx context.Context, caller *IAMCaller, resourceARN string) error

	// Now returns the current time, for the clock checks. Nil means
	// time.Now; tests set it to move a presigned URL past its expiry.
	Now func() time.Time
}

// IAMCredential is one caller's access key and who it is. The identity
// fields appear, when set, in requestContext.identity of every event of a
// connection signed with the key, under API Gateway's names (accountId,
// caller, user, userArn, …).
type IAMCredential struct {
	// SecretAccessKey signs the caller's requests. Required.
	SecretAccessKey string

	// SessionToken, when set, marks temporary credentials (STS, Cognito
	// identity pools): the request must carry the same X-Amz-Security-Token,
	// signed. A request that carries a token for a credential without one
	// is refused.
	SessionToken string

	AccountID                     string
	Caller                        string
	User                          string
	UserARN                       string
	PrincipalOrgID                string
	CognitoIdentityID             string
	CognitoIdentityPoolID         string
	CognitoAuthenticationType     string
	CognitoAuthenticationProvider string

	// Policy, when set, is the caller's identity-based policy: it must allow
	// execute-api:Invoke on the $connect route's ARN (see [Policy.Evaluate]),
	// or the upgrade is refused with 403; and on the ARN of each message's
	// route (…/{stage}/{routeKey}, $default when no custom route matches),
	// or that message gets the Forbidden frame and reaches no route, as in
	// AWS's example policy that denies one route. Nil means the credential
	// alone suffices.
	Policy *Policy
}

// IAMCaller is a verified caller, as [IAMAuth.Authorize] sees it.
type IAMCaller struct {
	AccessKeyID string
	Region      string // of the signature's credential scope
	Credential  *IAMCredential

	arn string // of the $connect route
}

// who names the caller in IAM's refusals: its user ARN, else its key.
func (c *IAMCaller) who() string {
	if c.Credential.UserARN != "" {
		return c.Credential.UserARN
	}
	return c.AccessKeyID
}

const (
	defaultIAMAccountID = "000000000000"
	actionInvoke        = "execute-api:Invoke"
	headerSecurityToken = "X-Amz-Security-Token"
)

// The refusals of IAM-authorized upgrades: API Gateway's gateway responses
// (MISSING_AUTHENTICATION_TOKEN, INVALID_SIGNATURE, EXPIRED_TOKEN,
// ACCESS_DENIED), their bodies and error types.
const (
	iamMsgMissing   = "Missing Authentication Token"
	iamMsgSignature = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	iamMsgMalformed     = "Authorization header or presigned URL is not a well-formed AWS4-HMAC-SHA256 signature."
	iamMsgExpired       = "Signature expired: X-Amz-Date is outside the allowed clock skew, or the presigned URL has expired."
	iamMsgService       = "Credential should be scoped to correct service: 'execute-api'. "
	iamMsgRegion        = "Credential should be scoped to a valid region. "
	iamMsgUnsigned      = "The request carries a payload hash that does not match its empty body."
	iamMsgToken         = "The security token included in the request is invalid."
	iamTypeMissing      = "MissingAuthenticationTokenException"
	iamTypeSignature    = "InvalidSignatureException"
	iamTypeIncomplete   = "IncompleteSignatureException"
	iamTypeExpired      = "InvalidSignatureException"
	iamTypeUnrecognized = "UnrecognizedClientException"
	iamTypeDenied       = "AccessDeniedException"
)

// iamAuth is the immutable form of an IAMAuth that New builds.
type iamAuth struct {
	creds     map[string]IAMCredential
	lookup    func(context.Context, string) (*IAMCredential, error)
	verifier  sigv4.Verifier // Secret is set per request
	region    string
	accountID string
	authorize func(context.Context, *IAMCaller, string) error
}

func newIAMAuth(o *IAMAuth) (*iamAuth, error) {
	if len(o.Credentials) == 0 && o.Lookup == nil {
		return nil, errors.New("wsroute: Options.IAM needs Credentials or Lookup")
	}
	if o.MaxClockSkew < 0 {
		return nil, errors.New("wsroute: negative IAMAuth.MaxClockSkew")
	}
	a := &iamAuth{
		creds:     make(map[string]IAMCredential, len(o.Credentials)),
		lookup:    o.Lookup,
		region:    o.Region,
		accountID: o.AccountID,
		authorize: o.Authorize,
		verifier: sigv4.Verifier{
			Service:              "execute-api",
			Region:               o.Region,
			MaxSkew:              o.MaxClockSkew,
			Now:                  o.Now,
			AllowUnsignedPayload: true, // an upgrade has no body
		},
	}
	if a.accountID == "" {
		a.accountID = defaultIAMAccountID
	}
	for id, c := range o.Credentials {
		if id == "" || len(id) > 128 || strings.ContainsAny(id, "/ \t\r\n") || c.SecretAccessKey == "" {
			return nil, fmt.Errorf("wsroute: IAMAuth.Credentials: invalid credential %q: the access key ID must be "+
				"1 to 128 bytes without '/' or spaces, and the secret must not be empty", id)
		}
		a.creds[id] = c
	}
	return a, nil
}

// iamRefusal is how an IAM-authorized upgrade is refused.
type iamRefusal struct {
	status    int
	errorType string
	key       string // "message", or "Message" for IAM's policy denials
	message   string
}

func (e *iamRefusal) write(w http.ResponseWriter) {
	w.Header().Set(headerErrorType, e.errorType)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	fmt.Fprintf(w, `{%q:%q}`, e.key, e.message)
}

func iamRefused(status int, errorType, message string) *iamRefusal {
	return &iamRefusal{status: status, errorType: errorType, key: "message", message: message}
}

// check verifies the upgrade request's signature and the caller's
// permission to invoke route. It returns the verified credential, or the
// refusal and the reason to log.
func (a *iamAuth) check(req *http.Request, apiID, stage, route string) (*IAMCaller, *iamRefusal, string) {
	v := a.verifier // a copy: Secret is this request's
	sig, err := v.Parse(req)
	if err != nil {
		return nil, a.sigv4Refusal(err), err.Error()
	}
	cred, known := a.creds[sig.AccessKeyID]
	credp := &cred
	if !known && a.lookup != nil {
		c, err := a.lookup(req.Context(), sig.AccessKeyID)
		if err != nil {
			return nil, iamRefused(http.StatusInternalServerError, "InternalServerErrorException", "Internal server error"),
				"IAMAuth.Lookup: " + err.Error()
		}
		if c != nil && c.SecretAccessKey != "" {
			credp, known = c, true
		}
	}
	v.Secret = func(string) (string, bool) { return credp.SecretAccessKey, known }
	if err := v.VerifyNoBody(req, sig); err != nil {
		return nil, a.sigv4Refusal(err), err.Error()
	}
	if r, reason := checkSessionToken(req, sig, credp); r != nil {
		return nil, r, reason
	}
	caller := &IAMCaller{AccessKeyID: sig.AccessKeyID, Region: sig.Region, Credential: credp}
	region := a.region
	if region == "" {
		region = sig.Region
	}
	arn := "arn:aws:execute-api:" + region + ":" + a.accountID + ":" + apiID + "/" + stage + "/" + route
	caller.arn = arn
	if credp.Policy != nil {
		if d := credp.Policy.Evaluate(actionInvoke, arn); d != PolicyAllowed {
			return nil, iamDenied(caller, arn, d), "the credential's policy: " + d.String()
		}
	}
	if a.authorize != nil {
		if err := callIAMAuthorize(req.Context(), a.authorize, caller, arn); err != nil {
			if errors.Is(err, ErrAccessDenied) {
				return nil, iamDenied(caller, arn, PolicyImplicitDeny), "IAMAuth.Authorize: " + err.Error()
			}
			return nil, iamRefused(http.StatusInternalServerError, "InternalServerErrorException", "Internal server error"),
				"IAMAuth.Authorize: " + err.Error()
		}
	}
	return caller, nil, ""
}

func callIAMAuthorize(ctx context.Context, f func(context.Context, *IAMCaller, string) error, c *IAMCaller, arn string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("wsroute: IAMAuth.Authorize panicked: %v", p)
		}
	}()
	return f(ctx, c, arn)
}

// checkSessionToken applies the rule of temporary credentials: the token the
// request carries, signed, must be the credential's.
func checkSessionToken(req *http.Request, sig *sigv4.Signature, cred *IAMCredential) (*iamRefusal, string) {
	var tokens []string
	if sig.Presigned {
		tokens = req.URL.Query()[headerSecurityToken]
	} else {
		tokens = req.Header.Values(headerSecurityToken)
		if len(tokens) > 0 && !sig.SignsHeader("x-amz-security-token") {
			return iamRefused(http.StatusForbidden, iamTypeUnrecognized, iamMsgToken), "X-Amz-Security-Token is not signed"
		}
	}
	switch {
	case len(tokens) > 1:
		return iamRefused(http.StatusForbidden, iamTypeUnrecognized, iamMsgToken), "more than one security token"
	case cred.SessionToken == "" && len(tokens) == 0:
		return nil, ""
	case cred.SessionToken == "":
		return iamRefused(http.StatusForbidden, iamTypeUnrecognized, iamMsgToken), "a security token for long-term credentials"
	case len(tokens) == 0 || subtle.ConstantTimeCompare([]byte(tokens[0]), []byte(cred.SessionToken)) != 1:
		return iamRefused(http.StatusForbidden, iamTypeUnrecognized, iamMsgToken), "missing or wrong security token"
	}
	return nil, ""
}

// iamDenied is IAM's answer to a caller its policies do not allow.
func iamDenied(c *IAMCaller, arn string, d PolicyDecision) *iamRefusal {
	msg := "User: " + c.who() + " is not authorized to perform: " + actionInvoke + " on resource: " + arn
	if d == PolicyExplicitDeny {
		msg += " with an explicit deny"
	}
	return &iamRefusal{status: http.StatusForbidden, errorType: iamTypeDenied, key: "Message", message: msg}
}

func (a *iamAuth) sigv4Refusal(err error) *iamRefusal {
	switch {
	case errors.Is(err, sigv4.ErrMissing):
		return iamRefused(http.StatusForbidden, iamTypeMissing, iamMsgMissing)
	case errors.Is(err, sigv4.ErrMalformed):
		return iamRefused(http.StatusForbidden, iamTypeIncomplete, iamMsgMalformed)
	case errors.Is(err, sigv4.ErrExpired):
		return iamRefused(http.StatusForbidden, iamTypeExpired, iamMsgExpired)
	case errors.Is(err, sigv4.ErrScope):
		if strings.Contains(err.Error(), ": service ") {
			return iamRefused(http.StatusForbidden, iamTypeSignature, iamMsgService)
		}
		if strings.Contains(err.Error(), ": region ") {
			return iamRefused(http.StatusForbidden, iamTypeSignature, iamMsgRegion)
		}
		return iamRefused(http.StatusForbidden, iamTypeSignature, iamMsgSignature)
	case errors.Is(err, sigv4.ErrPayloadHash), errors.Is(err, sigv4.ErrUnsignedPayload):
		return iamRefused(http.StatusForbidden, iamTypeSignature, iamMsgUnsigned)
	default:
		return iamRefused(http.StatusForbidden, iamTypeSignature, iamMsgSignature)
	}
}

// setIdentity copies the caller into the connection's identity.
func (c *IAMCaller) setIdentity(id *Identity) {
	cr := c.Credential
	id.AccessKey = c.AccessKeyID
	id.AccountID = cr.AccountID
	id.Caller = cr.Caller
	id.User = cr.User
	id.UserARN = cr.UserARN
	id.PrincipalOrgID = cr.PrincipalOrgID
	id.CognitoIdentityID = cr.CognitoIdentityID
	id.CognitoIdentityPoolID = cr.CognitoIdentityPoolID
	id.CognitoAuthenticationType = cr.CognitoAuthenticationType
	id.CognitoAuthenticationProvider = cr.CognitoAuthenticationProvider
}
