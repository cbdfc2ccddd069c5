package testenv

import (
	"bufio"
	"context"
	"io"
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

// The receivers of the TusFacturas document, run as written (examples/tusfacturas-*): each
// listens on a free 127.0.0.1 port with the given token until tb ends, and reports the
// external references it looked up.

// TusFacturasReceiver is one of the document's receivers: Start runs it as TusFacturasFlask does.
type TusFacturasReceiver struct {
	Name  string
	Start func(tb testing.TB, token string) (url string, consulted <-chan string)
}

// TusFacturasReceivers lists the document's receivers that the tests run: Flask and Express.
func TusFacturasReceivers() []TusFacturasReceiver {
	return []TusFacturasReceiver{{"flask", TusFacturasFlask}, {"express", TusFacturasExpress}}
}

// TusFacturasFlask runs the document's Flask receiver (examples/tusfacturas-flask/app.py). It
// returns the receiver's webhook URL and the references it looked up (the app prints
// "CONSULTED <external_reference>"). Skips (fails under CI) without a python3 that imports flask.
func TusFacturasFlask(tb testing.TB, token string) (url string, consulted <-chan string) {
	tb.Helper()
	python := PythonWith(tb, "flask")
	return startReceiver(tb, "Flask", func(port string) *exec.Cmd {
		cmd := exec.Command(python, example("tusfacturas-flask", "app.py"))
		cmd.Env = append(os.Environ(), "HOST=127.0.0.1", "PORT="+port, "TF_WEBHOOK_TOKEN="+token,
			"PYTHONUNBUFFERED=1", "FLASK_DEBUG=0")
		return cmd
	}, "Running on", "CONSULTED ")
}

// TusFacturasExpress runs the document's Express receiver (examples/tusfacturas-express/app.js)
// with node, its modules from Debian's node-express (NODE_PATH /usr/share/nodejs) unless
// NODE_PATH says otherwise. It returns the receiver's webhook URL and the references it looked up
// (the app prints "Consulting info for external_reference: <ref>"). Skips (fails under CI)
// without a node that can load express and body-parser.
func TusFacturasExpress(tb testing.TB, token string) (url string, consulted <-chan string) {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(tb, "no node: install Debian's nodejs and node-express")
	}
	env := append(os.Environ(), "HOST=127.0.0.1", "TF_WEBHOOK_TOKEN="+token)
	if os.Getenv("NODE_PATH") == "" {
		env = append(env, "NODE_PATH=/usr/share/nodejs")
	}
	check := exec.Command(node, "-e", "require('express'); require('body-parser')")
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		missing(tb, "node cannot load express and body-parser (install Debian's node-express): "+
			strings.TrimSpace(string(out)))
	}
	return startReceiver(tb, "Express", func(port string) *exec.Cmd {
		cmd := exec.Command(node, example("tusfacturas-express", "app.js"))
		cmd.Env = append(env, "PORT="+port)
		return cmd
	}, "Webhook listener running", "Consulting info for external_reference: ")
}

// example is the path of a file of examples/.
func example(dir, file string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", "examples", dir, file)
}

// startReceiver starts the command command(port) on a free port, waits until a line of its
// output (stdout or stderr) contains ready, and stops it when tb ends. It returns the webhook
// URL and the rest of each output line that starts with consultedPrefix.
func startReceiver(tb testing.TB, name string, command func(port string) *exec.Cmd, ready, consultedPrefix string) (string, <-chan string) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()

	cmd := command(port)
	out, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		w.Close()
		close(exited)
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	started := make(chan struct{})
	refs := make(chan string, 16)
	go func() {
		defer close(refs)
		sc := bufio.NewScanner(out)
		isStarted := false
		for sc.Scan() {
			line := sc.Text()
			if !isStarted && strings.Contains(line, ready) {
				isStarted = true
				close(started)
			}
			if ref, ok := strings.CutPrefix(line, consultedPrefix); ok {
				select {
				case refs <- ref:
				default: // nobody is reading: drop rather than block the app
				}
			}
		}
		_, _ = io.Copy(io.Discard, out) // past a line too long to scan: keep the app unblocked
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case <-started:
	case <-exited:
		tb.Fatalf("the %s receiver exited before it listened", name)
	case <-ctx.Done():
		tb.Fatalf("the %s receiver did not start within a minute", name)
	}
	return "http://127.0.0.1:" + port + "/webhook", refs
}
