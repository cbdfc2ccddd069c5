package sqlite_test

import (
	"encoding/base64"
	"path/filepath"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/sqlite"
	"github.com/aviso-dev/aviso/storetest"
)

// FuzzListCursor feeds arbitrary cursors to every list: each must answer a page or EINVALID,
// never panic or fail internally.
func FuzzListCursor(f *testing.F) {
	s := open(f, filepath.Join(f.TempDir(), "aviso.db"), sqlite.Options{Synchronous: "NORMAL"})
	ten := storetest.NewTenant(f, s)
	ep := storetest.NewEndpoint(f, s, ten.ID)
	for i := range 3 {
		storetest.Publish(f, s, ten.ID, storetest.Base().Add(time.Duration(i)*time.Second), ep)
	}
	ctx := f.Context()
	small := aviso.ListParams{Limit: 1}
	if p, err := s.ListEvents(ctx, aviso.ListEventsParams{TenantID: ten.ID, ListParams: small}); err == nil {
		f.Add(p.NextCursor)
	}
	if p, err := s.ListDeliveries(ctx, aviso.ListDeliveriesParams{TenantID: ten.ID, ListParams: small}); err == nil {
		f.Add(p.NextCursor)
	}
	for _, seed := range []string{"", "!", "====", base64.RawURLEncoding.EncodeToString([]byte("-1")),
		base64.RawURLEncoding.EncodeToString([]byte("99999999999999999999")), base64.RawURLEncoding.EncodeToString([]byte("\x00\xff"))} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, after string) {
		lp := aviso.ListParams{After: after, Limit: 2}
		check := func(what string, n int, err error) {
			t.Helper()
			if code := aviso.ErrorCode(err); code != "" && code != aviso.EINVALID {
				t.Errorf("%s with cursor %q: %v, want a page or %s", what, after, err, aviso.EINVALID)
			}
			if err == nil && n > 2 {
				t.Errorf("%s with cursor %q: %d items, more than the limit", what, after, n)
			}
		}
		for _, desc := range []bool{false, true} {
			pe, err := s.ListEvents(ctx, aviso.ListEventsParams{TenantID: ten.ID, ListParams: lp, Desc: desc})
			check("list events", lenOf(pe), err)
			pd, err := s.ListDeliveries(ctx, aviso.ListDeliveriesParams{TenantID: ten.ID, ListParams: lp, Desc: desc})
			check("list deliveries", lenOf(pd), err)
		}
		pt, err := s.ListTenants(ctx, lp)
		check("list tenants", lenOf(pt), err)
		pn, err := s.ListEndpoints(ctx, aviso.ListEndpointsParams{TenantID: ten.ID, ListParams: lp})
		check("list endpoints", lenOf(pn), err)
		px, err := s.ListEventTypes(ctx, lp)
		check("list event types", lenOf(px), err)
	})
}

func lenOf[T any](p *aviso.Page[T]) int {
	if p == nil {
		return 0
	}
	return len(p.Data)
}
