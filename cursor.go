package aviso

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"unicode/utf8"
)

// CursorKind names the list a cursor pages through. Each kind has one decoder, Decode: the
// service decodes every ?after= through it before a store sees it and encodes every next_cursor
// it hands out, so a cursor is refused the same way (EINVALIDCURSOR) on every store and every
// list, and a store's own cursor format (an ID on PostgreSQL, an encoded sort key on SQLite)
// can change without the API's changing.
//
// An encoded cursor is the URL-safe base64 of a version byte, the kind, a CRC-32 of kind and
// store cursor, and the store cursor: opaque to clients, and a cursor of another list, a
// truncated one or a made-up one is refused rather than passed to a store.
type CursorKind byte

// The cursor kinds, one per list.
const (
	TenantsCursor    CursorKind = 't'
	EventTypesCursor CursorKind = 'c'
	EndpointsCursor  CursorKind = 'e'
	DocumentCursor   CursorKind = 'r' // a document's events, newest first
	DeliveriesCursor CursorKind = 'd' // a tenant's, an endpoint's and an event's deliveries
)

// EINVALIDCURSOR is a list or feed cursor that Aviso did not hand out: 422 (Field names it).
const EINVALIDCURSOR = "invalid_cursor"

const cursorVersion = 1

// Encode wraps a store's cursor for the API; "" (no next page) stays "".
func (k CursorKind) Encode(storeCursor string) string {
	if storeCursor == "" {
		return ""
	}
	b := make([]byte, 6, 6+len(storeCursor))
	b[0], b[1] = cursorVersion, byte(k)
	b = append(b, storeCursor...)
	binary.BigEndian.PutUint32(b[2:6], crc32.ChecksumIEEE(append([]byte{byte(k)}, storeCursor...)))
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode returns the store cursor that s, a cursor made by Encode for this kind, wraps; "" is
// the first page. Anything else is EINVALIDCURSOR naming the field "after".
func (k CursorKind) Decode(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 7 || b[0] != cursorVersion || b[1] != byte(k) ||
		binary.BigEndian.Uint32(b[2:6]) != crc32.ChecksumIEEE(append([]byte{b[1]}, b[6:]...)) ||
		!utf8.Valid(b[6:]) {
		return "", &Error{Code: EINVALIDCURSOR, Field: "after",
			Message: "is not a cursor of this list; pass the next_cursor of the previous page, or leave it out for the first page"}
	}
	return string(b[6:]), nil
}
