package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/aviso-dev/aviso"
)

// pacing holds the endpoints' pacing states (aviso.ReserveSlots) in memory: an SQLite store
// belongs to one process, so every dispatcher that reserves from it is here. A restart forgets
// them, which lets at most one burst through early.
type pacing struct {
	mu   sync.Mutex
	next map[string]time.Time // by endpoint ID
}

// ReserveSends reserves send slots from the in-memory pacing states of the endpoints that exist
// (one read of the endpoints); see aviso.Store.
func (s *Store) ReserveSends(ctx context.Context, rs []aviso.SendReservation) ([]aviso.SendGrant, error) {
	out := make([]aviso.SendGrant, len(rs))
	if len(rs) == 0 {
		return out, nil
	}
	ids := make([]string, 0, len(rs))
	for _, r := range rs {
		ids = append(ids, r.EndpointID)
	}
	exists := make(map[string]bool, len(ids))
	err := s.read(ctx, "reserve sends", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM endpoints WHERE id IN (SELECT value FROM json_each(?))`, idList(ids))
		if err != nil {
			return err
		}
		_, err = collect(rows, func(sc scanner) (id string, err error) {
			err = sc.Scan(&id)
			exists[id] = true
			return id, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	p := &s.pacing
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == nil {
		p.next = make(map[string]time.Time)
	}
	for _, id := range ids {
		if !exists[id] {
			delete(p.next, id) // deleted: forget it
		}
	}
	for i, r := range rs {
		if !exists[r.EndpointID] {
			continue
		}
		var g aviso.SendGrant
		g, p.next[r.EndpointID] = aviso.ReserveSlots(p.next[r.EndpointID], r)
		g.First, g.Next = g.First.UTC(), g.Next.UTC()
		out[i] = g
	}
	return out, nil
}
