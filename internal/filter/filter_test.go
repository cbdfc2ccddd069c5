package filter

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

func TestMatch(t *testing.T) {
	ev := &aviso.Event{ID: "evt_1", Type: "invoice.paid", ExternalReference: "FAC-A-0001",
		CreatedAt: time.Date(2026, 6, 18, 10, 0, 0, 0, time.UTC),
		Data:      json.RawMessage(`{"total":1190.5,"currency":"EUR","client":{"id":"123"},"items":[{"sku":"A"},{"sku":"B"}]}`)}
	data, err := Decode(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		src  string
		want bool
	}{
		{`data.total > 1000 && data.currency == "EUR"`, true},
		{`data.total > 2000`, false},
		{`external_reference startsWith "FAC-A"`, true},
		{`external_reference startsWith "FAC-B"`, false},
		{`type in ["invoice.created", "invoice.paid"]`, true},
		{`type == "invoice.created"`, false},
		{`data.client.id == "123"`, true},
		{`any(data.items, .sku == "B")`, true},
		{`len(data.items) == 3`, false},
		{`created_at >= "2026-06-01"`, true},
		{`data.missing == nil`, true},
		{`data.missing > 5`, false}, // a run-time error: no match
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, err := Compile(tt.src)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got, _ := p.Match(ev, data)
			if got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		src        string
		wantColumn int
		wantText   string
	}{
		{`data.total >`, 12, "unexpected token EOF"},
		{`type > 5`, 6, "invalid operation"},
		{`"text"`, 0, "expected bool"},
		{`unknown_var == 1`, 1, "unknown name"},
		{strings.Repeat("a", MaxLen+1), 0, "at most 1000"},
		{strings.Repeat(`1<2||`, 190) + `1<2`, 0, "exceeds maximum allowed nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.src[:min(len(tt.src), 30)], func(t *testing.T) {
			_, err := Compile(tt.src)
			fe, ok := err.(*Error)
			if !ok {
				t.Fatalf("Compile(%q) = %v, want an *Error", tt.src, err)
			}
			if !strings.Contains(fe.Error(), tt.wantText) {
				t.Errorf("error %q, want it to say %q", fe.Error(), tt.wantText)
			}
			if tt.wantColumn != 0 && (fe.Line != 1 || fe.Column != tt.wantColumn) {
				t.Errorf("position %d:%d, want 1:%d", fe.Line, fe.Column, tt.wantColumn)
			}
		})
	}
}

// FuzzCompile: any source either compiles or fails with an *Error, and a compiled filter runs on
// an event without panicking.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{`data.total > 1000`, `external_reference startsWith "F"`, `type in ["a"]`,
		`any(data.items, .x > 1)`, `1 +`, `"\x00"`, `data[0]`} {
		f.Add(s)
	}
	ev := &aviso.Event{ID: "evt_1", Type: "invoice.paid", Data: json.RawMessage(`{"total":1,"items":[{"x":2}]}`)}
	data, _ := Decode(ev.Data)
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile(src)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Compile(%q) error %T, want *Error", src, err)
			}
			return
		}
		_, _ = p.Match(ev, data)
	})
}
