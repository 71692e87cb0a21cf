package wsroute

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// trustedProxies are the load balancers and proxies of Options.TrustedProxies,
// whose X-Forwarded-* headers the router believes. A nil *trustedProxies
// trusts no one.
type trustedProxies struct {
	nets []netip.Prefix
}

func parseTrustedProxies(cidrs []string) (*trustedProxies, error) {
	if len(cidrs) == 0 {
		return nil, nil
	}
	p := &trustedProxies{}
	for _, s := range cidrs {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("wsroute: TrustedProxies: %q is neither a CIDR nor an IP address", s)
			}
			pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if pfx.Addr().Is4In6() {
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), max(pfx.Bits()-96, 0))
		}
		p.nets = append(p.nets, pfx.Masked())
	}
	return p, nil
}

func (p *trustedProxies) trusts(a netip.Addr) bool {
	if p == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// peer is the address of the TCP peer of req.
func peer(req *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(req.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// parseForwarded reads one X-Forwarded-For entry: an address, with or
// without a port, IPv6 with or without brackets.
func parseForwarded(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// clientIP is identity.sourceIp: the TCP peer, or, when the peer is a
// trusted proxy, the rightmost address of X-Forwarded-For that is not a
// trusted proxy. The walk stops at an entry that is not an address, and then
// answers the last address it trusted: what a trusted proxy wrote is
// believed, nothing left of it is.
func (p *trustedProxies) clientIP(req *http.Request) string {
	a := peer(req)
	if !p.trusts(a) {
		return remoteIP(req.RemoteAddr)
	}
	vals := req.Header.Values("X-Forwarded-For")
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for v != "" {
			entry := v
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				entry, v = v[j+1:], v[:j]
			} else {
				v = ""
			}
			next := parseForwarded(entry)
			if !next.IsValid() {
				return a.String()
			}
			a = next
			if !p.trusts(a) {
				return a.String()
			}
		}
	}
	return a.String()
}

// forwardHeaders sets the headers API Gateway adds to a CONNECT event:
// X-Forwarded-For, X-Forwarded-Port, X-Forwarded-Proto and X-Amzn-Trace-Id.
// From a trusted proxy the values it sent are kept; from anyone else they
// are replaced: X-Forwarded-For by the peer's address, the port and the
// protocol by those of the connection, and the trace ID by a new one.
func (p *trustedProxies) forwardHeaders(ev *Request, req *http.Request) {
	trusted := p.trusts(peer(req))
	set := func(name, value string) {
		if trusted {
			if vs := req.Header.Values(name); len(vs) > 0 {
				ev.Headers[name] = strings.Join(vs, ", ")
				ev.MultiValueHeaders[name] = []string{ev.Headers[name]}
				return
			}
		}
		ev.Headers[name] = value
		ev.MultiValueHeaders[name] = []string{value}
	}
	set("X-Forwarded-For", remoteIP(req.RemoteAddr))
	port := ""
	if la, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			port = strconv.Itoa(int(ap.Port()))
		}
	}
	set("X-Forwarded-Port", port)
	proto := "http"
	if req.TLS != nil {
		proto = "https"
	}
	set("X-Forwarded-Proto", proto)
	set("X-Amzn-Trace-Id", newTraceID(time.Now()))
}

// newTraceID returns an X-Ray trace header in AWS's format:
// Root=1-{8 hex digits of the epoch second}-{24 random hex digits}.
func newTraceID(now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%s", uint32(now.Unix()), hex.EncodeToString(b[:]))
}
