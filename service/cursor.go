package service

import (
	"github.com/aviso-dev/aviso"
)

// listPage runs a store list for the API: lp.After, a cursor this service handed out, is
// decoded for kind before the store sees it, and the page's next cursor is encoded for kind, so
// every list on every store refuses a cursor the same way (aviso.EINVALIDCURSOR). A cursor that
// decodes but that the store still refuses (one made up with the right checksum) is refused
// with the same error.
func listPage[T any](kind aviso.CursorKind, lp aviso.ListParams, list func(aviso.ListParams) (*aviso.Page[T], error)) (*aviso.Page[T], error) {
	after, err := kind.Decode(lp.After)
	if err != nil {
		return nil, err
	}
	lp.After = after
	page, err := list(lp)
	if err != nil {
		if code := aviso.ErrorCode(err); after != "" && (code == aviso.EINVALID || code == aviso.EBADREQUEST) {
			_, err = kind.Decode("!")
		}
		return nil, err
	}
	page.NextCursor = kind.Encode(page.NextCursor)
	return page, nil
}
