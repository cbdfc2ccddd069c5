package testenv

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TusFacturasFlask runs the TusFacturas document's Flask receiver
// (examples/tusfacturas-flask/app.py) on a free 127.0.0.1 port with the given token, waits until
// it listens, and stops it when tb ends. It returns the receiver's webhook URL and the
// references it looked up (the app prints "CONSULTED <external_reference>"). Skips (fails under
// CI) without a python3 that imports flask.
func TusFacturasFlask(tb testing.TB, token string) (url string, consulted <-chan string) {
	tb.Helper()
	python := PythonWith(tb, "flask")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()

	_, here, _, _ := runtime.Caller(0)
	app := filepath.Join(filepath.Dir(here), "..", "..", "examples", "tusfacturas-flask", "app.py")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, python, app)
	cmd.Env = append(os.Environ(), "HOST=127.0.0.1", "PORT="+port, "TF_WEBHOOK_TOKEN="+token,
		"PYTHONUNBUFFERED=1", "FLASK_DEBUG=0")
	stderr, _ := cmd.StderrPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		started := false
		for sc.Scan() {
			if !started && strings.Contains(sc.Text(), "Running on") {
				started = true
				close(ready)
			}
		}
	}()
	refs := make(chan string, 16)
	go func() {
		defer close(refs)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if ref, ok := strings.CutPrefix(sc.Text(), "CONSULTED "); ok {
				select {
				case refs <- ref:
				default: // nobody is reading: drop rather than block the app
				}
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(time.Minute):
		tb.Fatal("the Flask receiver did not start within a minute")
	}
	return "http://127.0.0.1:" + port + "/webhook", refs
}
