package testenv

import (
	"fmt"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of size bytes on a fresh directory and returns it, unmounted when tb
// ends: a small filesystem a test can fill. Mounting needs root (CAP_SYS_ADMIN); without it the
// test is skipped (failed under CI).
func Tmpfs(tb testing.TB, size int) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		missing(tb, fmt.Sprintf("mount a %d-byte tmpfs on %s: %v (run the tests as root to test a full disk)", size, dir, err))
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("unmount the tmpfs %s: %v", dir, err)
		}
	})
	return dir
}
