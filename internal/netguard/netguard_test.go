package netguard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
)

func TestBlocked(t *testing.T) {
	tests := []struct {
		ip      string
		blocked bool
	}{
		{"127.0.0.1", true},
		{"127.8.9.10", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"172.32.0.1", false},
		{"192.168.1.1", true},
		{"169.254.169.254", true}, // cloud metadata
		{"100.64.0.1", true},      // CGNAT
		{"100.128.0.1", false},
		{"0.0.0.0", true},
		{"224.0.0.1", true},
		{"255.255.255.255", true},
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"::1", true},
		{"::", true},
		{"fe80::1", true},
		{"fd00:ec2::254", true}, // AWS metadata over IPv6
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.0.0.1", true},
		{"::ffff:8.8.8.8", false},
		{"2606:4700:4700::1111", false},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			if got := Blocked(netip.MustParseAddr(tt.ip)); got != tt.blocked {
				t.Fatalf("Blocked(%s) = %v, want %v", tt.ip, got, tt.blocked)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	g := &Guard{}
	for _, u := range []string{"http://127.0.0.1:8080/hook", "https://[::1]/x", "http://169.254.169.254/latest/meta-data",
		"http://10.0.0.5/", "http://localhost:9000/"} {
		err := g.CheckURL(ctx, u)
		if aviso.ErrorCode(err) != aviso.EINVALID || aviso.ErrorField(err) != "url" {
			t.Errorf("%s: got %v, want an invalid url error", u, err)
			continue
		}
		if !strings.Contains(aviso.ErrorMessage(err), "--allow-private-networks") {
			t.Errorf("%s: message does not say how to lift it: %q", u, aviso.ErrorMessage(err))
		}
	}
	if err := g.CheckURL(ctx, "https://8.8.8.8/hook"); err != nil {
		t.Errorf("public IP refused: %v", err)
	}
	if err := (&Guard{AllowPrivate: true}).CheckURL(ctx, "http://127.0.0.1/"); err != nil {
		t.Errorf("AllowPrivate still refuses: %v", err)
	}
}

// TestDialRefusesAtConnectTime checks the guard on the address actually dialled: a client whose
// transport dials through the guard cannot reach a server on loopback, whatever the URL says.
func TestDialRefusesAtConnectTime(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	for _, allow := range []bool{false, true} {
		g := &Guard{AllowPrivate: allow}
		c := &http.Client{Transport: &http.Transport{DialContext: g.Dialer().DialContext}}
		// "localhost" resolves to loopback only at dial time: the URL has no IP to check.
		url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
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
			t.Fatal("dial to loopback was not refused")
		}
		if !errors.Is(err, ErrBlocked) {
			t.Fatalf("error %v does not wrap ErrBlocked", err)
		}
	}
	if hits != 1 {
		t.Fatalf("server got %d requests, want 1 (the allowed one)", hits)
	}
}

func FuzzBlocked(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::ffff:10.0.0.1", "8.8.8.8", "fe80::1%eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		// A mapped address is judged as the IPv4 address it carries.
		if ip.Is4In6() && Blocked(ip) != Blocked(ip.Unmap()) {
			t.Fatalf("%s and %s disagree", ip, ip.Unmap())
		}
		_ = (&Guard{}).Control("tcp", netip.AddrPortFrom(ip, 80).String(), nil)
	})
}
