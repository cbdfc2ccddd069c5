package sqlite

import "database/sql"

// SetClaimReadHook makes fn run at the start of each claim's read transaction.
func SetClaimReadHook(s *Store, fn func(tx *sql.Tx)) { s.claimReadHook = fn }

// SetDeleteChunk sets how many events DeleteTenant deletes per write.
func SetDeleteChunk(s *Store, n int) { s.deleteChunk = n }
