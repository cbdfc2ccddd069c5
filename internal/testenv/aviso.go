package testenv

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// AvisoBinary builds cmd/aviso into the test's temporary directory and returns its path. It is
// built without -race: the program is what the end-to-end tests exercise, not instrumented.
// Skips (fails under CI) without go on the PATH.
func AvisoBinary(tb testing.TB) string {
	tb.Helper()
	goBin := Program(tb, "go")
	bin := filepath.Join(tb.TempDir(), "aviso")
	build := exec.CommandContext(tb.Context(), goBin, "build", "-o", bin, "github.com/aviso-dev/aviso/cmd/aviso")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("build aviso: %v\n%s", err, out)
	}
	return bin
}

// Aviso is one `aviso serve` child process.
type Aviso struct {
	Name string
	Base string // http://127.0.0.1:port
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  []string // the last lines of its log
}

// avisoLogLines is how many of its last log lines an Aviso keeps for Tail.
const avisoLogLines = 40

// StartAviso runs `bin serve --addr 127.0.0.1:0 args…` (a later --addr in args wins), its
// environment the test's with env added and AVISO_LOG_LEVEL=info. It waits, up to 30 seconds or
// until ctx ends, until the node logs that it serves and then answers /readyz, and kills it
// when tb ends.
func StartAviso(tb testing.TB, ctx context.Context, bin, name string, args []string, env ...string) *Aviso {
	tb.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(append(os.Environ(), "AVISO_LOG_LEVEL=info"), env...)
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	a := &Aviso{Name: name, cmd: cmd}
	tb.Cleanup(func() { _ = a.Kill() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			a.mu.Lock()
			a.log = append(a.log, line)
			if len(a.log) > avisoLogLines {
				a.log = a.log[1:]
			}
			a.mu.Unlock()
			if !strings.Contains(line, "aviso serving") {
				continue
			}
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "addr="); ok {
					select {
					case addr <- v:
					default:
					}
				}
			}
		}
	}()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case v := <-addr:
		a.Base = "http://" + v
	case <-timer.C:
		tb.Fatalf("%s did not start within 30 s:\n%s", name, a.Tail())
	case <-ctx.Done():
		tb.Fatalf("%s: %v", name, ctx.Err())
	}
	req, err := http.NewRequestWithContext(ctx, "GET", a.Base+"/readyz", nil)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s readyz: %v", name, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("%s readyz: %s", name, res.Status)
	}
	return a
}

// Tail returns the last lines the node logged.
func (a *Aviso) Tail() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.log, "\n")
}

// Kill kills the node with SIGKILL and waits for it to exit. It returns the error of the kill:
// an error when the process has exited already.
func (a *Aviso) Kill() error {
	err := a.cmd.Process.Kill()
	_ = a.cmd.Wait()
	return err
}
