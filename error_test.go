package aviso_test

import (
	"testing"

	"github.com/aviso-dev/aviso"
)

func TestHTTPStatus(t *testing.T) {
	want := map[string]int{aviso.EBADREQUEST: 400, aviso.EUNAUTHORIZED: 401, aviso.EFORBIDDEN: 403,
		aviso.ENOTFOUND: 404, aviso.ECONFLICT: 409, aviso.ETOOLARGE: 413, aviso.EINVALID: 422,
		aviso.EUNAVAILABLE: 503, aviso.ESTORAGE: 503, aviso.EINTERNAL: 500, "something else": 500,
		aviso.EINVALIDJSON: 400, aviso.EINVALIDTEXT: 400, aviso.EINVALIDCURSOR: 422}
	for code, status := range want {
		if got := aviso.HTTPStatus(code); got != status {
			t.Errorf("HTTPStatus(%q) = %d, want %d", code, got, status)
		}
	}
}
