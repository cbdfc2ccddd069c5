package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/jackc/pgx/v5"
)

// ReserveSends reserves send slots from the endpoints' rows of endpoint_pacing (created on first
// use), locked FOR UPDATE in ID order, so that nodes reserving at once take turns and every node
// gets slots after the others'; see aviso.Store.
func (s *Store) ReserveSends(ctx context.Context, rs []aviso.SendReservation) ([]aviso.SendGrant, error) {
	out := make([]aviso.SendGrant, len(rs))
	if len(rs) == 0 {
		return out, nil
	}
	ids := make([]string, 0, len(rs))
	for _, r := range rs {
		ids = append(ids, r.EndpointID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The endpoints are locked against deletion (FOR KEY SHARE) before their pacing rows
		// are made: an endpoint deleted meanwhile is left out, not a foreign key violation.
		if _, err := tx.Exec(ctx, `INSERT INTO endpoint_pacing (endpoint_id, next_at)
			SELECT id, 'epoch' FROM (SELECT id FROM endpoints WHERE id = ANY($1) ORDER BY id FOR KEY SHARE) e
			ON CONFLICT (endpoint_id) DO NOTHING`, ids); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT endpoint_id, next_at FROM endpoint_pacing
			WHERE endpoint_id = ANY($1) ORDER BY endpoint_id FOR UPDATE`, ids)
		if err != nil {
			return err
		}
		state := make(map[string]time.Time, len(ids))
		var id string
		var next time.Time
		if _, err := pgx.ForEachRow(rows, []any{&id, &next}, func() error {
			state[id] = next
			return nil
		}); err != nil {
			return err
		}
		for i, r := range rs {
			next, ok := state[r.EndpointID]
			if !ok {
				out[i] = aviso.SendGrant{} // deleted: nothing to pace
				continue
			}
			var g aviso.SendGrant
			g, state[r.EndpointID] = aviso.ReserveSlots(next, r)
			g.First, g.Next = utc(g.First), utc(g.Next)
			out[i] = g
		}
		upd, times := make([]string, 0, len(state)), make([]time.Time, 0, len(state))
		for id, next := range state {
			upd, times = append(upd, id), append(times, next)
		}
		_, err = tx.Exec(ctx, `UPDATE endpoint_pacing p SET next_at = u.next_at
			FROM unnest($1::text[], $2::timestamptz[]) AS u(id, next_at) WHERE p.endpoint_id = u.id`, upd, times)
		return err
	})
	if err != nil {
		return nil, dbError("reserve sends", "endpoint", err)
	}
	return out, nil
}
