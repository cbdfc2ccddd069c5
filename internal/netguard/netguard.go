// Package netguard keeps Aviso from being turned against the network it runs in (SSRF).
//
// Invariant: no connection is made to an address that the IANA IPv4 and IPv6 Special-Purpose
// Address Registries mark as not globally reachable, nor to multicast, broadcast or IPv6 space
// outside global unicast (2000::/3), whatever the address's spelling. The address is normalised
// before it is judged: a zone id (fe80::1%eth0) is stripped, and an address that carries an IPv4
// address — IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96), NAT64 (64:ff9b::/96) and 6to4
// (2002::/16) — is judged as that IPv4 address. The local-use NAT64 prefix 64:ff9b:1::/48, Teredo
// and the rest of the IETF protocol assignments (2001::/23) are refused whole: each embeds its
// IPv4 address where its operator chose, and no webhook receiver lives there.
//
// The check runs twice: on the URL when an endpoint is created or changed (CheckURL, with the
// host resolved), and on the resolved IP at every dial (Control), so a hostname that resolves to
// a private address — or is re-pointed there after the endpoint was created (DNS rebinding) — is
// refused as well. Guard.AllowPrivate lifts it for development and tests.
package netguard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"

	"github.com/aviso-dev/aviso"
)

// verdict is what the guard does with the addresses of an entry.
type verdict uint8

const (
	allow    verdict = iota // globally reachable
	refuse                  // not globally reachable, or no place for a webhook
	embedded                // judged as the IPv4 address it carries
)

// entry is one row of the guard's table: a registry entry, or a wider block (multicast, the IPv6
// space outside global unicast) that the registries do not list.
type entry struct {
	prefix  netip.Prefix
	name    string
	verdict verdict
	// v4 extracts the embedded IPv4 address of an embedded entry.
	v4 func(a [16]byte) netip.Addr
}

// last32 is the IPv4 address in the last 32 bits (IPv4-mapped, IPv4-compatible, NAT64 /96).
func last32(a [16]byte) netip.Addr { return netip.AddrFrom4([4]byte(a[12:16])) }

// sixToFour is the IPv4 address in bits 16–48 of a 6to4 address (RFC 3056).
func sixToFour(a [16]byte) netip.Addr { return netip.AddrFrom4([4]byte(a[2:6])) }

// table is the guard's decision table. The longest prefix that contains an address decides. The
// rows name the registries' entries (https://www.iana.org/assignments/iana-ipv4-special-registry,
// …/iana-ipv6-special-registry); the registry's globally reachable anycast entries inside a
// refused block (192.0.0.9, 192.0.0.10, 2001:1::1–3, …) are refused with their block: they are
// answered by a nearby server, often the operator's own.
var table = func() []entry {
	rows := []struct {
		prefix string
		name   string
		v      verdict
		v4     func([16]byte) netip.Addr
	}{
		// IPv4.
		{"0.0.0.0/0", "IPv4 unicast", allow, nil},
		{"0.0.0.0/8", `"this network"`, refuse, nil},
		{"10.0.0.0/8", "private use", refuse, nil},
		{"100.64.0.0/10", "shared address space (CGNAT)", refuse, nil},
		{"127.0.0.0/8", "loopback", refuse, nil},
		{"169.254.0.0/16", "link local (cloud metadata 169.254.169.254)", refuse, nil},
		{"172.16.0.0/12", "private use", refuse, nil},
		{"192.0.0.0/24", "IETF protocol assignments", refuse, nil},
		{"192.0.2.0/24", "documentation (TEST-NET-1)", refuse, nil},
		{"192.88.99.0/24", "deprecated 6to4 relay anycast", refuse, nil},
		{"192.168.0.0/16", "private use", refuse, nil},
		{"198.18.0.0/15", "benchmarking", refuse, nil},
		{"198.51.100.0/24", "documentation (TEST-NET-2)", refuse, nil},
		{"203.0.113.0/24", "documentation (TEST-NET-3)", refuse, nil},
		{"224.0.0.0/4", "multicast", refuse, nil},
		{"240.0.0.0/4", "reserved, limited broadcast", refuse, nil},

		// IPv6.
		{"::/0", "outside global unicast", refuse, nil},
		{"::/96", "IPv4-compatible (deprecated)", embedded, last32},
		{"::/128", "unspecified", refuse, nil},
		{"::1/128", "loopback", refuse, nil},
		{"::ffff:0:0/96", "IPv4-mapped", embedded, last32},
		{"64:ff9b::/96", "NAT64 well-known prefix", embedded, last32},
		{"64:ff9b:1::/48", "local-use NAT64", refuse, nil},
		{"100::/64", "discard-only", refuse, nil},
		{"100:0:0:1::/64", "dummy IPv6 prefix", refuse, nil},
		{"2000::/3", "global unicast", allow, nil},
		{"2001::/23", "IETF protocol assignments (Teredo, benchmarking, ORCHID, anycast)", refuse, nil},
		{"2001:db8::/32", "documentation", refuse, nil},
		{"2002::/16", "6to4", embedded, sixToFour},
		{"3fff::/20", "documentation", refuse, nil},
		{"5f00::/16", "segment routing (SRv6) SIDs", refuse, nil},
		{"fc00::/7", "unique local (AWS metadata fd00:ec2::254)", refuse, nil},
		{"fe80::/10", "link-local unicast", refuse, nil},
		{"fec0::/10", "site-local (deprecated)", refuse, nil},
		{"ff00::/8", "multicast", refuse, nil},
	}
	out := make([]entry, len(rows))
	for i, r := range rows {
		out[i] = entry{prefix: netip.MustParsePrefix(r.prefix), name: r.name, verdict: r.v, v4: r.v4}
	}
	return out
}()

// lookup returns the entry with the longest prefix that contains ip (ip has no zone).
func lookup(ip netip.Addr) *entry {
	var best *entry
	for i := range table {
		e := &table[i]
		if e.prefix.Addr().Is4() == ip.Is4() && e.prefix.Contains(ip) && (best == nil || e.prefix.Bits() > best.prefix.Bits()) {
			best = e
		}
	}
	return best
}

// Blocked reports whether ip is an address webhooks may not reach. The invalid Addr is blocked.
func Blocked(ip netip.Addr) bool {
	_, blocked := judge(ip)
	return blocked
}

// judge returns the address the verdict was taken on (the embedded IPv4 address, if any) and
// whether it is blocked.
func judge(ip netip.Addr) (netip.Addr, bool) {
	if !ip.IsValid() {
		return ip, true
	}
	ip = ip.WithZone("")
	e := lookup(ip)
	switch e.verdict {
	case allow:
		return ip, false
	case embedded:
		v4 := e.v4(ip.As16())
		return v4, lookup(v4).verdict != allow
	}
	return ip, true
}

// Guard checks destinations. The zero value refuses private networks and uses the default resolver.
type Guard struct {
	AllowPrivate bool
	Resolver     *net.Resolver // nil: net.DefaultResolver
}

// ErrBlocked is wrapped by every refusal, so callers can tell it from other network errors.
var ErrBlocked = fmt.Errorf("destination is not a public address (loopback, private, link-local, metadata or another special-purpose address)")

const liftHint = "webhooks must go to a public address (the server's --allow-private-networks lifts this for development)"

// CheckURL resolves the URL's host and refuses it if any address it resolves to is blocked; a
// host with an IPv6 zone id is refused outright. It returns an aviso EINVALID error naming the
// "url" field, with a message saying what to fix.
func (g *Guard) CheckURL(ctx context.Context, rawURL string) error {
	if g.AllowPrivate {
		return nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return aviso.Invalid("url", "must be an absolute http:// or https:// URL")
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return aviso.Invalid("url", "%s names a network interface (an IPv6 zone id); %s", host, liftHint)
		}
		if on, blocked := judge(ip); blocked {
			if on != ip {
				return aviso.Invalid("url", "%s carries %s, a loopback, private, link-local, metadata or other special-purpose address; %s", host, on, liftHint)
			}
			return aviso.Invalid("url", "%s is a loopback, private, link-local, metadata or other special-purpose address; %s", host, liftHint)
		}
		return nil
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return aviso.Invalid("url", "host %q does not resolve: %v", host, err)
	}
	for _, a := range addrs {
		if Blocked(a) {
			return aviso.Invalid("url", "%s resolves to %s, a loopback, private, link-local, metadata or other special-purpose address; %s", host, a.Unmap(), liftHint)
		}
	}
	return nil
}

// Control is a net.Dialer Control function that refuses blocked addresses. It runs after DNS
// resolution, on the address actually being connected to.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	if g.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: %s: %w", address, ErrBlocked)
	}
	if Blocked(ap.Addr()) {
		return fmt.Errorf("netguard: refusing to connect to %s: %w", ap.Addr().Unmap(), ErrBlocked)
	}
	return nil
}

// Dialer returns a net.Dialer whose connections are checked by the guard.
func (g *Guard) Dialer() *net.Dialer {
	return &net.Dialer{Control: g.Control}
}
