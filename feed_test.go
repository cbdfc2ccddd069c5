package aviso

import (
	"math"
	"testing"
)

func TestFeedCursor(t *testing.T) {
	for _, c := range []FeedCursor{{}, {Seq: 1}, {XID: 7, Seq: 42}, {XID: math.MaxUint64, Seq: math.MaxInt64}} {
		got, err := ParseFeedCursor("after", c.String())
		if err != nil || got != c {
			t.Errorf("%+v: encoded %q, parsed back %+v, %v", c, c.String(), got, err)
		}
	}
	if c, err := ParseFeedCursor("after", ""); err != nil || c != (FeedCursor{}) {
		t.Errorf(`"": %+v, %v; want the start of the feed`, c, err)
	}
	negative := FeedCursor{Seq: -1}.String()
	for _, s := range []string{"12", "zzz", "AQ", negative, FeedCursor{Seq: 1}.String() + "A", "AgAAAAAAAAAAAAAAAAAAAAE"} {
		_, err := ParseFeedCursor("Last-Event-ID", s)
		if ErrorCode(err) != EINVALIDCURSOR || ErrorField(err) != "Last-Event-ID" {
			t.Errorf("%q: %v; want invalid_cursor naming Last-Event-ID", s, err)
		}
	}
	if !(FeedCursor{XID: 1, Seq: 9}).Less(FeedCursor{XID: 2}) || !(FeedCursor{XID: 2, Seq: 1}).Less(FeedCursor{XID: 2, Seq: 2}) ||
		(FeedCursor{XID: 2}).Less(FeedCursor{XID: 1, Seq: 9}) {
		t.Error("Less does not order by XID, then Seq")
	}
}

// FuzzParseFeedCursor: whatever it is given, ParseFeedCursor accepts only what String makes, and
// what it accepts encodes back to the same text.
func FuzzParseFeedCursor(f *testing.F) {
	f.Add("")
	f.Add(FeedCursor{XID: 7, Seq: 42}.String())
	f.Add("AQAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseFeedCursor("after", s)
		if err != nil {
			if ErrorCode(err) != EINVALIDCURSOR {
				t.Fatalf("%q: %v, want invalid_cursor", s, err)
			}
			return
		}
		if s != "" && c.String() != s {
			t.Fatalf("%q parsed as %+v, which encodes as %q", s, c, c.String())
		}
		if c.Seq < 0 {
			t.Fatalf("%q: negative seq %d", s, c.Seq)
		}
	})
}
