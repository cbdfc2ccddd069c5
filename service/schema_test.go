package service

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

func testService() *Service {
	return &Service{log: slog.New(slog.NewTextHandler(io.Discard, nil)), schemas: map[string]*cachedSchema{}}
}

const testSchema = `{"type":"object","required":["total","lines"],"properties":{
	"total":{"type":"number","minimum":0},
	"a/b":{"type":"string"},
	"lines":{"type":"array","items":{"type":"object","required":["sku"],"properties":{"sku":{"type":"string","minLength":1}}}}}}`

func TestValidateData(t *testing.T) {
	et := &aviso.EventType{Name: "invoice.created", Schema: json.RawMessage(testSchema), UpdatedAt: time.Unix(1, 0)}
	tests := []struct {
		name, data, field, rule string
	}{
		{"valid", `{"total":1,"lines":[{"sku":"A"}]}`, "", ""},
		{"minimum", `{"total":-1,"lines":[]}`, "/data/total", "minimum"},
		{"required", `{"lines":[]}`, "/data", "required"},
		{"nested item", `{"total":1,"lines":[{"sku":"A"},{"sku":""}]}`, "/data/lines/1/sku", "minLength"},
		{"escaped pointer", `{"total":1,"lines":[],"a/b":5}`, "/data/a~1b", "type"},
		{"not an object", `[]`, "/data", "type"},
	}
	s := testService()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.validateData(context.Background(), et, []byte(tc.data))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid data refused: %v", err)
				}
				return
			}
			if aviso.ErrorCode(err) != aviso.EINVALID || aviso.ErrorField(err) != tc.field ||
				!strings.Contains(aviso.ErrorMessage(err), tc.rule) {
				t.Fatalf("got %v, want field %s naming %s", err, tc.field, tc.rule)
			}
		})
	}
	t.Run("cache follows UpdatedAt", func(t *testing.T) {
		changed := *et
		changed.Schema = json.RawMessage(`{"type":"array"}`)
		if err := s.validateData(context.Background(), &changed, []byte(`[]`)); err == nil {
			t.Fatal("the cached schema was used although the type did not change: test is wrong")
		}
		changed.UpdatedAt = et.UpdatedAt.Add(time.Second)
		if err := s.validateData(context.Background(), &changed, []byte(`[]`)); err != nil {
			t.Fatalf("the edited schema was not recompiled: %v", err)
		}
	})
}

func TestCompileSchemaRefusesRemoteRefs(t *testing.T) {
	if _, err := compileSchema([]byte(`{"$ref":"https://example.com/schema.json"}`)); err == nil {
		t.Fatal("a schema with a remote $ref compiled")
	}
}

// FuzzValidateData checks that any data either passes or fails with EINVALID naming a pointer
// under /data — never a panic or an internal error.
func FuzzValidateData(f *testing.F) {
	for _, s := range []string{`{"total":1,"lines":[]}`, `{"total":-1}`, `[]`, `null`, `{"lines":[{"sku":1}]}`, `"x"`, `{"a/b":{}}`} {
		f.Add([]byte(s))
	}
	et := &aviso.EventType{Name: "invoice.created", Schema: json.RawMessage(testSchema)}
	s := testService()
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		err := s.validateData(context.Background(), et, data)
		if err == nil {
			return
		}
		if aviso.ErrorCode(err) != aviso.EINVALID || !strings.HasPrefix(aviso.ErrorField(err), "/data") {
			t.Fatalf("%s: %v", data, err)
		}
	})
}
