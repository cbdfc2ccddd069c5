// Package testenv tells tests where the real servers and tools they need are: PostgreSQL, MariaDB, a
// Chromium browser, Node.js. A test asks for one and gets its address, or is skipped with a clear
// message when the environment does not name it. Under CI (AVISO_TEST_REQUIRE=1, set by .ci/run)
// a missing one fails the test instead, so a CI run can never pass by skipping.
//
// A test that must kill a database server starts one of its own instead (PostgresServer,
// MariaDBServer): the shared servers serve other tests at the same time.
//
// It also holds the helpers several packages' tests share: a real store (SQLite), the aviso
// binary run as a child process (StartAviso), and a log buffer a logger may write from several
// goroutines (LogBuffer).
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Required reports whether missing test dependencies must fail tests (CI) rather than skip them.
func Required() bool { return os.Getenv("AVISO_TEST_REQUIRE") == "1" }

func missing(tb testing.TB, what string) {
	tb.Helper()
	if Required() {
		tb.Fatalf("%s (AVISO_TEST_REQUIRE=1: CI must not skip this test)", what)
	}
	tb.Skip(what)
}

// PostgresURL returns AVISO_TEST_POSTGRES_URL, or skips (fails under CI) when it is unset.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("AVISO_TEST_POSTGRES_URL")
	if u == "" {
		missing(tb, "AVISO_TEST_POSTGRES_URL is not set: set it to a PostgreSQL URL, e.g. "+
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable, to run the PostgreSQL tests")
	}
	return u
}

// Chromium returns the path of the browser named by AVISO_TEST_CHROMIUM, or of chromium on the
// PATH, or skips (fails under CI) when there is none.
func Chromium(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("AVISO_TEST_CHROMIUM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	missing(tb, "no chromium found: install Debian's chromium or set AVISO_TEST_CHROMIUM to run the browser tests")
	return ""
}

// Program returns the path of an executable on the PATH (node, npm, python3, …), or skips
// (fails under CI) when it is missing.
func Program(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(tb, name+" is not on the PATH: install it to run this test")
	}
	return p
}

// PythonWith returns a python3 interpreter that can import module: the one on the PATH, else
// Debian's /usr/bin/python3 (where apt's python3-flask lands when a pyenv python shadows it).
// It skips (fails under CI) when neither can.
func PythonWith(tb testing.TB, module string) string {
	tb.Helper()
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import "+module).Run() == nil {
			return path
		}
	}
	missing(tb, "no python3 that can import "+module+": install Debian's python3-"+module)
	return ""
}
