package aviso_test

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aviso-dev/aviso"
)

// FuzzCursor feeds the list cursors' decoder anything: it never panics, refuses with
// EINVALIDCURSOR on "after", gives back what Encode wrapped, and refuses another list's cursor.
func FuzzCursor(f *testing.F) {
	for _, s := range []string{"", "zzz", "12", aviso.TenantsCursor.Encode("acme"), aviso.DocumentCursor.Encode("42"),
		aviso.DeliveriesCursor.Encode("dlv_01ABC"), "AQ", "AXQAAAAA"} {
		f.Add(s, "x")
	}
	kinds := []aviso.CursorKind{aviso.TenantsCursor, aviso.EventTypesCursor, aviso.EndpointsCursor,
		aviso.DocumentCursor, aviso.DeliveriesCursor}
	f.Fuzz(func(t *testing.T, s, key string) {
		for _, k := range kinds {
			got, err := k.Decode(s)
			if err != nil && (aviso.ErrorCode(err) != aviso.EINVALIDCURSOR || aviso.ErrorField(err) != "after") {
				t.Fatalf("%c.Decode(%q) = %v, want invalid_cursor on after", k, s, err)
			}
			if err == nil && !utf8.ValidString(got) {
				t.Fatalf("%c.Decode(%q) = %q, not UTF-8", k, s, got)
			}
			if !utf8.ValidString(key) || key == "" {
				continue
			}
			c := k.Encode(key)
			if back, err := k.Decode(c); err != nil || back != key {
				t.Fatalf("%c: Decode(Encode(%q)) = %q, %v", k, key, back, err)
			}
			for _, other := range kinds {
				if _, err := other.Decode(c); other != k && err == nil {
					t.Fatalf("a %c cursor decoded as %c", k, other)
				}
			}
		}
	})
}

// FuzzFeedCursor: the feed's cursor decoder never panics and reads back what String wrote.
func FuzzFeedCursor(f *testing.F) {
	f.Add("", uint64(0), int64(0))
	f.Add((aviso.FeedCursor{XID: 7, Seq: 9}).String(), uint64(7), int64(9))
	f.Fuzz(func(t *testing.T, s string, xid uint64, seq int64) {
		if _, err := aviso.ParseFeedCursor("after", s); err != nil && aviso.ErrorCode(err) != aviso.EINVALIDCURSOR {
			t.Fatalf("ParseFeedCursor(%q) = %v", s, err)
		}
		if seq < 0 {
			return
		}
		c := aviso.FeedCursor{XID: xid, Seq: seq}
		if back, err := aviso.ParseFeedCursor("after", c.String()); err != nil || back != c {
			t.Fatalf("ParseFeedCursor(%v.String()) = %v, %v", c, back, err)
		}
	})
}

// FuzzDurationJSON: a duration reads any JSON without panicking, and what it reads it writes
// back to the same duration.
func FuzzDurationJSON(f *testing.F) {
	for _, s := range []string{`"25s"`, `"1h30m"`, `"-5m"`, `"0s"`, `25`, `null`, `"soon"`, `"9223372036854775807ns"`, `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d aviso.Duration
		if err := json.Unmarshal(b, &d); err != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal %v: %v", time.Duration(d), err)
		}
		var back aviso.Duration
		if err := json.Unmarshal(out, &back); err != nil || back != d {
			t.Fatalf("%s read as %v, written as %s, read back as %v (%v)", b, time.Duration(d), out, time.Duration(back), err)
		}
	})
}

// FuzzEndpointURL feeds the URL validator anything: an accepted URL is an absolute http(s) URL
// with a host, no credentials, a port from 1 to 65535 and text both stores keep; RedactURL of
// it holds no query string.
func FuzzEndpointURL(f *testing.F) {
	for _, s := range []string{"https://example.com/hook", "http://[::1%25lo]:8080/x", "http://2130706433/", "http://0x7f.1/",
		"https://h:0/", "https://h:65535/", "http://u:p@h/", "https://h/?token=x#f", "http://h\x00/", "http://\xff/", "ftp://h/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ep := aviso.Endpoint{URL: raw, Format: aviso.FormatStandard, TimeoutSeconds: 10}
		err := ep.Validate()
		if err != nil {
			if aviso.ErrorField(err) != "url" {
				t.Fatalf("Validate(%q) = %v, not on url", raw, err)
			}
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
			t.Fatalf("accepted %q (%v)", raw, perr)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				t.Fatalf("accepted port %q in %q", p, raw)
			}
		}
		if !utf8.ValidString(raw) || strings.ContainsRune(raw, 0) {
			t.Fatalf("accepted text a store cannot keep: %q", raw)
		}
		r := aviso.RedactURL(raw)
		if ru, err := url.Parse(r); err != nil || ru.RawQuery != "" || ru.ForceQuery || ru.User != nil || ru.Fragment != "" || ru.Host != u.Host {
			t.Fatalf("RedactURL(%q) = %q: want the URL without its userinfo, query and fragment (%v)", raw, r, err)
		}
	})
}

// FuzzCheckJSONText: the text check never panics, and what it accepts decodes to strings that
// are UTF-8 without NUL, the text both stores keep.
func FuzzCheckJSONText(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"\u0000"}`, `{"a":"\\u0000"}`, `["\ud800"]`, `"\ud83d\ude00"`, "{\"a\":\"\xff\"}",
		`{"a":[{"b":"\u0000"}]}`, `{"\u0000":1}`, `"\`, `"\u00`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := aviso.CheckJSONText("data", b)
		switch aviso.ErrorCode(err) {
		case "", aviso.EINVALIDJSON, aviso.EINVALID:
		default:
			t.Fatalf("CheckJSONText(%q) = %v", b, err)
		}
		if aviso.ErrorCode(err) == aviso.EINVALID && !strings.HasPrefix(aviso.ErrorField(err), "/data") && aviso.ErrorField(err) != "data" {
			t.Fatalf("CheckJSONText(%q) names %q, not a place in data", b, aviso.ErrorField(err))
		}
		var v any
		if err != nil || json.Unmarshal(b, &v) != nil {
			return
		}
		var walk func(any)
		walk = func(v any) {
			switch x := v.(type) {
			case string:
				if strings.ContainsRune(x, 0) {
					t.Fatalf("accepted %q, which holds a NUL", b)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			case map[string]any:
				for k, e := range x {
					walk(k)
					walk(e)
				}
			}
		}
		walk(v)
	})
}
