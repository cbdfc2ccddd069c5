package bench

import (
	"bufio"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procStatusKB reads a "Key:   123 kB" line of a /proc file such as /proc/self/status.
func procStatusKB(path, key string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	return parseKB(f, key)
}

// parseKB finds the line "key: <n> kB" (or "key: <n>") in r and returns n.
func parseKB(r io.Reader, key string) (int64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil || n < 0 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// procPath returns /proc/<pid>/<name>, or /proc/self/<name> for pid 0.
func procPath(pid int, name string) string {
	if pid == 0 {
		return "/proc/self/" + name
	}
	return "/proc/" + strconv.Itoa(pid) + "/" + name
}

// peakRSS returns the peak resident set size (VmHWM) of a process in bytes; pid 0 is this one.
func peakRSS(pid int) (int64, bool) {
	kb, ok := procStatusKB(procPath(pid, "status"), "VmHWM")
	return kb * 1024, ok
}

// resetPeakRSS sets a process's peak RSS back to its current RSS (Linux ≥ 4.0), so that a later
// peakRSS covers only what happened since. It reports whether the reset was possible.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(procPath(pid, "clear_refs"), []byte("5"), 0) == nil
}

// dirSize returns the total size of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

const mib = 1 << 20
