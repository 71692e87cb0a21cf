package wsroute

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// identitySource is one parsed entry of Options.IdentitySources.
type identitySource struct {
	header bool // else a query string parameter
	name   string
}

func parseIdentitySources(srcs []string) ([]identitySource, error) {
	out := make([]identitySource, 0, len(srcs))
	for _, s := range srcs {
		var src identitySource
		switch {
		case strings.HasPrefix(s, "route.request.header."):
			src = identitySource{header: true, name: strings.TrimPrefix(s, "route.request.header.")}
		case strings.HasPrefix(s, "route.request.querystring."):
			src = identitySource{name: strings.TrimPrefix(s, "route.request.querystring.")}
		default:
			return nil, fmt.Errorf("wsroute: identity source %q: want route.request.header.NAME or route.request.querystring.NAME", s)
		}
		if src.name == "" {
			return nil, fmt.Errorf("wsroute: identity source %q has no name", s)
		}
		out = append(out, src)
	}
	return out, nil
}

// authorize runs the identity source checks and the Authorizer. It returns
// the status and message to refuse the handshake with, or 0 to go on; on
// success c.authorizer holds the result.
func (r *Router) authorize(req *http.Request, c *conn, ev *Request) (int, string) {
	var query url.Values
	for _, src := range r.identitySrcs {
		var v string
		if src.header {
			v = req.Header.Get(src.name)
		} else {
			if query == nil {
				query = req.URL.Query()
			}
			v = query.Get(src.name)
		}
		if v == "" {
			return http.StatusUnauthorized, "Unauthorized"
		}
	}
	start := time.Now()
	res, err := r.callAuthorizer(req.Context(), ev)
	latency := time.Since(start).Milliseconds()
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, "Unauthorized"
	case errors.Is(err, ErrAccessDenied):
		return http.StatusForbidden, "Forbidden"
	case err != nil:
		r.log.Error("wsroute: authorizer failed", "connectionId", c.id, "err", err)
		return http.StatusInternalServerError, "Internal server error"
	case res == nil:
		r.log.Error("wsroute: authorizer returned neither a result nor an error", "connectionId", c.id)
		return http.StatusInternalServerError, "Internal server error"
	}
	a := make(map[string]any, len(res.Context)+2)
	for k, v := range res.Context {
		a[k] = v
	}
	a["principalId"] = res.PrincipalID
	a["integrationLatency"] = latency
	c.authorizer = a
	if res.UsageIdentifierKey != "" {
		c.auth = &connAuth{authorizerKey: res.UsageIdentifierKey}
	}
	return 0, ""
}

func (r *Router) callAuthorizer(ctx context.Context, ev *Request) (res *AuthorizerResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("wsroute: authorizer panicked: %v", p)
		}
	}()
	ctx = ContextWithConnections(ctx, r.cm)
	return r.opts.Authorizer(ctx, ev)
}

// checkOrigin refuses a browser request from another origin than the Host
// unless a pattern allows it, as websocket.Accept does. The router checks it
// before $connect runs, so it tells websocket.Accept to skip its own check.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil {
		return fmt.Errorf("wsroute: malformed Origin header %q", origin)
	}
	if strings.EqualFold(r.Host, u.Host) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, err := path.Match(strings.ToLower(p), strings.ToLower(target)); err == nil && ok {
			return nil
		}
	}
	return fmt.Errorf("wsroute: origin %q is not allowed for host %q", u.Host, r.Host)
}
