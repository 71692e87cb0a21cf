package wsroute

import (
	"errors"
	"net/http"
	"strings"
)

// newUpgradeAuth checks the AWS_IAM and usage plan options and builds the
// IAM verifier.
func newUpgradeAuth(o *Options) (*iamAuth, error) {
	if o.UsagePlans != nil && len(o.APIKeys) > 0 {
		return nil, errors.New("wsroute: set Options.APIKeys or Options.UsagePlans, not both")
	}
	switch o.APIKeySelectionExpression {
	case "", keyFromHeader:
	case keyFromAuthorizer:
		if o.Authorizer == nil || o.UsagePlans == nil {
			return nil, errors.New("wsroute: Options.APIKeySelectionExpression " + keyFromAuthorizer + " needs Options.Authorizer and Options.UsagePlans")
		}
	default:
		return nil, errors.New("wsroute: Options.APIKeySelectionExpression must be " + keyFromHeader + " or " + keyFromAuthorizer)
	}
	if o.IAM == nil {
		return nil, nil
	}
	if o.Authorizer != nil {
		return nil, errors.New("wsroute: Options.IAM and Options.Authorizer cannot both be set: " +
			"$connect has one authorization type (AWS_IAM or CUSTOM), as in API Gateway")
	}
	return newIAMAuth(o.IAM)
}

// authorizeUpgrade runs AWS_IAM authorization and the usage plan's key check
// and metering on an upgrade request, in API Gateway's order. It writes the
// refusal and returns false, or fills in the connection's identity and
// returns true.
func (r *Router) authorizeUpgrade(w http.ResponseWriter, req *http.Request, c *conn, ev *Request) bool {
	if r.iam != nil {
		caller, refusal, reason := r.iam.check(req, r.opts.APIID, r.opts.Stage, RouteConnect)
		if refusal != nil {
			log := r.log.Info
			if refusal.status >= 500 {
				log = r.log.Error
			}
			log("wsroute: AWS_IAM refused an upgrade", "connectionId", c.id, "remoteAddr", req.RemoteAddr,
				"status", refusal.status, "reason", reason)
			refusal.write(w)
			return false
		}
		caller.setIdentity(c.fullIdentity())
		if p := caller.Credential.Policy; p != nil {
			c.auth = &connAuth{policy: p, who: caller.who(), arnPrefix: caller.arn[:strings.LastIndexByte(caller.arn, '/')+1]}
		}
	}
	if u := r.opts.UsagePlans; u != nil {
		value := req.Header.Get("X-Api-Key")
		if r.opts.APIKeySelectionExpression == keyFromAuthorizer {
			value = ""
			if c.auth != nil {
				value = c.auth.authorizerKey
			}
		}
		k := u.lookup(value)
		if k == nil {
			r.log.Info("wsroute: missing or unknown API key", "connectionId", c.id, "remoteAddr", req.RemoteAddr)
			writeJSONMessage(w, http.StatusForbidden, "Forbidden")
			return false
		}
		if res := u.meter(k); res != meterOK {
			status, msg := usageRefusal(res)
			r.log.Info("wsroute: usage plan refused an upgrade", "connectionId", c.id, "apiKeyId", k.id, "message", msg)
			writeJSONMessage(w, status, msg)
			return false
		}
		if c.auth == nil {
			c.auth = &connAuth{}
		}
		c.auth.apiKey = k
		id := c.fullIdentity()
		id.APIKey, id.APIKeyID = k.value, k.id
	}
	if c.auth != nil && c.auth.policy == nil && c.auth.apiKey == nil {
		c.auth = nil // nothing to check on messages
	}
	ev.RequestContext.Identity = c.identityValue()
	return true
}

// API Gateway's two API key selection expressions.
const (
	keyFromHeader     = "$request.header.x-api-key"
	keyFromAuthorizer = "$context.authorizer.usageIdentifierKey"
)

func usageRefusal(res meterResult) (int, string) {
	switch res {
	case meterThrottled:
		return http.StatusTooManyRequests, "Too Many Requests"
	case meterQuota:
		return http.StatusTooManyRequests, "Limit Exceeded"
	default:
		return http.StatusForbidden, "Forbidden"
	}
}

// connAuth is what the router checks on every message of a connection: the
// IAM caller's policy, on the route's ARN, and the usage plan's key.
type connAuth struct {
	policy        *Policy
	arnPrefix     string // arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/
	who           string
	apiKey        *apiKeyState
	authorizerKey string // the Authorizer's UsageIdentifierKey, until the key is looked up
}

// refuse checks one message routed to routeKey ($default when no custom
// route matched). When the caller's policy does not allow execute-api:Invoke
// on the route's ARN, or the usage plan refuses the message, the client gets
// the error frame API Gateway sends ("Forbidden", "Too Many Requests",
// "Limit Exceeded"; "Forbidden" too once the key is revoked), no route runs,
// the connection stays open, and refuse returns true.
func (a *connAuth) refuse(c *conn, routeKey string) bool {
	msg := ""
	if a.policy != nil {
		if d := a.policy.Evaluate(actionInvoke, a.arnPrefix+routeKey); d != PolicyAllowed {
			c.r.log.Info("wsroute: IAM policy refused a message", "connectionId", c.id, "routeKey", routeKey,
				"caller", a.who, "decision", d.String())
			msg = "Forbidden"
		}
	}
	if msg == "" && a.apiKey != nil {
		if res := c.r.opts.UsagePlans.meter(a.apiKey); res != meterOK {
			_, msg = usageRefusal(res)
		}
	}
	if msg == "" {
		return false
	}
	requestID := eventID()
	c.reply(frame{data: errorFrame(msg, c.id, requestID)})
	return true
}
