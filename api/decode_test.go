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
		{"syntax", `{"url":}`, aviso.EINVALIDJSON, ""},
		{"truncated", `{"url":"x"`, aviso.EINVALIDJSON, ""},
		{"empty", ``, aviso.EBADREQUEST, ""},
		{"two values", `{} {}`, aviso.EINVALIDJSON, ""},
		{"trailing garbage", `{} x`, aviso.EINVALIDJSON, ""},
		{"unknown field", `{"urll":"x"}`, aviso.EINVALID, "urll"},
		{"wrong type", `{"timeout_seconds":"ten"}`, aviso.EINVALID, "timeout_seconds"},
		{"bad duration", `{"retry_schedule":["5s","soon"]}`, aviso.EINVALID, "retry_schedule"},
		{"duration not a string", `{"retry_schedule":[5]}`, aviso.EINVALID, "retry_schedule"},
		{"array body", `[]`, aviso.EBADREQUEST, ""},
		{"not UTF-8", "{\"url\":\"http://x/\xff\"}", aviso.EINVALIDJSON, ""},
		{"not UTF-8 in a key", "{\"ur\xc3\":1}", aviso.EINVALIDJSON, ""},
		{"lone surrogate", `{"description":"\ud800"}`, aviso.EINVALIDJSON, ""},
		{"lone low surrogate", `{"description":"\udc00x"}`, aviso.EINVALIDJSON, ""},
		{"surrogate pair", `{"description":"\ud83d\ude00"}`, "", ""},
		{"escaped backslash before u0000", `{"description":"\\u0000"}`, "", ""},
		{"NUL", `{"description":"a\u0000b"}`, aviso.EINVALID, "description"},
		{"NUL in a header", `{"headers":{"X-A":"\u0000"}}`, aviso.EINVALID, "/headers/X-A"},
		{"NUL in a list", `{"event_types":["a","\u0000"]}`, aviso.EINVALID, "/event_types/1"},
		{"NUL in a key", `{"metadata":{"a\u0000":"b"}}`, aviso.EINVALID, "/metadata/a\\u0000"},
		{"NUL after a nested object", `{"metadata":{"a":"b"},"description":"\u0000"}`, aviso.EINVALID, "description"},
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
		for _, v := range []any{&service.EndpointInput{}, &service.EndpointPatch{}, &service.PublishInput{},
			&service.TenantInput{}, &service.TenantPatch{}, &service.TestInput{}, &service.ReplayInput{}} {
			err := decode(httptest.NewRequest("POST", "/", strings.NewReader(body)), v)
			switch aviso.ErrorCode(err) {
			case "", aviso.EBADREQUEST, aviso.EINVALIDJSON, aviso.EINVALID:
			default:
				t.Fatalf("decode(%q) = %v", body, err)
			}
		}
	})
}
