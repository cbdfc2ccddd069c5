package sqlite

import (
	"context"
	"database/sql"
)

// SetClaimReadHook makes fn run at the start of each claim's read transaction.
func SetClaimReadHook(s *Store, fn func(tx *sql.Tx)) { s.claimReadHook = fn }

// SetDeleteChunk sets how many events DeleteTenant deletes per write.
func SetDeleteChunk(s *Store, n int) { s.deleteChunk = n }

// HoldWriter runs a write body that waits until release is called, and returns once that body
// is running: writes made meanwhile queue up for the next group.
func HoldWriter(s *Store) (release func()) {
	running, rel, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		_ = s.write(context.Background(), "hold", func(context.Context, *sql.Tx) error {
			close(running)
			<-rel
			return nil
		})
	}()
	<-running
	return func() { close(rel); <-done }
}

// QueuedWrites is how many writes wait for the next group.
func QueuedWrites(s *Store) int {
	s.commit.mu.Lock()
	defer s.commit.mu.Unlock()
	return len(s.commit.pending)
}

// MergedInserts is how many InsertEvents calls have run merged with others.
func MergedInserts(s *Store) int64 { return s.commit.merges.Load() }

// Commits is how many groups the writer has committed.
func Commits(s *Store) uint64 { return s.commit.commits.Load() }
