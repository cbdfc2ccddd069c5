package storetest

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/aviso-dev/aviso"
)

// textCases are strings the API's input contract accepts (valid UTF-8 without NUL; see
// aviso.CheckText) that a store must keep as given: accents, characters outside the BMP,
// controls other than NUL, the line and paragraph separators, and a literal "\u0000".
var textCases = []string{"Peña Ñandú", "😀 ✓ €", "tab\tand\nnewline\x01\x1f\x7f", "\u2028\u2029", `\u0000`, "\ufeffbom"}

// testTextRoundTrip checks that what the input contract accepts comes back the same from every
// store: tenant names and metadata, endpoint headers and descriptions byte for byte, and event
// data — with escapes, surrogate pairs and a literal \u0000 — as the same JSON value.
func testTextRoundTrip(t *testing.T, s aviso.Store) {
	ctx := t.Context()
	for i, text := range textCases {
		ten := NewTenant(t, s)
		ten.Name, ten.Metadata = text, map[string]string{"k": text}
		if err := s.UpdateTenant(ctx, ten); err != nil {
			t.Fatalf("case %d: update tenant: %v", i, err)
		}
		got, err := s.GetTenant(ctx, ten.ID)
		if err != nil || got.Name != text || got.Metadata["k"] != text {
			t.Errorf("case %d: tenant came back %q %v (%v), want %q", i, got.Name, got.Metadata, err, text)
		}
		ep := NewEndpoint(t, s, ten.ID)
		ep.Description = text
		if err := s.UpdateEndpoint(ctx, ep); err != nil {
			t.Fatalf("case %d: update endpoint: %v", i, err)
		}
		if got := mustGetEndpoint(t, s, ten.ID, ep.ID); got.Description != text {
			t.Errorf("case %d: description came back %q, want %q", i, got.Description, text)
		}
		ne := NewEvent(ten.ID, "invoice.created", Base())
		b, _ := json.Marshal(map[string]any{"text": text, "escaped": `\u00e9 \ud83d\ude00`})
		ne.Event.Data = append(b[:len(b)-1], []byte(`,"raw":"\u00e9\ud83d\ude00\\u0000"}`)...)
		ne.Event.ExternalReference = text
		if _, err := s.InsertEvents(ctx, []aviso.NewEvent{ne}); err != nil {
			t.Fatalf("case %d: insert event: %v", i, err)
		}
		ev, err := s.GetEvent(ctx, ten.ID, ne.Event.ID)
		if err != nil {
			t.Fatalf("case %d: get event: %v", i, err)
		}
		var want, have any
		if err := json.Unmarshal(ne.Event.Data, &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(ev.Data, &have); err != nil || !reflect.DeepEqual(want, have) {
			t.Errorf("case %d: data came back %s (%v), want the value of %s", i, ev.Data, err, ne.Event.Data)
		}
		if ev.ExternalReference != text {
			t.Errorf("case %d: external reference came back %q, want %q", i, ev.ExternalReference, text)
		}
	}
}
