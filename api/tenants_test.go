package api_test

import (
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/aviso-dev/aviso"
)

// TestTenantPagesFull: GET /v1/tenants leaves the operational tenant out without making a page
// short. At every limit, each page but the last holds limit tenants and the pages together hold
// every tenant once, on both stores.
func TestTenantPagesFull(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := newEnvOn(t, st.open(t), nil)
			if err := e.svc.EnsureOperationalTenant(t.Context()); err != nil {
				t.Fatal(err)
			}
			// "_aviso" falls among these in byte order ('_' sorts between upper and lower case)
			// and in a collation that passes over punctuation (between "acme" and "beta").
			ids := []string{"ACME", "Zeta", "acme", "avis", "avisp", "beta", "zz"}
			for _, id := range ids {
				e.call(t, "POST", "/v1/tenants", e.root, map[string]any{"id": id, "name": "Tenant " + id}, 201, nil)
			}
			slices.Sort(ids)
			for limit := 1; limit <= len(ids)+1; limit++ {
				var got []string
				after := ""
				for pages := 1; ; pages++ {
					var page aviso.Page[*aviso.Tenant]
					e.call(t, "GET", fmt.Sprintf("/v1/tenants?limit=%d&after=%s", limit, url.QueryEscape(after)), e.root, nil, 200, &page)
					for _, tn := range page.Data {
						got = append(got, tn.ID)
					}
					if page.HasMore && len(page.Data) != limit {
						t.Errorf("limit %d: page %d holds %d tenants and has more", limit, pages, len(page.Data))
					}
					if !page.HasMore || pages > len(ids)+1 {
						break
					}
					after = page.NextCursor
				}
				slices.Sort(got)
				if !slices.Equal(got, ids) {
					t.Errorf("limit %d: listed %v, want %v", limit, got, ids)
				}
			}
		})
	}
}
