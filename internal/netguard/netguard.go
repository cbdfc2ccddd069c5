// Package netguard keeps Aviso from being turned against the network it runs in (SSRF): it
// refuses loopback, private, link-local, CGNAT, multicast, unspecified and cloud-metadata
// addresses. The check runs on the resolved IP at dial time, so a hostname that resolves to a
// private address — or is re-pointed there after the endpoint was created (DNS rebinding) — is
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

// blockedPrefixes are the ranges a webhook must never reach unless private networks are allowed.
var blockedPrefixes = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",      // "this" network
		"10.0.0.0/8",     // private
		"100.64.0.0/10",  // carrier-grade NAT
		"127.0.0.0/8",    // loopback
		"169.254.0.0/16", // link-local, including 169.254.169.254 cloud metadata
		"172.16.0.0/12",  // private
		"192.0.0.0/24",   // IETF protocol assignments
		"192.168.0.0/16", // private
		"198.18.0.0/15",  // benchmarking
		"224.0.0.0/4",    // multicast
		"240.0.0.0/4",    // reserved, broadcast
		"::/128",         // unspecified
		"::1/128",        // loopback
		"fc00::/7",       // unique local (includes AWS fd00:ec2::254 metadata)
		"fe80::/10",      // link-local
		"ff00::/8",       // multicast
		"64:ff9b:1::/48", // local-use NAT64
		"2001:db8::/32",  // documentation
		"100::/64",       // discard
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// Blocked reports whether ip is in a range webhooks may not reach. IPv4-mapped IPv6 addresses
// are checked as the IPv4 address they carry.
func Blocked(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Guard checks destinations. The zero value refuses private networks and uses the default resolver.
type Guard struct {
	AllowPrivate bool
	Resolver     *net.Resolver // nil: net.DefaultResolver
}

// ErrBlocked is wrapped by every refusal, so callers can tell it from other network errors.
var ErrBlocked = fmt.Errorf("destination is a loopback, private, link-local or metadata address")

// CheckURL resolves the URL's host and refuses it if any address it resolves to is blocked. It
// returns an aviso EINVALID error naming the "url" field, with a message saying what to fix.
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
		if Blocked(ip) {
			return aviso.Invalid("url", "%s is a loopback, private, link-local or metadata address; webhooks must go to a public address (the server's --allow-private-networks lifts this for development)", host)
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
			return aviso.Invalid("url", "%s resolves to %s, a loopback, private, link-local or metadata address; webhooks must go to a public address (the server's --allow-private-networks lifts this for development)", host, a.Unmap())
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
