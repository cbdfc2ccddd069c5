-- Leases live in memory (see sqlite/lease.go); the lease columns that earlier versions wrote are
-- cleared once here, and nothing writes them again.
UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL;
