package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aviso-dev/aviso"
)

// registry names every entry of the IANA IPv4 and IPv6 Special-Purpose Address Registries
// (iana-ipv4-special-registry, iana-ipv6-special-registry), with addresses inside it and the
// guard's verdict, plus the blocks the registries do not list (multicast, site-local, the space
// outside global unicast). An entry the registry marks globally reachable but that lies inside a
// refused block is refused with it (see the table's doc).
var registry = []struct {
	entry   string
	addrs   []string
	blocked bool
}{
	// IPv4 Special-Purpose Address Registry.
	{"0.0.0.0/8 this network", []string{"0.0.0.1", "0.255.255.255"}, true},
	{"0.0.0.0/32 this host on this network", []string{"0.0.0.0"}, true},
	{"10.0.0.0/8 private use", []string{"10.0.0.0", "10.1.2.3", "10.255.255.255"}, true},
	{"100.64.0.0/10 shared address space", []string{"100.64.0.1", "100.127.255.254"}, true},
	{"127.0.0.0/8 loopback", []string{"127.0.0.1", "127.8.9.10", "127.255.255.255"}, true},
	{"169.254.0.0/16 link local", []string{"169.254.169.254", "169.254.0.1"}, true},
	{"172.16.0.0/12 private use", []string{"172.16.0.1", "172.31.255.255"}, true},
	{"192.0.0.0/24 IETF protocol assignments", []string{"192.0.0.1", "192.0.0.255"}, true},
	{"192.0.0.0/29 IPv4 service continuity prefix", []string{"192.0.0.2", "192.0.0.7"}, true},
	{"192.0.0.8/32 IPv4 dummy address", []string{"192.0.0.8"}, true},
	{"192.0.0.9/32 port control protocol anycast", []string{"192.0.0.9"}, true},
	{"192.0.0.10/32 TURN anycast", []string{"192.0.0.10"}, true},
	{"192.0.0.170/32 NAT64/DNS64 discovery", []string{"192.0.0.170", "192.0.0.171"}, true},
	{"192.0.2.0/24 documentation TEST-NET-1", []string{"192.0.2.1", "192.0.2.255"}, true},
	{"192.31.196.0/24 AS112-v4", []string{"192.31.196.1"}, false},
	{"192.52.193.0/24 AMT", []string{"192.52.193.1"}, false},
	{"192.88.99.0/24 deprecated 6to4 relay anycast", []string{"192.88.99.1", "192.88.99.2"}, true},
	{"192.168.0.0/16 private use", []string{"192.168.0.1", "192.168.255.255"}, true},
	{"192.175.48.0/24 direct delegation AS112", []string{"192.175.48.1"}, false},
	{"198.18.0.0/15 benchmarking", []string{"198.18.0.1", "198.19.255.255"}, true},
	{"198.51.100.0/24 documentation TEST-NET-2", []string{"198.51.100.7"}, true},
	{"203.0.113.0/24 documentation TEST-NET-3", []string{"203.0.113.9"}, true},
	{"240.0.0.0/4 reserved", []string{"240.0.0.1", "254.255.255.255"}, true},
	{"255.255.255.255/32 limited broadcast", []string{"255.255.255.255"}, true},
	// IPv4 outside the registry.
	{"224.0.0.0/4 multicast", []string{"224.0.0.1", "233.252.0.1", "239.255.255.255"}, true},
	{"IPv4 global unicast", []string{"8.8.8.8", "1.1.1.1", "100.128.0.1", "172.32.0.1", "192.0.3.1", "198.20.0.1", "223.255.255.255"}, false},

	// IPv6 Special-Purpose Address Registry.
	{"::1/128 loopback", []string{"::1", "0:0:0:0:0:0:0:1"}, true},
	{"::/128 unspecified", []string{"::", "0:0:0:0:0:0:0:0"}, true},
	{"::ffff:0:0/96 IPv4-mapped (private IPv4)", []string{"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:a9fe:a9fe", "::FFFF:192.0.2.1"}, true},
	{"::ffff:0:0/96 IPv4-mapped (public IPv4)", []string{"::ffff:8.8.8.8", "::ffff:808:808"}, false},
	{"64:ff9b::/96 IPv4-IPv6 translation (private IPv4)", []string{"64:ff9b::a9fe:a9fe", "64:ff9b::169.254.169.254", "64:ff9b::127.0.0.1", "64:ff9b::a00:1"}, true},
	{"64:ff9b::/96 IPv4-IPv6 translation (public IPv4)", []string{"64:ff9b::808:808", "64:ff9b::8.8.8.8"}, false},
	{"64:ff9b:1::/48 local-use IPv4/IPv6 translation", []string{"64:ff9b:1::808:808", "64:ff9b:1::a9fe:a9fe", "64:ff9b:1:ffff::1"}, true},
	{"100::/64 discard-only", []string{"100::1", "100::ffff:ffff:ffff:ffff"}, true},
	{"100:0:0:1::/64 dummy IPv6 prefix", []string{"100:0:0:1::1"}, true},
	{"2001::/23 IETF protocol assignments", []string{"2001:1ff::1", "2001:100::1"}, true},
	{"2001::/32 Teredo", []string{"2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2"}, true},
	{"2001:1::1/128 port control protocol anycast", []string{"2001:1::1"}, true},
	{"2001:1::2/128 TURN anycast", []string{"2001:1::2"}, true},
	{"2001:1::3/128 DNS-SD SRP anycast", []string{"2001:1::3"}, true},
	{"2001:2::/48 benchmarking", []string{"2001:2::1", "2001:2:0:ffff::1"}, true},
	{"2001:3::/32 AMT", []string{"2001:3::1"}, true},
	{"2001:4:112::/48 AS112-v6", []string{"2001:4:112::1"}, true},
	{"2001:10::/28 deprecated ORCHID", []string{"2001:10::1"}, true},
	{"2001:20::/28 ORCHIDv2", []string{"2001:20::1"}, true},
	{"2001:30::/28 drone remote ID DETs", []string{"2001:30::1"}, true},
	{"2001:db8::/32 documentation", []string{"2001:db8::1", "2001:DB8:FFFF::1"}, true},
	{"2002::/16 6to4 (private IPv4)", []string{"2002:a9fe:a9fe::1", "2002:7f00:1::", "2002:a00:1::1", "2002:c000:201::1"}, true},
	{"2002::/16 6to4 (public IPv4)", []string{"2002:808:808::1"}, false},
	{"2620:4f:8000::/48 direct delegation AS112", []string{"2620:4f:8000::1"}, false},
	{"3fff::/20 documentation", []string{"3fff::1", "3fff:fff:ffff::1"}, true},
	{"5f00::/16 segment routing SIDs", []string{"5f00::1"}, true},
	{"fc00::/7 unique-local", []string{"fc00::1", "fd00::1", "fd00:ec2::254"}, true},
	{"fe80::/10 link-local unicast", []string{"fe80::1", "febf::1"}, true},
	// IPv6 outside the registry.
	{"::/96 IPv4-compatible (private IPv4)", []string{"::169.254.169.254", "::a9fe:a9fe", "::127.0.0.1", "::10.0.0.1", "::0.0.0.2"}, true},
	{"::/96 IPv4-compatible (public IPv4)", []string{"::8.8.8.8"}, false},
	{"::ffff:0:0:0/96 IPv4-translated (SIIT)", []string{"::ffff:0:8.8.8.8", "::ffff:0:127.0.0.1"}, true},
	{"fec0::/10 deprecated site-local", []string{"fec0::1"}, true},
	{"ff00::/8 multicast", []string{"ff02::1", "ff05::1:3", "ff0e::1"}, true},
	{"outside 2000::/3", []string{"1::1", "4000::1", "8000::1", "e000::1", "::1:0:0:0"}, true},
	{"IPv6 global unicast", []string{"2606:4700:4700::1111", "2a00:1450:4001::200e", "2001:200::1", "2620:4f:7fff::1"}, false},
}

func TestRegistry(t *testing.T) {
	for _, tt := range registry {
		t.Run(tt.entry, func(t *testing.T) {
			for _, s := range tt.addrs {
				ip := netip.MustParseAddr(s)
				if got := Blocked(ip); got != tt.blocked {
					t.Errorf("Blocked(%s) = %v, want %v", s, got, tt.blocked)
				}
				// The same address with a zone id, as an IPv6 URL may carry one.
				if ip.Is6() {
					if got := Blocked(ip.WithZone("eth0")); got != tt.blocked {
						t.Errorf("Blocked(%s%%eth0) = %v, want %v", s, got, tt.blocked)
					}
				}
			}
		})
	}
}

// TestEmbeddedIPv4 checks every private IPv4 address of the registry in each IPv6 form that
// carries an IPv4 address.
func TestEmbeddedIPv4(t *testing.T) {
	for _, tt := range registry {
		for _, s := range tt.addrs {
			v4 := netip.MustParseAddr(s)
			if !v4.Is4() {
				continue
			}
			for _, a := range embeddings(v4) {
				if got := Blocked(a); got != tt.blocked {
					t.Errorf("%s (%s): Blocked(%s) = %v, want %v", tt.entry, s, a, got, tt.blocked)
				}
			}
		}
	}
}

// embeddings returns v4 spelt as IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 addresses.
func embeddings(v4 netip.Addr) []netip.Addr {
	b := v4.As4()
	var mapped, compat, nat64, sixToFour [16]byte
	copy(mapped[:], []byte{10: 0xff, 11: 0xff})
	copy(mapped[12:], b[:])
	copy(compat[12:], b[:])
	copy(nat64[:], []byte{0x00, 0x64, 0xff, 0x9b})
	copy(nat64[12:], b[:])
	copy(sixToFour[:], []byte{0x20, 0x02})
	copy(sixToFour[2:], b[:])
	sixToFour[15] = 1
	out := []netip.Addr{netip.AddrFrom16(mapped), netip.AddrFrom16(nat64), netip.AddrFrom16(sixToFour)}
	if b != [4]byte{} && b != [4]byte{0, 0, 0, 1} { // :: and ::1 are themselves
		out = append(out, netip.AddrFrom16(compat))
	}
	return out
}

// noDNS is a resolver that answers from /etc/hosts only: tests touch no network.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no DNS in tests")
}}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	g := &Guard{Resolver: noDNS}
	for _, u := range []string{
		"http://127.0.0.1:8080/hook", "https://[::1]/x", "http://169.254.169.254/latest/meta-data",
		"http://10.0.0.5/", "http://localhost:9000/",
		// The bypasses of issue 19: zone ids, IPv4-compatible, NAT64, 6to4, IPv4 documentation.
		"http://[::1%25lo]:8080/x", "http://[fe80::1%25eth0]/", "http://[fd00::1%25eth0]/",
		"http://[fd00:ec2::254%25eth0]/", "http://[2606:4700:4700::1111%25eth0]/",
		"http://[::169.254.169.254]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[64:ff9b:1::a9fe:a9fe]/",
		"http://[2002:a9fe:a9fe::1]/", "http://192.0.2.1/", "http://198.51.100.7/", "http://203.0.113.9/",
		"http://[3fff::1]/", "http://[::ffff:7f00:1]/", "http://[0:0:0:0:0:ffff:127.0.0.1]/",
	} {
		err := g.CheckURL(ctx, u)
		if aviso.ErrorCode(err) != aviso.EINVALID || aviso.ErrorField(err) != "url" {
			t.Errorf("%s: got %v, want an invalid url error", u, err)
			continue
		}
		if !strings.Contains(aviso.ErrorMessage(err), "--allow-private-networks") {
			t.Errorf("%s: message does not say how to lift it: %q", u, aviso.ErrorMessage(err))
		}
	}
	if err := g.CheckURL(ctx, "http://[64:ff9b::a9fe:a9fe]/"); !strings.Contains(aviso.ErrorMessage(err), "carries 169.254.169.254") {
		t.Errorf("NAT64: the message does not name the IPv4 address: %v", err)
	}
	for _, u := range []string{"https://8.8.8.8/hook", "https://[2606:4700:4700::1111]/", "https://[64:ff9b::808:808]/"} {
		if err := g.CheckURL(ctx, u); err != nil {
			t.Errorf("%s: public address refused: %v", u, err)
		}
	}
	if err := (&Guard{AllowPrivate: true}).CheckURL(ctx, "http://127.0.0.1/"); err != nil {
		t.Errorf("AllowPrivate still refuses: %v", err)
	}
}

// TestControl checks the dial-time check on every notation the dialer may be handed.
func TestControl(t *testing.T) {
	g := &Guard{}
	for _, addr := range []string{"127.0.0.1:80", "[::1]:80", "[::1%lo]:80", "[fe80::1%eth0]:443",
		"[::ffff:127.0.0.1]:80", "[::169.254.169.254]:80", "[64:ff9b::a9fe:a9fe]:80",
		"[2002:a9fe:a9fe::1]:80", "192.0.2.1:80", "garbage"} {
		if err := g.Control("tcp", addr, nil); !errors.Is(err, ErrBlocked) {
			t.Errorf("Control(%s) = %v, want ErrBlocked", addr, err)
		}
	}
	for _, addr := range []string{"8.8.8.8:443", "[2606:4700:4700::1111]:443"} {
		if err := g.Control("tcp", addr, nil); err != nil {
			t.Errorf("Control(%s) = %v, want nil", addr, err)
		}
	}
}

// TestDialRefusesAtConnectTime checks the guard on the address actually dialled: a client whose
// transport dials through the guard cannot reach a server on loopback, whatever the URL says —
// a hostname, or a zoned IPv6 literal.
func TestDialRefusesAtConnectTime(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	ln6, err := net.Listen("tcp", "[::1]:"+port)
	if err == nil { // the same server on IPv6 loopback, where the machine has it
		defer ln6.Close()
		go http.Serve(ln6, srv.Config.Handler)
	}
	for _, allow := range []bool{false, true} {
		g := &Guard{AllowPrivate: allow}
		c := &http.Client{Transport: &http.Transport{DialContext: g.Dialer().DialContext}}
		// "localhost" resolves to loopback only at dial time: the URL has no IP to check.
		urls := []string{strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)}
		if ln6 != nil && !allow {
			urls = append(urls, "http://[::1%25lo]:"+port+"/", "http://[::ffff:127.0.0.1]:"+port+"/")
		}
		for _, url := range urls {
			res, err := c.Get(url)
			if allow {
				if err != nil {
					t.Fatalf("allowed dial failed: %v", err)
				}
				res.Body.Close()
				continue
			}
			if err == nil {
				res.Body.Close()
				t.Fatalf("dial to %s was not refused", url)
			}
			if !errors.Is(err, ErrBlocked) {
				t.Fatalf("%s: error %v does not wrap ErrBlocked", url, err)
			}
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("server got %d requests, want 1 (the allowed one)", n)
	}
}

// FuzzBlocked feeds the guard addresses in every notation netip accepts and checks it against
// the standard library's own classification and against itself across spellings.
func FuzzBlocked(f *testing.F) {
	for _, tt := range registry {
		for _, s := range tt.addrs {
			f.Add(s)
		}
	}
	for _, s := range []string{"fe80::1%eth0", "::1%lo", "::ffff:0:0", "2002::", "64:ff9b::", "::"} {
		f.Add(s)
	}
	g := &Guard{Resolver: noDNS}
	f.Fuzz(func(t *testing.T, s string) {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			// Not an address: the guard refuses it as a dial target and does not panic on it
			// as a URL host.
			if (&Guard{}).Control("tcp", s, nil) == nil && !strings.Contains(s, ":") {
				t.Fatalf("Control accepted %q", s)
			}
			_ = g.CheckURL(context.Background(), "http://"+s+"/")
			return
		}
		blocked := Blocked(ip)
		if blocked != Blocked(ip.WithZone("")) {
			t.Fatalf("%s and its unzoned form disagree", ip)
		}
		if ip.Zone() != "" && g.CheckURL(context.Background(), "http://["+strings.Replace(ip.String(), "%", "%25", 1)+"]/") == nil {
			t.Fatalf("CheckURL accepted the zoned %s", ip)
		}
		u := ip.WithZone("").Unmap()
		if (!u.IsGlobalUnicast() || u.IsPrivate()) && !blocked {
			t.Fatalf("%s is not global unicast or private by net/netip, yet not blocked", ip)
		}
		if ip.Is4In6() && blocked != Blocked(u) {
			t.Fatalf("%s and %s disagree", ip, u)
		}
		if u.Is4() {
			for _, a := range embeddings(u) {
				if Blocked(a) != blocked {
					t.Fatalf("%s is blocked %v, but %s %v", u, blocked, a, !blocked)
				}
			}
		}
		err = (&Guard{}).Control("tcp", netip.AddrPortFrom(ip, 80).String(), nil)
		if (err != nil) != blocked {
			t.Fatalf("Control(%s) = %v, Blocked = %v", ip, err, blocked)
		}
		if err := g.CheckURL(context.Background(), "http://"+hostOf(ip)+"/"); ip.Zone() == "" && (err != nil) != blocked {
			t.Fatalf("CheckURL(%s) = %v, Blocked = %v", ip, err, blocked)
		}
	})
}

func hostOf(ip netip.Addr) string {
	if ip.Is4() {
		return ip.String()
	}
	return "[" + strings.Replace(ip.String(), "%", "%25", 1) + "]"
}
