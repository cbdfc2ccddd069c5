package webhook

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/aviso-dev/aviso"
)

// plainBody writes the standard, tusfacturas and facturascripts bodies directly when none of
// their strings needs escaping and the data needs no compacting: byte for byte what json.Marshal
// writes for them (FuzzPlainBody checks it), without marshalling by reflection and compacting
// the data again on every attempt. ok is false otherwise, and Body marshals.
func plainBody(f aviso.Format, ev *aviso.Event, ts string) (b []byte, ok bool) {
	if !plainData(ev.Data) || !plainString(ev.ID) || !plainString(ev.Type) || !plainString(ts) {
		return nil, false
	}
	size := len(ev.Data) + len(ev.ID) + len(ev.Type) + len(ts) + len(ev.ExternalReference) + 80
	switch f {
	case aviso.FormatStandard, "", aviso.FormatTusFacturas:
		ref := ev.ExternalReference
		if f == aviso.FormatTusFacturas {
			ref = externalReference(ev)
		}
		if !plainString(ref) {
			return nil, false
		}
		b = make([]byte, 0, size)
		b = append(b, `{"id":"`...)
		b = append(b, ev.ID...)
		b = append(b, `","type":"`...)
		b = append(b, ev.Type...)
		b = append(b, `","timestamp":"`...)
		b = append(b, ts...)
		b = append(b, '"')
		if ref != "" || f == aviso.FormatTusFacturas { // omitempty in the standard format only
			b = append(b, `,"external_reference":"`...)
			b = append(b, ref...)
			b = append(b, '"')
		}
		b = append(b, `,"data":`...)
		b = append(b, ev.Data...)
		return append(b, '}'), true
	case aviso.FormatFacturaScripts:
		b = make([]byte, 0, size)
		b = append(b, `{"id":"`...)
		b = append(b, ev.ID...)
		b = append(b, `","event":"`...)
		b = append(b, ev.Type...)
		b = append(b, `","created":`...)
		b = strconv.AppendInt(b, ev.CreatedAt.Unix(), 10)
		b = append(b, `,"data":{"object":`...)
		b = append(b, ev.Data...)
		return append(b, "}}"...), true
	}
	return nil, false
}

// plainString reports whether json.Marshal writes s between quotes as it is: printable ASCII
// without the characters it escapes (quote, backslash, and <, >, & for HTML safety).
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// plainData reports whether json.Marshal writes the valid JSON data as it is when it compacts a
// json.RawMessage: no whitespace between tokens, and no <, >, &, U+2028 or U+2029 anywhere (it
// rewrites them all as \u escapes). Other UTF-8 is copied as it is.
func plainData(data []byte) bool {
	return len(data) > 0 && // json.Marshal writes null
		!spaced(data) && !bytes.ContainsAny(data, "<>&") &&
		!bytes.Contains(data, []byte("\u2028")) && !bytes.Contains(data, []byte("\u2029"))
}

// CompactData returns valid JSON data without whitespace between tokens: data itself when it has
// none, else a compacted copy. The service stores event data compacted, so that Body can write it
// on every attempt as it is; a receiver gets compact data either way.
func CompactData(data json.RawMessage) json.RawMessage {
	if !spaced(data) {
		return data
	}
	var b bytes.Buffer
	b.Grow(len(data))
	if err := json.Compact(&b, data); err != nil {
		return data
	}
	return b.Bytes()
}

// spaced reports whether JSON data has whitespace between tokens.
func spaced(data []byte) bool {
	inString := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return true
		}
	}
	return false
}
