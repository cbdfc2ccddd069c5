//go:build !linux

package testenv

import "testing"

// Tmpfs is Linux-only: elsewhere the test is skipped (failed under CI).
func Tmpfs(tb testing.TB, size int) string {
	tb.Helper()
	missing(tb, "a tmpfs mount needs Linux")
	return ""
}
