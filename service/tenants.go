package service

import (
	"context"
	"fmt"
	"slices"

	"github.com/aviso-dev/aviso"
)

// TenantInput creates a tenant. ID is optional: one is generated when empty.
type TenantInput struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Metadata map[string]string `json:"metadata"`
}

// TenantPatch changes a tenant; nil fields are left as they are.
type TenantPatch struct {
	Name     *string            `json:"name"`
	Metadata *map[string]string `json:"metadata"`
}

// CreateTenant stores a new tenant. Root only (EFORBIDDEN); EINVALID; ECONFLICT if the ID is taken.
func (s *Service) CreateTenant(ctx context.Context, p aviso.Principal, in TenantInput) (*aviso.Tenant, error) {
	if err := requireRoot(p, "create tenants"); err != nil {
		return nil, err
	}
	now := s.now()
	t := &aviso.Tenant{ID: in.ID, Name: in.Name, Metadata: in.Metadata, CreatedAt: now, UpdatedAt: now}
	if t.ID == "" {
		t.ID = aviso.NewID(aviso.PrefixTenant, now)
	}
	if t.Metadata == nil {
		t.Metadata = map[string]string{}
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if t.ID == aviso.OperationalTenant {
		return nil, aviso.Invalid("id", "%q is reserved for the operational endpoints (/v1/operational-endpoints); choose another ID", t.ID)
	}
	if err := s.store.CreateTenant(ctx, t); err != nil {
		if aviso.ErrorCode(err) == aviso.ECONFLICT {
			return nil, aviso.Errorf(aviso.ECONFLICT, "tenant %q already exists", t.ID)
		}
		return nil, fmt.Errorf("create tenant: %w", err)
	}
	return t, nil
}

// GetTenant returns a tenant. A tenant key may read its own tenant. ENOTFOUND.
func (s *Service) GetTenant(ctx context.Context, p aviso.Principal, id string) (*aviso.Tenant, error) {
	return s.tenant(ctx, p, id)
}

// ListTenants lists tenants ordered by ID. Root only.
func (s *Service) ListTenants(ctx context.Context, p aviso.Principal, lp aviso.ListParams) (*aviso.Page[*aviso.Tenant], error) {
	if err := requireRoot(p, "list tenants"); err != nil {
		return nil, err
	}
	page, err := listPage(aviso.TenantsCursor, lp, func(lp aviso.ListParams) (*aviso.Page[*aviso.Tenant], error) {
		return s.listVisibleTenants(ctx, p, lp)
	})
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return page, nil
}

// listVisibleTenants is the store's page of tenants without those p may not see (the
// operational tenant is not one of the platform's customers). A page that lost one is filled
// from the next, so a page is short only at the end of the list and the cursor is the store's
// cursor after the last tenant shown.
func (s *Service) listVisibleTenants(ctx context.Context, p aviso.Principal, lp aviso.ListParams) (*aviso.Page[*aviso.Tenant], error) {
	page, err := s.store.ListTenants(ctx, lp)
	if err != nil {
		return nil, err
	}
	for {
		read := len(page.Data)
		page.Data = slices.DeleteFunc(page.Data, func(t *aviso.Tenant) bool { return !p.CanSeeTenant(t.ID) })
		if len(page.Data) == read || !page.HasMore {
			return page, nil
		}
		more, err := s.store.ListTenants(ctx, aviso.ListParams{After: page.NextCursor, Limit: read - len(page.Data)})
		if err != nil {
			return nil, err
		}
		page.Data, page.HasMore, page.NextCursor = append(page.Data, more.Data...), more.HasMore, more.NextCursor
	}
}

// UpdateTenant changes a tenant's name and metadata. Root only; ENOTFOUND; EINVALID.
func (s *Service) UpdateTenant(ctx context.Context, p aviso.Principal, id string, in TenantPatch) (*aviso.Tenant, error) {
	if err := requireRoot(p, "change tenants"); err != nil {
		return nil, err
	}
	t, err := s.tenant(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if in.Name != nil {
		t.Name = *in.Name
	}
	if in.Metadata != nil {
		t.Metadata = *in.Metadata
		if t.Metadata == nil {
			t.Metadata = map[string]string{}
		}
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	t.UpdatedAt = s.now()
	if err := s.store.UpdateTenant(ctx, t); err != nil {
		return nil, fmt.Errorf("update tenant: %w", err)
	}
	return t, nil
}

// DeleteTenant removes a tenant and everything it owns. Root only; ENOTFOUND.
func (s *Service) DeleteTenant(ctx context.Context, p aviso.Principal, id string) error {
	if err := requireRoot(p, "delete tenants"); err != nil {
		return err
	}
	if !p.CanSeeTenant(id) {
		return tenantNotFound(id) // the operational tenant
	}
	defer s.forgetTenant(id)
	if err := s.store.DeleteTenant(ctx, id); err != nil {
		if aviso.ErrorCode(err) == aviso.ENOTFOUND {
			return tenantNotFound(id)
		}
		return fmt.Errorf("delete tenant: %w", err)
	}
	s.log.InfoContext(ctx, "tenant deleted", "tenant_id", id)
	return nil
}

// forgetTenant drops what the read caches hold of a tenant: itself, its endpoints and (not
// knowing which are its) every API key.
func (s *Service) forgetTenant(id string) {
	s.tenants.forget(id)
	s.endpoints.forget(id)
	s.keys.forgetAll()
}
