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
	err := sc.Scan(&t.ID, &t.Name, (*mapCol)(&t.Metadata), (*timeCol)(&t.CreatedAt), (*timeCol)(&t.UpdatedAt))
	return &t, err
}

// CreateTenant stores a new tenant. ECONFLICT if the ID is taken.
func (s *Store) CreateTenant(ctx context.Context, t *aviso.Tenant) error {
	return s.run(ctx, "create tenant", `INSERT INTO tenants (`+tenantCols+`) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.Name, mapText(t.Metadata), micros(t.CreatedAt), micros(t.UpdatedAt))
}

// GetTenant returns a tenant. ENOTFOUND.
func (s *Store) GetTenant(ctx context.Context, id string) (*aviso.Tenant, error) {
	return get(ctx, s, "get tenant", scanTenant, `SELECT `+tenantCols+` FROM tenants WHERE id = ?`, id)
}

// ListTenants lists tenants ordered by ID; the cursor is the last ID.
func (s *Store) ListTenants(ctx context.Context, p aviso.ListParams) (*aviso.Page[*aviso.Tenant], error) {
	return list(ctx, s, "list tenants", p.Size(), scanTenant, func(t *aviso.Tenant) string { return t.ID },
		`SELECT `+tenantCols+` FROM tenants WHERE id > ? ORDER BY id LIMIT ?`, p.After, p.Size()+1)
}

// UpdateTenant replaces the name and metadata and stores t.UpdatedAt. ENOTFOUND.
func (s *Store) UpdateTenant(ctx context.Context, t *aviso.Tenant) error {
	return s.change(ctx, "update tenant", `UPDATE tenants SET name = ?, metadata = ?, updated_at = ? WHERE id = ?`,
		t.Name, mapText(t.Metadata), micros(t.UpdatedAt), t.ID)
}

// DeleteTenant removes a tenant and, by cascade, everything it owns, in one transaction.
// ENOTFOUND.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	return s.write(ctx, "delete tenant", func(ctx context.Context, tx *sql.Tx) error {
		if err := keepSeqs(ctx, tx); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM tenants WHERE id = ?`, id)
		return affected(res, err, "delete tenant")
	})
}

const keyCols = `id, tenant_id, hash, prefix, created_at`

func scanKey(sc scanner) (*aviso.APIKey, error) {
	var k aviso.APIKey
	var tenant sql.NullString
	err := sc.Scan(&k.ID, &tenant, &k.Hash, &k.Prefix, (*timeCol)(&k.CreatedAt))
	k.TenantID = tenant.String
	return &k, err
}

// SaveAPIKey inserts a key or replaces the key with the same ID. ENOTFOUND for an unknown tenant.
func (s *Store) SaveAPIKey(ctx context.Context, k *aviso.APIKey) error {
	return s.run(ctx, "save api key", `INSERT INTO api_keys (`+keyCols+`) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, hash = excluded.hash,
			prefix = excluded.prefix, created_at = excluded.created_at`,
		k.ID, sql.NullString{String: k.TenantID, Valid: k.TenantID != ""}, k.Hash, k.Prefix, micros(k.CreatedAt))
}

// GetAPIKey returns a key by ID. ENOTFOUND.
func (s *Store) GetAPIKey(ctx context.Context, id string) (*aviso.APIKey, error) {
	return get(ctx, s, "get api key", scanKey, `SELECT `+keyCols+` FROM api_keys WHERE id = ?`, id)
}

// GetAPIKeyByHash returns the key whose hash is hash. ENOTFOUND.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash string) (*aviso.APIKey, error) {
	return get(ctx, s, "get api key", scanKey, `SELECT `+keyCols+` FROM api_keys WHERE hash = ?`, hash)
}

const eventTypeCols = `name, description, descriptions, schema, example, created_at, updated_at`

func scanEventType(sc scanner) (*aviso.EventType, error) {
	var t aviso.EventType
	err := sc.Scan(&t.Name, &t.Description, (*mapCol)(&t.Descriptions), (*rawCol)(&t.Schema), (*rawCol)(&t.Example),
		(*timeCol)(&t.CreatedAt), (*timeCol)(&t.UpdatedAt))
	return &t, err
}

// CreateEventType adds to the catalog. ECONFLICT if the name is taken.
func (s *Store) CreateEventType(ctx context.Context, t *aviso.EventType) error {
	return s.run(ctx, "create event type", `INSERT INTO event_types (`+eventTypeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.Name, t.Description, mapText(t.Descriptions), rawText(t.Schema), rawText(t.Example),
		micros(t.CreatedAt), micros(t.UpdatedAt))
}

// GetEventType returns a catalog entry. ENOTFOUND.
func (s *Store) GetEventType(ctx context.Context, name string) (*aviso.EventType, error) {
	return get(ctx, s, "get event type", scanEventType, `SELECT `+eventTypeCols+` FROM event_types WHERE name = ?`, name)
}

// ListEventTypes lists the catalog ordered by name; the cursor is the last name.
func (s *Store) ListEventTypes(ctx context.Context, p aviso.ListParams) (*aviso.Page[*aviso.EventType], error) {
	return list(ctx, s, "list event types", p.Size(), scanEventType, func(t *aviso.EventType) string { return t.Name },
		`SELECT `+eventTypeCols+` FROM event_types WHERE name > ? ORDER BY name LIMIT ?`, p.After, p.Size()+1)
}

// UpdateEventType replaces the descriptions, schema and example and stores t.UpdatedAt. ENOTFOUND.
func (s *Store) UpdateEventType(ctx context.Context, t *aviso.EventType) error {
	return s.change(ctx, "update event type", `UPDATE event_types SET description = ?, descriptions = ?, schema = ?,
		example = ?, updated_at = ? WHERE name = ?`,
		t.Description, mapText(t.Descriptions), rawText(t.Schema), rawText(t.Example), micros(t.UpdatedAt), t.Name)
}

// DeleteEventType removes a catalog entry. ENOTFOUND.
func (s *Store) DeleteEventType(ctx context.Context, name string) error {
	return s.change(ctx, "delete event type", `DELETE FROM event_types WHERE name = ?`, name)
}

const endpointCols = `id, tenant_id, url, description, event_types, format, headers, timeout_seconds, retry_schedule,
	disabled, disabled_reason, consecutive_failures, metadata, secrets, token, verified_at, created_at, updated_at,
	auth, secret_headers, signing, disable_after, failing_since, filter, ordering, send_traceparent, rate_limit`

// optionalText is a column of optional JSON: v as JSON, empty for nil.
func optionalText[T any](v *T) string {
	if v == nil {
		return ""
	}
	return jsonText(v)
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

// scheduleText is the retry_schedule column: nanoseconds.
func scheduleText(ds []aviso.Duration) string {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = int64(d)
	}
	return jsonText(out)
}

func scanEndpoint(sc scanner) (*aviso.Endpoint, error) {
	var e aviso.Endpoint
	var types, schedule, secrets, auth, rule string
	if err := sc.Scan(&e.ID, &e.TenantID, &e.URL, &e.Description, &types, (*string)(&e.Format), (*mapCol)(&e.Headers),
		&e.TimeoutSeconds, &schedule, &e.Disabled, &e.DisabledReason, &e.ConsecutiveFailures, (*mapCol)(&e.Metadata),
		&secrets, &e.Token, optTimeCol{&e.VerifiedAt}, (*timeCol)(&e.CreatedAt), (*timeCol)(&e.UpdatedAt), &auth,
		(*mapCol)(&e.SecretHeaders), &e.Signing, &rule, optTimeCol{&e.FailingSince}, &e.Filter, &e.Ordering,
		&e.SendTraceparent, &e.RateLimit); err != nil {
		return nil, err
	}
	e.EventTypes = []string{}
	if rule != "" {
		e.DisableAfter = new(aviso.DisablePolicy)
	}
	if auth != "" {
		e.Auth = new(aviso.Auth)
	}
	var ns []int64
	var ss []storedSecret
	for _, c := range []struct {
		name, text string
		dst        any
	}{
		{"event_types", types, &e.EventTypes}, {"retry_schedule", schedule, &ns}, {"secrets", secrets, &ss},
		{"disable_after", rule, e.DisableAfter}, {"auth", auth, e.Auth},
	} {
		if c.text == "" {
			continue
		}
		if err := json.Unmarshal([]byte(c.text), c.dst); err != nil {
			return nil, fmt.Errorf("decode endpoint %s: %w", c.name, err)
		}
	}
	e.RetrySchedule = make([]aviso.Duration, len(ns))
	for i, n := range ns {
		e.RetrySchedule[i] = aviso.Duration(n)
	}
	e.Secrets = make([]aviso.Secret, len(ss))
	for i, s := range ss {
		e.Secrets[i].Value = s.Value
		if s.ExpiresAt != nil {
			t := fromMicros(*s.ExpiresAt)
			e.Secrets[i].ExpiresAt = &t
		}
	}
	return &e, nil
}

// CreateEndpoint stores a new endpoint. ENOTFOUND for an unknown tenant; ECONFLICT if the ID is taken.
func (s *Store) CreateEndpoint(ctx context.Context, e *aviso.Endpoint) error {
	return s.run(ctx, "create endpoint", `INSERT INTO endpoints (`+endpointCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.TenantID, e.URL, e.Description, idList(e.EventTypes), string(e.Format), mapText(e.Headers),
		e.TimeoutSeconds, scheduleText(e.RetrySchedule), e.Disabled, e.DisabledReason, e.ConsecutiveFailures,
		mapText(e.Metadata), secretsText(e.Secrets), e.Token, microsPtr(e.VerifiedAt), micros(e.CreatedAt), micros(e.UpdatedAt),
		optionalText(e.Auth), mapText(e.SecretHeaders), e.Signing, optionalText(e.DisableAfter), microsPtr(e.FailingSince),
		e.Filter, e.Ordering, e.SendTraceparent, e.RateLimit)
}

const getEndpointSQL = `SELECT ` + endpointCols + ` FROM endpoints WHERE tenant_id = ? AND id = ?`

// GetEndpoint returns one endpoint of a tenant. ENOTFOUND.
func (s *Store) GetEndpoint(ctx context.Context, tenantID, id string) (*aviso.Endpoint, error) {
	return get(ctx, s, "get endpoint", scanEndpoint, getEndpointSQL, tenantID, id)
}

// ListEndpoints lists a tenant's endpoints ordered by ID; the cursor is the last ID.
func (s *Store) ListEndpoints(ctx context.Context, p aviso.ListEndpointsParams) (*aviso.Page[*aviso.Endpoint], error) {
	return list(ctx, s, "list endpoints", p.Size(), scanEndpoint, func(e *aviso.Endpoint) string { return e.ID },
		`SELECT `+endpointCols+` FROM endpoints WHERE tenant_id = ? AND id > ? AND (? = 0 OR disabled = 0) ORDER BY id LIMIT ?`,
		p.TenantID, p.After, p.Enabled, p.Size()+1)
}

// UpdateEndpoint replaces every field but ID, TenantID, CreatedAt, Disabled, DisabledReason,
// ConsecutiveFailures and FailingSince, and stores e.UpdatedAt. Turning ordering on gives all
// the endpoint's deliveries their key; turning it off leaves the keys, which claims read only on
// an ordered endpoint. ENOTFOUND.
func (s *Store) UpdateEndpoint(ctx context.Context, e *aviso.Endpoint) error {
	return s.write(ctx, "update endpoint", func(ctx context.Context, tx *sql.Tx) error {
		var was string
		if err := tx.QueryRowContext(ctx, `SELECT ordering FROM endpoints WHERE tenant_id = ? AND id = ?`,
			e.TenantID, e.ID).Scan(&was); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE endpoints SET url = ?, description = ?, event_types = ?, format = ?,
			headers = ?, timeout_seconds = ?, retry_schedule = ?, metadata = ?, secrets = ?, token = ?, verified_at = ?,
			updated_at = ?, auth = ?, secret_headers = ?, signing = ?, disable_after = ?, filter = ?, ordering = ?,
			send_traceparent = ?, rate_limit = ? WHERE tenant_id = ? AND id = ?`,
			e.URL, e.Description, idList(e.EventTypes), string(e.Format), mapText(e.Headers), e.TimeoutSeconds,
			scheduleText(e.RetrySchedule), mapText(e.Metadata), secretsText(e.Secrets), e.Token, microsPtr(e.VerifiedAt),
			micros(e.UpdatedAt), optionalText(e.Auth), mapText(e.SecretHeaders), e.Signing, optionalText(e.DisableAfter),
			e.Filter, e.Ordering, e.SendTraceparent, e.RateLimit, e.TenantID, e.ID)
		if err != nil || e.Ordering == was || e.Ordering == aviso.OrderingNone {
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
	op, set := "enable endpoint", `disabled = 0, disabled_reason = '', consecutive_failures = 0, failing_since = NULL`
	if p.Disabled {
		op, set = "disable endpoint", `disabled = 1, disabled_reason = ?1`
	}
	var e *aviso.Endpoint
	err := s.write(ctx, op, func(ctx context.Context, tx *sql.Tx) (err error) {
		e, err = scanEndpoint(tx.QueryRowContext(ctx, `UPDATE endpoints SET `+set+`, updated_at = ?2
			WHERE tenant_id = ?3 AND id = ?4 RETURNING `+endpointCols, p.Reason, micros(p.Now), p.TenantID, p.ID))
		if err != nil || !p.Disabled {
			return err
		}
		return failEndpoint(ctx, tx, p.ID, p.Now)
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// disabledError is the last error of a delivery failed because its endpoint was disabled.
const disabledError = "endpoint disabled"

// failEndpoint fails, as of at, every pending delivery of an endpoint being disabled. It is the
// one place where disabling fails deliveries.
func failEndpoint(ctx context.Context, tx *sql.Tx, endpointID string, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries INDEXED BY deliveries_endpoint_due SET status = 'failed',
			last_error = ?1, next_attempt_at = NULL, updated_at = ?2
		WHERE endpoint_id = ?3 AND status = 'pending'`, disabledError, micros(at), endpointID); err != nil {
		return fmt.Errorf("fail pending deliveries: %w", err)
	}
	return nil
}

// DeleteEndpoint removes an endpoint and, by cascade, its deliveries and attempts. ENOTFOUND.
func (s *Store) DeleteEndpoint(ctx context.Context, tenantID, id string) error {
	return s.change(ctx, "delete endpoint", `DELETE FROM endpoints WHERE tenant_id = ? AND id = ?`, tenantID, id)
}
