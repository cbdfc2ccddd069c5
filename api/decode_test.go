package api

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name, body, code, field string
	}{
		{"ok", `{"url":"http://x","verify":false}`, "", ""},
		{"syntax", `{"url":}`, aviso.EBADREQUEST, ""},
		{"truncated", `{"url":"x"`, aviso.EBADREQUEST, ""},
		{"empty", ``, aviso.EBADREQUEST, ""},
		{"two values", `{} {}`, aviso.EBADREQUEST, ""},
		{"trailing garbage", `{} x`, aviso.EBADREQUEST, ""},
		{"unknown field", `{"urll":"x"}`, aviso.EINVALID, "urll"},
		{"wrong type", `{"timeout_seconds":"ten"}`, aviso.EINVALID, "timeout_seconds"},
		{"bad duration", `{"retry_schedule":["5s","soon"]}`, aviso.EINVALID, "retry_schedule"},
		{"duration not a string", `{"retry_schedule":[5]}`, aviso.EINVALID, "retry_schedule"},
		{"array body", `[]`, aviso.EBADREQUEST, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in service.EndpointInput
			err := decode(httptest.NewRequest("POST", "/", strings.NewReader(tc.body)), &in)
			if aviso.ErrorCode(err) != tc.code || aviso.ErrorField(err) != tc.field {
				t.Fatalf("decode(%s) = %v, want code %q field %q", tc.body, err, tc.code, tc.field)
			}
		})
	}
}

// FuzzDecode checks that any body decodes or fails with a client error code — never a panic
// and never an internal error.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"url":"http://x"}`, `{"headers":{"a":"b"}}`, `{"retry_schedule":["5s"]}`,
		`{"event_types":[1]}`, `{`, `[]`, `null`, `{"verify":null}`, `{"x":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, v := range []any{&service.EndpointInput{}, &service.EndpointPatch{}, &service.PublishInput{}} {
			err := decode(httptest.NewRequest("POST", "/", strings.NewReader(body)), v)
			switch aviso.ErrorCode(err) {
			case "", aviso.EBADREQUEST, aviso.EINVALID:
			default:
				t.Fatalf("decode(%q) = %v", body, err)
			}
		}
	})
}
