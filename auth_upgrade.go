package wsroute

import (
	"errors"
	"net/http"
)

// newUpgradeAuth checks the AWS_IAM and usage plan options and builds the
// IAM verifier.
func newUpgradeAuth(o *Options) (*iamAuth, error) {
	if o.UsagePlans != nil && len(o.APIKeys) > 0 {
		return nil, errors.New("wsroute: set Options.APIKeys or Options.UsagePlans, not both")
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
		caller.setIdentity(&c.identity)
	}
	if u := r.opts.UsagePlans; u != nil {
		k := u.lookup(req.Header.Get("X-Api-Key"))
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
		c.apiKey = k
		c.identity.APIKey = k.value
		c.identity.APIKeyID = k.id
	}
	ev.RequestContext.Identity = c.identity
	return true
}

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

// overUsagePlan meters one message of a connection that opened with an API
// key. When the plan refuses it, the client gets the error frame API Gateway
// sends ("Too Many Requests", "Limit Exceeded", or "Forbidden" once the key
// is revoked), no route runs, and overUsagePlan returns true.
func (c *conn) overUsagePlan() bool {
	res := c.r.opts.UsagePlans.meter(c.apiKey)
	if res == meterOK {
		return false
	}
	_, msg := usageRefusal(res)
	_, requestID := c.r.ids.pair()
	c.reply(frame{data: errorFrame(msg, c.id, requestID)})
	return true
}
