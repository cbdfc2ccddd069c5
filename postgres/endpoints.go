package postgres

import (
	"context"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/jackc/pgx/v5"
)

// CreateEndpoint stores a new endpoint. ENOTFOUND if the tenant does not exist; ECONFLICT if the
// ID is taken.
func (s *Store) CreateEndpoint(ctx context.Context, e *aviso.Endpoint) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO endpoints (id, tenant_id, url, description, event_types, format,
			headers, timeout_seconds, retry_schedule, disabled, disabled_reason, consecutive_failures,
			metadata, secrets, token, verified_at, created_at, updated_at, auth, secret_headers, signing,
			disable_after, failing_since, filter, ordering, send_traceparent, rate_limit)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)`,
		e.ID, e.TenantID, e.URL, e.Description, nonNil(e.EventTypes), string(e.Format),
		nonNilMap(e.Headers), e.TimeoutSeconds, nonNil(e.RetrySchedule), e.Disabled, e.DisabledReason,
		e.ConsecutiveFailures, nonNilMap(e.Metadata), nonNil(e.Secrets), e.Token, e.VerifiedAt, e.CreatedAt, e.UpdatedAt,
		e.Auth, nonNilMap(e.SecretHeaders), e.Signing, e.DisableAfter, e.FailingSince, e.Filter, e.Ordering, e.SendTraceparent, e.RateLimit)
	return dbError("create endpoint", "endpoint", err)
}

// endpointCols are the columns scanEndpoint reads, qualified by the alias ep.
const endpointCols = `ep.id, ep.tenant_id, ep.url, ep.description, ep.event_types, ep.format, ep.headers,
	ep.timeout_seconds, ep.retry_schedule, ep.disabled, ep.disabled_reason, ep.consecutive_failures,
	ep.metadata, ep.secrets, ep.token, ep.verified_at, ep.created_at, ep.updated_at, ep.auth, ep.secret_headers,
	ep.signing, ep.disable_after, ep.failing_since, ep.filter, ep.ordering, ep.send_traceparent, ep.rate_limit`

// endpointDest returns the scan destinations of endpointCols into e.
func endpointDest(e *aviso.Endpoint, format *string) []any {
	return []any{&e.ID, &e.TenantID, &e.URL, &e.Description, &e.EventTypes, format, &e.Headers,
		&e.TimeoutSeconds, &e.RetrySchedule, &e.Disabled, &e.DisabledReason, &e.ConsecutiveFailures,
		&e.Metadata, &e.Secrets, &e.Token, &e.VerifiedAt, &e.CreatedAt, &e.UpdatedAt, &e.Auth, &e.SecretHeaders,
		&e.Signing, &e.DisableAfter, &e.FailingSince, &e.Filter, &e.Ordering, &e.SendTraceparent, &e.RateLimit}
}

// fixEndpoint normalises a scanned endpoint: UTC times, non-nil maps and slices.
func fixEndpoint(e *aviso.Endpoint, format string) {
	e.Format = aviso.Format(format)
	e.EventTypes = nonNil(e.EventTypes)
	e.Headers = nonNilMap(e.Headers)
	e.RetrySchedule = nonNil(e.RetrySchedule)
	e.Metadata = nonNilMap(e.Metadata)
	e.SecretHeaders = nonNilMap(e.SecretHeaders)
	e.Secrets = nonNil(e.Secrets)
	for i := range e.Secrets {
		e.Secrets[i].ExpiresAt = utcPtr(e.Secrets[i].ExpiresAt)
	}
	e.VerifiedAt, e.FailingSince = utcPtr(e.VerifiedAt), utcPtr(e.FailingSince)
	e.CreatedAt, e.UpdatedAt = utc(e.CreatedAt), utc(e.UpdatedAt)
}

func scanEndpoint(row pgx.Row) (*aviso.Endpoint, error) {
	var e aviso.Endpoint
	var format string
	if err := row.Scan(endpointDest(&e, &format)...); err != nil {
		return nil, err
	}
	fixEndpoint(&e, format)
	return &e, nil
}

// GetEndpoint returns one endpoint of a tenant. ENOTFOUND.
func (s *Store) GetEndpoint(ctx context.Context, tenantID, id string) (*aviso.Endpoint, error) {
	e, err := scanEndpoint(s.pool.QueryRow(ctx, `SELECT `+endpointCols+` FROM endpoints ep
		WHERE ep.tenant_id = $1 AND ep.id = $2`, tenantID, id))
	if err != nil {
		return nil, dbError("get endpoint", "endpoint", err)
	}
	return e, nil
}

// ListEndpoints lists a tenant's endpoints ordered by ID; the cursor is the last ID.
func (s *Store) ListEndpoints(ctx context.Context, p aviso.ListEndpointsParams) (*aviso.Page[*aviso.Endpoint], error) {
	rows, err := s.pool.Query(ctx, `SELECT `+endpointCols+` FROM endpoints ep
		WHERE ep.tenant_id = $1 AND ep.id > $2 AND (NOT $3 OR NOT ep.disabled)
		ORDER BY ep.id LIMIT $4`, p.TenantID, p.After, p.Enabled, p.Size()+1)
	if err != nil {
		return nil, dbError("list endpoints", "endpoint", err)
	}
	page, err := collectPage(rows, p.Size(), scanEndpoint, func(e *aviso.Endpoint) string { return e.ID })
	return page, dbError("list endpoints", "endpoint", err)
}

// UpdateEndpoint replaces the endpoint's settings and UpdatedAt. Turning ordering on gives
// every delivery of the endpoint its ordering key (the event's external reference) and event
// seq, so that the deliveries already stored, pending or queued again later, are ordered too;
// turning it off leaves the keys, which the claim reads only on an ordered endpoint. ENOTFOUND.
func (s *Store) UpdateEndpoint(ctx context.Context, e *aviso.Endpoint) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var was string
		if err := tx.QueryRow(ctx, `SELECT ordering FROM endpoints WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE`,
			e.TenantID, e.ID).Scan(&was); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE endpoints SET url = $3, description = $4, event_types = $5,
				format = $6, headers = $7, timeout_seconds = $8, retry_schedule = $9, metadata = $10,
				secrets = $11, token = $12, verified_at = $13, updated_at = $14, auth = $15, secret_headers = $16,
				signing = $17, disable_after = $18, filter = $19, ordering = $20, send_traceparent = $21, rate_limit = $22
			WHERE tenant_id = $1 AND id = $2`,
			e.TenantID, e.ID, e.URL, e.Description, nonNil(e.EventTypes), string(e.Format), nonNilMap(e.Headers),
			e.TimeoutSeconds, nonNil(e.RetrySchedule), nonNilMap(e.Metadata), nonNil(e.Secrets), e.Token, e.VerifiedAt, e.UpdatedAt,
			e.Auth, nonNilMap(e.SecretHeaders), e.Signing, e.DisableAfter, e.Filter, e.Ordering, e.SendTraceparent, e.RateLimit)
		if err != nil || e.Ordering == was || e.Ordering == aviso.OrderingNone {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE deliveries d SET ordering_key = ev.external_reference, event_seq = ev.seq
			FROM events ev WHERE d.endpoint_id = $1 AND ev.tenant_id = d.tenant_id AND ev.id = d.event_id
				AND ev.external_reference <> ''`, e.ID)
		return err
	})
	return dbError("update endpoint", "endpoint", err)
}

// SetEndpointDisabled disables or re-enables an endpoint; disabling fails its pending
// deliveries. ENOTFOUND.
func (s *Store) SetEndpointDisabled(ctx context.Context, p aviso.SetEndpointDisabledParams) (*aviso.Endpoint, error) {
	var e *aviso.Endpoint
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if p.Disabled {
			e, err = scanEndpoint(tx.QueryRow(ctx, `UPDATE endpoints ep SET disabled = true, disabled_reason = $3,
				updated_at = $4 WHERE ep.tenant_id = $1 AND ep.id = $2 RETURNING `+endpointCols,
				p.TenantID, p.ID, p.Reason, p.Now))
			if err != nil {
				return err
			}
			return failPending(ctx, tx, p.ID, p.Now)
		}
		e, err = scanEndpoint(tx.QueryRow(ctx, `UPDATE endpoints ep SET disabled = false, disabled_reason = '',
			consecutive_failures = 0, failing_since = NULL, updated_at = $3 WHERE ep.tenant_id = $1 AND ep.id = $2 RETURNING `+endpointCols,
			p.TenantID, p.ID, p.Now))
		return err
	})
	if err != nil {
		return nil, dbError("set endpoint disabled", "endpoint", err)
	}
	if !p.Disabled {
		s.signal() // deliveries queued (replayed) while the endpoint was disabled are due now
	}
	return e, nil
}

// failedByDisable is how disabling an endpoint leaves its pending deliveries (the SET list of an
// UPDATE of deliveries; the time is $2).
const failedByDisable = `status = 'failed', last_error = 'endpoint disabled', next_attempt_at = NULL,
	lease_owner = NULL, lease_until = NULL, updated_at = $2`

// failPending marks the pending deliveries of a disabled endpoint failed.
func failPending(ctx context.Context, tx pgx.Tx, endpointID string, now time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE deliveries SET `+failedByDisable+`
		WHERE endpoint_id = $1 AND status = 'pending'`, endpointID, now)
	return err
}

// DeleteEndpoint removes an endpoint; the foreign keys cascade to its deliveries and attempts.
// ENOTFOUND.
func (s *Store) DeleteEndpoint(ctx context.Context, tenantID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM endpoints WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	return dbError("delete endpoint", "endpoint", affected(tag.RowsAffected(), err))
}

// nonNil returns s, or an empty slice for nil (stored as [] and read back non-nil).
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
