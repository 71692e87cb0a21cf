package wsroute

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unsafe"
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
	trusted := p != nil && p.trusts(peer(req))
	port := ""
	if la, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		switch a := la.(type) {
		case *net.TCPAddr:
			port = strconv.Itoa(a.Port)
		default:
			if ap, err := netip.ParseAddrPort(la.String()); err == nil {
				port = strconv.Itoa(int(ap.Port()))
			}
		}
	}
	proto := "http"
	if req.TLS != nil {
		proto = "https"
	}
	names := [...]string{"X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Amzn-Trace-Id"}
	vals := []string{remoteIP(req.RemoteAddr), port, proto, newTraceID(time.Now())} // one array for the four values
	for i, name := range names {
		if trusted {
			if vs := req.Header.Values(name); len(vs) > 0 {
				vals[i] = strings.Join(vs, ", ")
			}
		}
		ev.Headers[name] = vals[i]
		ev.MultiValueHeaders[name] = vals[i : i+1 : i+1]
	}
}

// newTraceID returns an X-Ray trace header in AWS's format:
// Root=1-{8 hex digits of the epoch second}-{24 random hex digits}. The
// digits come from math/rand/v2: random, not secret, like X-Ray's own.
func newTraceID(now time.Time) string {
	var raw [16]byte
	binary.BigEndian.PutUint32(raw[:4], uint32(now.Unix()))
	binary.LittleEndian.PutUint64(raw[4:12], mrand.Uint64())
	binary.LittleEndian.PutUint32(raw[12:], mrand.Uint32())
	b := make([]byte, 0, len("Root=1-")+8+1+24)
	b = append(b, "Root=1-"...)
	b = hex.AppendEncode(b, raw[:4])
	b = append(b, '-')
	b = hex.AppendEncode(b, raw[4:])
	return unsafe.String(unsafe.SliceData(b), len(b))
}
