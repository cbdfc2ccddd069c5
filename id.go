package aviso

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"time"
)

// ID prefixes, so an identifier says what it names.
const (
	PrefixTenant   = "ten_"
	PrefixEndpoint = "ep_"
	PrefixEvent    = "evt_"
	PrefixDelivery = "dlv_"
	PrefixAttempt  = "att_"
	PrefixKey      = "key_"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns prefix followed by a 26-character ULID-style identifier: 48 bits of milliseconds
// since the epoch then 80 random bits, in Crockford base32, so IDs sort by creation time.
func NewID(prefix string, now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails (Go 1.24+)
	return encodeID(prefix, b)
}

// IDFloor returns the smallest ID that NewID(prefix, t) can return: every ID minted at t's
// millisecond or later sorts at or after it, every one minted before sorts before it. A store
// finds the rows created since t (whose IDs were minted at their creation) through an ID range.
// Times before the epoch (such as the zero time) give the lowest ID of all.
func IDFloor(prefix string, t time.Time) string {
	var b [16]byte
	if ms := t.UnixMilli(); ms > 0 {
		binary.BigEndian.PutUint64(b[0:8], uint64(ms)<<16)
	}
	return encodeID(prefix, b)
}

// IDCeiling returns the smallest ID minted after t's millisecond: every ID that NewID(prefix, u)
// returns for u up to t sorts before it. With IDFloor, it turns a creation-time window into an
// ID range.
func IDCeiling(prefix string, t time.Time) string {
	return IDFloor(prefix, time.UnixMilli(t.UnixMilli()+1))
}

// encodeID writes prefix and the 128 bits of b as 26 base32 digits; the first digit carries the
// top 3 bits.
func encodeID(prefix string, b [16]byte) string {
	var sb strings.Builder
	sb.Grow(len(prefix) + 26)
	sb.WriteString(prefix)
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	sb.Write(out[:])
	return sb.String()
}
