package postgres

import (
	"context"
	"encoding/json"

	"github.com/aviso-dev/aviso"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CreateTenant stores a new tenant. ECONFLICT if the ID is taken.
func (s *Store) CreateTenant(ctx context.Context, t *aviso.Tenant) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO tenants (id, name, metadata, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5)`, t.ID, t.Name, nonNilMap(t.Metadata), t.CreatedAt, t.UpdatedAt)
	return dbError("create tenant", "tenant", err)
}

const tenantCols = `id, name, metadata, created_at, updated_at`

func scanTenant(row pgx.Row) (*aviso.Tenant, error) {
	var t aviso.Tenant
	if err := row.Scan(&t.ID, &t.Name, &t.Metadata, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return nil, err
	}
	t.Metadata = nonNilMap(t.Metadata)
	t.CreatedAt, t.UpdatedAt = utc(t.CreatedAt), utc(t.UpdatedAt)
	return &t, nil
}

// GetTenant returns a tenant. ENOTFOUND.
func (s *Store) GetTenant(ctx context.Context, id string) (*aviso.Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantCols+` FROM tenants WHERE id = $1`, id))
	if err != nil {
		return nil, dbError("get tenant", "tenant", err)
	}
	return t, nil
}

// ListTenants lists tenants ordered by ID; the cursor is the last ID.
func (s *Store) ListTenants(ctx context.Context, p aviso.ListParams) (*aviso.Page[*aviso.Tenant], error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tenantCols+` FROM tenants WHERE id > $1 ORDER BY id LIMIT $2`,
		p.After, p.Size()+1)
	if err != nil {
		return nil, dbError("list tenants", "tenant", err)
	}
	page, err := collectPage(rows, p.Size(), scanTenant, func(t *aviso.Tenant) string { return t.ID })
	return page, dbError("list tenants", "tenant", err)
}

// UpdateTenant replaces the name, metadata and UpdatedAt. ENOTFOUND.
func (s *Store) UpdateTenant(ctx context.Context, t *aviso.Tenant) error {
	tag, err := s.pool.Exec(ctx, `UPDATE tenants SET name = $2, metadata = $3, updated_at = $4 WHERE id = $1`,
		t.ID, t.Name, nonNilMap(t.Metadata), t.UpdatedAt)
	return dbError("update tenant", "tenant", affected(tag.RowsAffected(), err))
}

// DeleteTenant removes a tenant; the foreign keys cascade to everything it owns. ENOTFOUND.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	var tag pgconn.CommandTag
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		tag, err = tx.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, id)
		return err
	})
	return dbError("delete tenant", "tenant", affected(tag.RowsAffected(), err))
}

// SaveAPIKey inserts or replaces a key. ENOTFOUND if TenantID names no tenant.
func (s *Store) SaveAPIKey(ctx context.Context, k *aviso.APIKey) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO api_keys (id, tenant_id, hash, prefix, created_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, hash = excluded.hash,
			prefix = excluded.prefix, created_at = excluded.created_at`,
		k.ID, nullString(k.TenantID), k.Hash, k.Prefix, k.CreatedAt)
	return dbError("save api key", "api key", err)
}

const keyCols = `id, coalesce(tenant_id, ''), hash, prefix, created_at`

func scanKey(row pgx.Row) (*aviso.APIKey, error) {
	var k aviso.APIKey
	if err := row.Scan(&k.ID, &k.TenantID, &k.Hash, &k.Prefix, &k.CreatedAt); err != nil {
		return nil, err
	}
	k.CreatedAt = utc(k.CreatedAt)
	return &k, nil
}

// GetAPIKey returns a key by ID. ENOTFOUND.
func (s *Store) GetAPIKey(ctx context.Context, id string) (*aviso.APIKey, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys WHERE id = $1`, id))
	if err != nil {
		return nil, dbError("get api key", "api key", err)
	}
	return k, nil
}

// GetAPIKeyByHash returns the key with the given hash. ENOTFOUND.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash string) (*aviso.APIKey, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys WHERE hash = $1`, hash))
	if err != nil {
		return nil, dbError("get api key by hash", "api key", err)
	}
	return k, nil
}

// CreateEventType adds to the catalog. ECONFLICT if the name is taken.
func (s *Store) CreateEventType(ctx context.Context, t *aviso.EventType) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO event_types (name, description, descriptions, schema, example, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.Name, t.Description, nonNilMap(t.Descriptions), rawJSON(t.Schema), rawJSON(t.Example), t.CreatedAt, t.UpdatedAt)
	return dbError("create event type", "event type", err)
}

const eventTypeCols = `name, description, descriptions, schema, example, created_at, updated_at`

func scanEventType(row pgx.Row) (*aviso.EventType, error) {
	var t aviso.EventType
	var schema, example []byte
	if err := row.Scan(&t.Name, &t.Description, &t.Descriptions, &schema, &example, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return nil, err
	}
	t.Descriptions = nonNilMap(t.Descriptions)
	if schema != nil {
		t.Schema = json.RawMessage(schema)
	}
	if example != nil {
		t.Example = json.RawMessage(example)
	}
	t.CreatedAt, t.UpdatedAt = utc(t.CreatedAt), utc(t.UpdatedAt)
	return &t, nil
}

// GetEventType returns a catalog entry. ENOTFOUND.
func (s *Store) GetEventType(ctx context.Context, name string) (*aviso.EventType, error) {
	t, err := scanEventType(s.pool.QueryRow(ctx, `SELECT `+eventTypeCols+` FROM event_types WHERE name = $1`, name))
	if err != nil {
		return nil, dbError("get event type", "event type", err)
	}
	return t, nil
}

// ListEventTypes lists the catalog ordered by name; the cursor is the last name.
func (s *Store) ListEventTypes(ctx context.Context, p aviso.ListParams) (*aviso.Page[*aviso.EventType], error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventTypeCols+` FROM event_types WHERE name > $1 ORDER BY name LIMIT $2`,
		p.After, p.Size()+1)
	if err != nil {
		return nil, dbError("list event types", "event type", err)
	}
	page, err := collectPage(rows, p.Size(), scanEventType, func(t *aviso.EventType) string { return t.Name })
	return page, dbError("list event types", "event type", err)
}

// UpdateEventType replaces descriptions, schema, example and UpdatedAt. ENOTFOUND.
func (s *Store) UpdateEventType(ctx context.Context, t *aviso.EventType) error {
	tag, err := s.pool.Exec(ctx, `UPDATE event_types SET description = $2, descriptions = $3, schema = $4,
		example = $5, updated_at = $6 WHERE name = $1`,
		t.Name, t.Description, nonNilMap(t.Descriptions), rawJSON(t.Schema), rawJSON(t.Example), t.UpdatedAt)
	return dbError("update event type", "event type", affected(tag.RowsAffected(), err))
}

// DeleteEventType removes a catalog entry. ENOTFOUND.
func (s *Store) DeleteEventType(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM event_types WHERE name = $1`, name)
	return dbError("delete event type", "event type", affected(tag.RowsAffected(), err))
}

// affected turns "no row matched" into pgx.ErrNoRows, which dbError reports as ENOTFOUND.
func affected(n int64, err error) error {
	if err == nil && n == 0 {
		return pgx.ErrNoRows
	}
	return err
}

// collectPage reads up to size items (the query asked for size+1 to learn HasMore) and sets the
// cursor to the key of the last item returned.
func collectPage[T any](rows pgx.Rows, size int, scan func(pgx.Row) (T, error), key func(T) string) (*aviso.Page[T], error) {
	defer rows.Close()
	page := &aviso.Page[T]{Data: []T{}}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		if len(page.Data) == size {
			page.HasMore = true
			break
		}
		page.Data = append(page.Data, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if page.HasMore {
		page.NextCursor = key(page.Data[len(page.Data)-1])
	}
	return page, nil
}

// nonNilMap returns m, or an empty map for nil: the suite wants maps non-nil when read, and
// storing {} rather than null keeps every map column an object.
func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// rawJSON passes JSON text through unchanged, or NULL when empty.
func rawJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
