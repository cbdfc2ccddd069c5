package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Event is one outbox row an application writes with Write.
type Event struct {
	// TenantID is the Aviso tenant the event belongs to. Required.
	TenantID string
	// Type is the event type, e.g. "invoice.created". Required.
	Type string
	// Data is the event's data: json.RawMessage or []byte are stored as they are (they must be
	// JSON), anything else is encoded with encoding/json. Required.
	Data any
	// ExternalReference names the document the event is about (e.g. the invoice code). Optional.
	ExternalReference string
	// EventID is the event's id in Aviso. Optional: empty, the relay derives one from the source
	// and the row id.
	EventID string
}

// Write inserts e into aviso_outbox within tx, a transaction on a PostgreSQL (pgx) or
// MariaDB/MySQL (go-sql-driver/mysql) database where the DDL of docs/outbox/ was applied. The
// event is relayed once tx commits, and never if it rolls back. Write asks the server its kind
// (SELECT version(), one round trip) because database/sql does not tell a transaction's driver,
// and the two write placeholders differently.
func Write(ctx context.Context, tx *sql.Tx, e Event) error {
	if e.TenantID == "" || e.Type == "" {
		return errors.New("outbox: Event.TenantID and Event.Type are required")
	}
	var data []byte
	switch d := e.Data.(type) {
	case nil:
		return errors.New("outbox: Event.Data is required")
	case json.RawMessage:
		data = d
	case []byte:
		data = d
	default:
		var err error
		if data, err = json.Marshal(d); err != nil {
			return fmt.Errorf("outbox: encode Event.Data: %w", err)
		}
	}
	if !json.Valid(data) {
		return errors.New("outbox: Event.Data is not valid JSON")
	}
	var version string
	if err := tx.QueryRowContext(ctx, "SELECT version()").Scan(&version); err != nil {
		return fmt.Errorf("outbox: ask the database its kind: %w", err)
	}
	d := mariadbDialect
	if strings.HasPrefix(version, "PostgreSQL") {
		d = postgresDialect
	}
	var ext, evt sql.NullString
	if e.ExternalReference != "" {
		ext = sql.NullString{String: e.ExternalReference, Valid: true}
	}
	if e.EventID != "" {
		evt = sql.NullString{String: e.EventID, Valid: true}
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO aviso_outbox (tenant_id, type, external_reference, data, event_id) VALUES ("+
		d.ph(1)+", "+d.ph(2)+", "+d.ph(3)+", "+d.ph(4)+", "+d.ph(5)+")",
		e.TenantID, e.Type, ext, string(data), evt)
	if err != nil {
		return fmt.Errorf("outbox: insert into aviso_outbox: %w", err)
	}
	return nil
}
