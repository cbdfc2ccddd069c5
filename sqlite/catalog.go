package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aviso-dev/aviso"
)

const tenantCols = `id, name, metadata, created_at, updated_at`

func scanTenant(sc scanner) (*aviso.Tenant, error) {
	var t aviso.Tenant
	var meta string
	var created, updated int64
	if err := sc.Scan(&t.ID, &t.Name, &meta, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if t.Metadata, err = decodeMap(meta); err != nil {
		return nil, err
	}
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &t, nil
}

// CreateTenant stores a new tenant. ECONFLICT if the ID is taken.
func (s *Store) CreateTenant(ctx context.Context, t *aviso.Tenant) error {
	return s.write(ctx, "create tenant", func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tenants (`+tenantCols+`) VALUES (?, ?, ?, ?, ?)`,
			t.ID, t.Name, mapText(t.Metadata), micros(t.CreatedAt), micros(t.UpdatedAt))
		return err
	})
}

// GetTenant returns a tenant. ENOTFOUND.
func (s *Store) GetTenant(ctx context.Context, id string) (*aviso.Tenant, error) {
	var t *aviso.Tenant
	err := s.read(ctx, "get tenant", func(tx *sql.Tx) (err error) {
		t, err = scanTenant(tx.QueryRowContext(ctx, `SELECT `+tenantCols+` FROM tenants WHERE id = ?`, id))
		return err
	})
	return t, err
}

// ListTenants lists tenants ordered by ID.
func (s *Store) ListTenants(ctx context.Context, p aviso.ListParams) (*aviso.Page[*aviso.Tenant], error) {
	after, err := decodeCursor(p.After)
	if err != nil {
		return nil, err
	}
	var out *aviso.Page[*aviso.Tenant]
	err = s.read(ctx, "list tenants", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+tenantCols+` FROM tenants WHERE id > ? ORDER BY id LIMIT ?`, after, p.Size()+1)
		if err != nil {
			return err
		}
		ts, err := collect(rows, scanTenant)
		out = page(ts, p.Size(), func(t *aviso.Tenant) string { return t.ID })
		return err
	})
	return out, err
}

// UpdateTenant replaces the name and metadata and stores t.UpdatedAt. ENOTFOUND.
func (s *Store) UpdateTenant(ctx context.Context, t *aviso.Tenant) error {
	return s.write(ctx, "update tenant", func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tenants SET name = ?, metadata = ?, updated_at = ? WHERE id = ?`,
			t.Name, mapText(t.Metadata), micros(t.UpdatedAt), t.ID)
		return affected(res, err, "update tenant")
	})
}

// DeleteTenant removes a tenant and, by cascade, everything it owns, in one transaction; its
// unwritten deliveries go with its events. ENOTFOUND.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	err := s.write(ctx, "delete tenant", func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tenants WHERE id = ?`, id)
		return affected(res, err, "delete tenant")
	})
	if err == nil {
		s.window.forget(func(e *entry) bool { return e.tenantID == id })
	}
	return err
}

// affected turns an update or delete that matched no row into ENOTFOUND.
func affected(res sql.Result, err error, op string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound(op)
	}
	return nil
}

const keyCols = `id, tenant_id, hash, prefix, created_at`

func scanKey(sc scanner) (*aviso.APIKey, error) {
	var k aviso.APIKey
	var tenant sql.NullString
	var created int64
	if err := sc.Scan(&k.ID, &tenant, &k.Hash, &k.Prefix, &created); err != nil {
		return nil, err
	}
	k.TenantID, k.CreatedAt = tenant.String, fromMicros(created)
	return &k, nil
}

// SaveAPIKey inserts a key or replaces the key with the same ID. ENOTFOUND for an unknown tenant.
func (s *Store) SaveAPIKey(ctx context.Context, k *aviso.APIKey) error {
	tenant := sql.NullString{String: k.TenantID, Valid: k.TenantID != ""}
	return s.write(ctx, "save api key", func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (`+keyCols+`) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, hash = excluded.hash,
				prefix = excluded.prefix, created_at = excluded.created_at`,
			k.ID, tenant, k.Hash, k.Prefix, micros(k.CreatedAt))
		return err
	})
}

// GetAPIKey returns a key by ID. ENOTFOUND.
func (s *Store) GetAPIKey(ctx context.Context, id string) (*aviso.APIKey, error) {
	var k *aviso.APIKey
	err := s.read(ctx, "get api key", func(tx *sql.Tx) (err error) {
		k, err = scanKey(tx.QueryRowContext(ctx, `SELECT `+keyCols+` FROM api_keys WHERE id = ?`, id))
		return err
	})
	return k, err
}

// GetAPIKeyByHash returns the key whose hash is hash. ENOTFOUND.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash string) (*aviso.APIKey, error) {
	var k *aviso.APIKey
	err := s.read(ctx, "get api key", func(tx *sql.Tx) (err error) {
		k, err = scanKey(tx.QueryRowContext(ctx, `SELECT `+keyCols+` FROM api_keys WHERE hash = ?`, hash))
		return err
	})
	return k, err
}

const eventTypeCols = `name, description, descriptions, schema, example, created_at, updated_at`

func scanEventType(sc scanner) (*aviso.EventType, error) {
	var t aviso.EventType
	var descs string
	var schema, example sql.NullString
	var created, updated int64
	if err := sc.Scan(&t.Name, &t.Description, &descs, &schema, &example, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if t.Descriptions, err = decodeMap(descs); err != nil {
		return nil, err
	}
	t.Schema, t.Example = fromRawText(schema), fromRawText(example)
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &t, nil
}

// CreateEventType adds to the catalog. ECONFLICT if the name is taken.
func (s *Store) CreateEventType(ctx context.Context, t *aviso.EventType) error {
	return s.write(ctx, "create event type", func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO event_types (`+eventTypeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.Name, t.Description, mapText(t.Descriptions), rawText(t.Schema), rawText(t.Example),
			micros(t.CreatedAt), micros(t.UpdatedAt))
		return err
	})
}

// GetEventType returns a catalog entry. ENOTFOUND.
func (s *Store) GetEventType(ctx context.Context, name string) (*aviso.EventType, error) {
	var t *aviso.EventType
	err := s.read(ctx, "get event type", func(tx *sql.Tx) (err error) {
		t, err = scanEventType(tx.QueryRowContext(ctx, `SELECT `+eventTypeCols+` FROM event_types WHERE name = ?`, name))
		return err
	})
	return t, err
}

// ListEventTypes lists the catalog ordered by name.
func (s *Store) ListEventTypes(ctx context.Context, p aviso.ListParams) (*aviso.Page[*aviso.EventType], error) {
	after, err := decodeCursor(p.After)
	if err != nil {
		return nil, err
	}
	var out *aviso.Page[*aviso.EventType]
	err = s.read(ctx, "list event types", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+eventTypeCols+` FROM event_types WHERE name > ? ORDER BY name LIMIT ?`, after, p.Size()+1)
		if err != nil {
			return err
		}
		ts, err := collect(rows, scanEventType)
		out = page(ts, p.Size(), func(t *aviso.EventType) string { return t.Name })
		return err
	})
	return out, err
}

// UpdateEventType replaces the descriptions, schema and example and stores t.UpdatedAt. ENOTFOUND.
func (s *Store) UpdateEventType(ctx context.Context, t *aviso.EventType) error {
	return s.write(ctx, "update event type", func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE event_types SET description = ?, descriptions = ?, schema = ?, example = ?,
			updated_at = ? WHERE name = ?`,
			t.Description, mapText(t.Descriptions), rawText(t.Schema), rawText(t.Example), micros(t.UpdatedAt), t.Name)
		return affected(res, err, "update event type")
	})
}

// DeleteEventType removes a catalog entry. ENOTFOUND.
func (s *Store) DeleteEventType(ctx context.Context, name string) error {
	return s.write(ctx, "delete event type", func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM event_types WHERE name = ?`, name)
		return affected(res, err, "delete event type")
	})
}

const endpointCols = `id, tenant_id, url, description, event_types, format, headers, timeout_seconds, retry_schedule,
	disabled, disabled_reason, consecutive_failures, metadata, secrets, token, verified_at, created_at, updated_at,
	auth, secret_headers, signing, disable_after, failing_since, filter, ordering`

// ruleText is the disable_after column: the rule as JSON, ” for the server's.
func ruleText(r *aviso.DisablePolicy) string {
	if r == nil {
		return ""
	}
	return jsonText(r)
}

// authText is the auth column: the auth as JSON, ” for none.
func authText(a *aviso.Auth) string {
	if a == nil {
		return ""
	}
	return jsonText(a)
}

// storedSecret is a secret in the secrets JSON column.
type storedSecret struct {
	Value     string `json:"value"`
	ExpiresAt *int64 `json:"expires_at,omitempty"` // unix microseconds
}

func secretsText(ss []aviso.Secret) string {
	out := make([]storedSecret, len(ss))
	for i, s := range ss {
		out[i].Value = s.Value
		if s.ExpiresAt != nil {
			v := s.ExpiresAt.UnixMicro()
			out[i].ExpiresAt = &v
		}
	}
	return jsonText(out)
}

func scheduleText(ds []aviso.Duration) string {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = int64(d)
	}
	return jsonText(out)
}

func scanEndpoint(sc scanner) (*aviso.Endpoint, error) {
	var e aviso.Endpoint
	var types, headers, schedule, meta, secrets, format, auth, secretHeaders, rule string
	var verified, failingSince sql.NullInt64
	var created, updated int64
	if err := sc.Scan(&e.ID, &e.TenantID, &e.URL, &e.Description, &types, &format, &headers, &e.TimeoutSeconds,
		&schedule, &e.Disabled, &e.DisabledReason, &e.ConsecutiveFailures, &meta, &secrets, &e.Token, &verified,
		&created, &updated, &auth, &secretHeaders, &e.Signing, &rule, &failingSince, &e.Filter, &e.Ordering); err != nil {
		return nil, err
	}
	if rule != "" {
		e.DisableAfter = new(aviso.DisablePolicy)
		if err := json.Unmarshal([]byte(rule), e.DisableAfter); err != nil {
			return nil, fmt.Errorf("decode endpoint disable_after: %w", err)
		}
	}
	e.FailingSince = fromMicrosPtr(failingSince)
	if auth != "" {
		e.Auth = new(aviso.Auth)
		if err := json.Unmarshal([]byte(auth), e.Auth); err != nil {
			return nil, fmt.Errorf("decode endpoint auth: %w", err)
		}
	}
	e.Format = aviso.Format(format)
	e.EventTypes = []string{}
	var ns []int64
	var ss []storedSecret
	var err error
	if e.Headers, err = decodeMap(headers); err != nil {
		return nil, err
	}
	if e.Metadata, err = decodeMap(meta); err != nil {
		return nil, err
	}
	if e.SecretHeaders, err = decodeMap(secretHeaders); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(types), &e.EventTypes); err != nil {
		return nil, fmt.Errorf("decode endpoint event_types: %w", err)
	}
	if err := json.Unmarshal([]byte(schedule), &ns); err != nil {
		return nil, fmt.Errorf("decode endpoint retry_schedule: %w", err)
	}
	if err := json.Unmarshal([]byte(secrets), &ss); err != nil {
		return nil, fmt.Errorf("decode endpoint secrets: %w", err)
	}
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	e.RetrySchedule = make([]aviso.Duration, len(ns))
	for i, n := range ns {
		e.RetrySchedule[i] = aviso.Duration(time.Duration(n))
	}
	e.Secrets = make([]aviso.Secret, len(ss))
	for i, s := range ss {
		e.Secrets[i].Value = s.Value
		if s.ExpiresAt != nil {
			t := fromMicros(*s.ExpiresAt)
			e.Secrets[i].ExpiresAt = &t
		}
	}
	e.VerifiedAt = fromMicrosPtr(verified)
	e.CreatedAt, e.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &e, nil
}

// CreateEndpoint stores a new endpoint. ENOTFOUND for an unknown tenant; ECONFLICT if the ID is taken.
func (s *Store) CreateEndpoint(ctx context.Context, e *aviso.Endpoint) error {
	return s.write(ctx, "create endpoint", func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO endpoints (`+endpointCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, e.TenantID, e.URL, e.Description, stringsText(e.EventTypes), string(e.Format), mapText(e.Headers),
			e.TimeoutSeconds, scheduleText(e.RetrySchedule), e.Disabled, e.DisabledReason, e.ConsecutiveFailures,
			mapText(e.Metadata), secretsText(e.Secrets), e.Token, microsPtr(e.VerifiedAt), micros(e.CreatedAt), micros(e.UpdatedAt),
			authText(e.Auth), mapText(e.SecretHeaders), e.Signing, ruleText(e.DisableAfter), microsPtr(e.FailingSince), e.Filter, e.Ordering)
		return err
	})
}

func getEndpoint(ctx context.Context, tx *sql.Tx, tenantID, id string) (*aviso.Endpoint, error) {
	return scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE tenant_id = ? AND id = ?`, tenantID, id))
}

// GetEndpoint returns one endpoint of a tenant. ENOTFOUND.
func (s *Store) GetEndpoint(ctx context.Context, tenantID, id string) (*aviso.Endpoint, error) {
	var e *aviso.Endpoint
	err := s.read(ctx, "get endpoint", func(tx *sql.Tx) (err error) {
		e, err = getEndpoint(ctx, tx, tenantID, id)
		return err
	})
	return e, err
}

// ListEndpoints lists a tenant's endpoints ordered by ID.
func (s *Store) ListEndpoints(ctx context.Context, p aviso.ListEndpointsParams) (*aviso.Page[*aviso.Endpoint], error) {
	after, err := decodeCursor(p.After)
	if err != nil {
		return nil, err
	}
	var out *aviso.Page[*aviso.Endpoint]
	err = s.read(ctx, "list endpoints", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+endpointCols+` FROM endpoints
			WHERE tenant_id = ? AND id > ? AND (? = 0 OR disabled = 0) ORDER BY id LIMIT ?`,
			p.TenantID, after, p.Enabled, p.Size()+1)
		if err != nil {
			return err
		}
		es, err := collect(rows, scanEndpoint)
		out = page(es, p.Size(), func(e *aviso.Endpoint) string { return e.ID })
		return err
	})
	return out, err
}

// UpdateEndpoint replaces every field but ID, TenantID, CreatedAt, Disabled, DisabledReason,
// ConsecutiveFailures and FailingSince, and stores e.UpdatedAt. Turning ordering on writes the
// endpoint's unwritten deliveries as rows (a keyed delivery is a row; claims forget the window's
// entries of an ordered endpoint) and gives all its rows their key; turning it off leaves the
// keys, which claims read only on an ordered endpoint. ENOTFOUND.
func (s *Store) UpdateEndpoint(ctx context.Context, e *aviso.Endpoint) error {
	return s.write(ctx, "update endpoint", func(ctx context.Context, tx *sql.Tx) error {
		var was string
		if err := tx.QueryRowContext(ctx, `SELECT ordering FROM endpoints WHERE tenant_id = ? AND id = ?`,
			e.TenantID, e.ID).Scan(&was); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE endpoints SET url = ?, description = ?, event_types = ?, format = ?,
			headers = ?, timeout_seconds = ?, retry_schedule = ?, metadata = ?, secrets = ?, token = ?, verified_at = ?,
			updated_at = ?, auth = ?, secret_headers = ?, signing = ?, disable_after = ?, filter = ?, ordering = ?
			WHERE tenant_id = ? AND id = ?`,
			e.URL, e.Description, stringsText(e.EventTypes), string(e.Format), mapText(e.Headers), e.TimeoutSeconds,
			scheduleText(e.RetrySchedule), mapText(e.Metadata), secretsText(e.Secrets), e.Token, microsPtr(e.VerifiedAt),
			micros(e.UpdatedAt), authText(e.Auth), mapText(e.SecretHeaders), e.Signing, ruleText(e.DisableAfter), e.Filter,
			e.Ordering, e.TenantID, e.ID)
		if err != nil || e.Ordering == was || e.Ordering == aviso.OrderingNone {
			return err
		}
		if _, err := writeUnwritten(ctx, tx, nil, `u.endpoint_id = ?`, e.ID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE deliveries INDEXED BY deliveries_endpoint
			SET ordering_key = (SELECT v.external_reference FROM events v WHERE v.seq = deliveries.event_seq)
			WHERE endpoint_id = ?`, e.ID)
		return err
	})
}

// SetEndpointDisabled disables or re-enables an endpoint, in one transaction; see aviso.Store.
// ENOTFOUND.
func (s *Store) SetEndpointDisabled(ctx context.Context, p aviso.SetEndpointDisabledParams) (*aviso.Endpoint, error) {
	op := "enable endpoint"
	if p.Disabled {
		op = "disable endpoint"
	}
	var e *aviso.Endpoint
	err := s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) error {
		var res sql.Result
		var err error
		if p.Disabled {
			res, err = tx.ExecContext(ctx, `UPDATE endpoints SET disabled = 1, disabled_reason = ?, updated_at = ?
				WHERE tenant_id = ? AND id = ?`, p.Reason, micros(p.Now), p.TenantID, p.ID)
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE endpoints SET disabled = 0, disabled_reason = '', consecutive_failures = 0,
				failing_since = NULL, updated_at = ? WHERE tenant_id = ? AND id = ?`, micros(p.Now), p.TenantID, p.ID)
		}
		if err := affected(res, err, op); err != nil {
			return err
		}
		if p.Disabled {
			if err := failEndpoint(ctx, tx, p.ID, p.Now); err != nil {
				return err
			}
		}
		e, err = getEndpoint(ctx, tx, p.TenantID, p.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if p.Disabled {
		s.window.forget(func(e *entry) bool { return e.endpointID == p.ID })
	}
	return e, nil
}

// disabledError is the last error of a delivery failed because its endpoint was disabled.
const disabledError = "endpoint disabled"

// failEndpoint fails, as of at, every pending delivery of an endpoint being disabled: its
// pending rows, and its unwritten deliveries, written as failed rows. It is the one place where
// disabling fails deliveries; the caller forgets the endpoint's window entries once committed.
func failEndpoint(ctx context.Context, tx *sql.Tx, endpointID string, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries INDEXED BY deliveries_endpoint_due SET status = 'failed',
			last_error = ?1, next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, updated_at = ?2
		WHERE endpoint_id = ?3 AND status = 'pending'`, disabledError, micros(at), endpointID); err != nil {
		return fmt.Errorf("fail pending deliveries: %w", err)
	}
	_, err := writeUnwritten(ctx, tx, &at, `u.endpoint_id = ?`, endpointID)
	return err
}

// DeleteEndpoint removes an endpoint and, by cascade, its deliveries and attempts (its
// unwritten deliveries no longer count: their endpoint is gone). ENOTFOUND.
func (s *Store) DeleteEndpoint(ctx context.Context, tenantID, id string) error {
	err := s.write(ctx, "delete endpoint", func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM endpoints WHERE tenant_id = ? AND id = ?`, tenantID, id)
		return affected(res, err, "delete endpoint")
	})
	if err == nil {
		s.window.forget(func(e *entry) bool { return e.endpointID == id && e.tenantID == tenantID })
	}
	return err
}
