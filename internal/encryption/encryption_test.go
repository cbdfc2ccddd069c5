package encryption

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

func keyring(tb testing.TB, keys ...string) *Keyring {
	tb.Helper()
	k, err := ParseKeys(strings.Join(keys, ","))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	a, b := NewKey(), NewKey()
	ka := keyring(t, a)
	sealed := ka.Seal("ep_1", "s3cret")
	if !strings.HasPrefix(sealed, Prefix) || strings.Contains(sealed, "s3cret") || sealed == ka.Seal("ep_1", "s3cret") {
		t.Fatalf("sealed %q: want the prefix, no plaintext, a fresh nonce each time", sealed)
	}
	tests := []struct {
		name, id, value string
		k               *Keyring
		want, err       string
	}{
		{"round trip", "ep_1", sealed, ka, "s3cret", ""},
		{"plaintext passes", "ep_1", "old-plain", ka, "old-plain", ""},
		{"another endpoint", "ep_2", sealed, ka, "", "does not open"},
		{"unknown key", "ep_1", sealed, keyring(t, b), "", "not among the configured"},
		{"old key in a rotation", "ep_1", sealed, keyring(t, b, a), "s3cret", ""},
		{"tampered", "ep_1", sealed[:len(sealed)-2] + "AA", ka, "", "does not open"},
		{"no key id", "ep_1", Prefix + "abc", ka, "", "without a key id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.k.Open(tc.id, tc.value)
			if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Open = %q, %v; want %q, error containing %q", got, err, tc.want, tc.err)
			}
		})
	}
	if s := ka.Seal("ep_1", ""); s != "" {
		t.Errorf("Seal of empty = %q", s)
	}
}

func TestParseKeys(t *testing.T) {
	for _, bad := range []string{"", "not base64!", "c2hvcnQ=", NewKey() + ",short"} {
		if _, err := ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		}
	}
	k, err := ParseKeys(" " + NewKey() + "\n" + strings.TrimRight(NewKey(), "=") + "\n")
	if err != nil || k.Len() != 2 {
		t.Fatalf("two keys on lines, one unpadded: %v, %d keys", err, k.Len())
	}
}

func TestSealEndpoint(t *testing.T) {
	first := NewKey()
	k := keyring(t, first)
	exp := time.Now().Add(time.Hour)
	ep := &aviso.Endpoint{ID: "ep_1", Token: "tf-token", Secrets: []aviso.Secret{{Value: "whsec_a"}, {Value: "whsk_b", ExpiresAt: &exp}},
		Auth:          &aviso.Auth{Type: aviso.AuthOAuth2, TokenURL: "https://a.example/t", ClientID: "id", ClientSecret: "cs"},
		SecretHeaders: map[string]string{"X-K": "hv"}, Headers: map[string]string{"X-P": "plain"}}
	orig := copyEndpoint(ep)
	sealed := k.SealEndpoint(ep)
	if !reflect.DeepEqual(ep, orig) {
		t.Fatalf("SealEndpoint changed its argument")
	}
	for _, v := range []string{sealed.Token, sealed.Secrets[0].Value, sealed.Secrets[1].Value, sealed.Auth.ClientSecret, sealed.SecretHeaders["X-K"]} {
		if !strings.HasPrefix(v, Prefix) {
			t.Errorf("value %q not sealed", v)
		}
	}
	if sealed.Auth.ClientID != "id" || sealed.Headers["X-P"] != "plain" || sealed.Auth.Password != "" {
		t.Errorf("non-secret fields changed: %+v", sealed.Auth)
	}
	if !k.stale(ep) || k.stale(sealed) || !k.plaintext(ep) || k.plaintext(sealed) {
		t.Errorf("stale: plaintext %v, sealed %v; want true, false", k.stale(ep), k.stale(sealed))
	}
	// Sealed with a key now behind a new one: the rotation reseals it, a start does not.
	rotated := keyring(t, NewKey(), first)
	if !rotated.stale(sealed) || rotated.plaintext(sealed) {
		t.Errorf("under a new key: stale %v, plaintext %v; want true, false", rotated.stale(sealed), rotated.plaintext(sealed))
	}
	opened, err := k.Opened(sealed)
	if err != nil || !reflect.DeepEqual(opened, orig) || opened == sealed {
		t.Fatalf("Opened = %+v, %v; want the original in a copy", opened, err)
	}
	if same, _ := k.Opened(orig); same != orig {
		t.Errorf("Opened of a plaintext endpoint copied it")
	}
	var none *Keyring
	if err := none.OpenEndpoint(copyEndpoint(sealed)); err == nil {
		t.Errorf("a nil keyring opened sealed values")
	}
	if got := none.SealEndpoint(ep); got != ep {
		t.Errorf("a nil keyring sealed")
	}
}
