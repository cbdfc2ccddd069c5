package testenv

import (
	"bytes"
	"context"
	"database/sql"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// DBServer is a database server of a test's own — PostgreSQL or MariaDB, its data in a
// temporary directory, listening on a free 127.0.0.1 port — for tests that must do to the
// server what they may not do to the shared ones of AVISO_TEST_POSTGRES_URL and
// AVISO_TEST_MARIADB_DSN: kill it and start it again on the same data. Start it with
// PostgresServer or MariaDBServer; it is shut down and removed when the test ends.
//
// Durability is set for a process crash, not for an operating-system one: PostgreSQL runs with
// fsync=off and InnoDB with innodb_flush_log_at_trx_commit=2. A commit is still written to the
// kernel before it is acknowledged (PostgreSQL keeps synchronous_commit on), so Kill loses no
// committed transaction; only the flush to the disk, which a killed process never needs, is
// skipped, to keep the tests quick on a busy machine.
type DBServer struct {
	Kind string // "postgres" or "mariadb"
	Addr string // host:port, 127.0.0.1 and the port the server keeps across restarts

	dir  string // the temporary directory: data, socket, log
	bin  string // postgres or mariadbd
	args []string
	cred *syscall.Credential // the OS user the server runs as, when the test runs as root
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// PostgresServer initialises a PostgreSQL cluster in a temporary directory (initdb, trust
// authentication for user postgres) and starts it on a free loopback port; the database is
// "postgres". PostgreSQL refuses to run as root: a test running as root runs it as the OS user
// postgres, which owns the directory. Skips (fails under CI) when initdb and postgres are not
// found (on the PATH or in Debian's /usr/lib/postgresql/*/bin) or, as root, there is no user
// postgres.
func PostgresServer(tb testing.TB) *DBServer {
	tb.Helper()
	bin := postgresBin(tb)
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			missing(tb, "PostgreSQL refuses to run as root and there is no OS user postgres to run it as: "+err.Error())
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	s := newDBServer(tb, "postgres", cred)
	data := filepath.Join(s.dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	s.bin = filepath.Join(bin, "postgres")
	s.args = []string{"-D", data, "-p", port(s.Addr), "-k", s.dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=50"}
	s.Start(tb)
	return s
}

// MariaDBServer initialises a MariaDB data directory in a temporary directory
// (mariadb-install-db; root without a password) and starts mariadbd on a free loopback port,
// with an empty database "aviso". Skips (fails under CI) when mariadb-install-db and mariadbd are
// not found (on the PATH or in /usr/sbin).
func MariaDBServer(tb testing.TB) *DBServer {
	tb.Helper()
	install, daemon := program("mariadb-install-db"), program("mariadbd")
	if install == "" || daemon == "" {
		missing(tb, "mariadb-install-db or mariadbd not found: install Debian's mariadb-server to run the tests "+
			"that kill a MariaDB server of their own")
	}
	s := newDBServer(tb, "mariadb", nil)
	data := filepath.Join(s.dir, "data")
	asRoot := []string{}
	if os.Geteuid() == 0 {
		asRoot = []string{"--user=root"} // mariadbd runs as root only when told to
	}
	cmd := exec.Command(install, append([]string{"--no-defaults", "--datadir=" + data,
		"--auth-root-authentication-method=normal", "--skip-test-db"}, asRoot...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	s.bin = daemon
	s.args = append([]string{"--no-defaults", "--datadir=" + data, "--socket=" + filepath.Join(s.dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(s.dir, "mysqld.pid"), "--port=" + port(s.Addr), "--bind-address=127.0.0.1",
		"--skip-name-resolve", "--log-error=" + filepath.Join(s.dir, "server.log"),
		"--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M", "--innodb-flush-log-at-trx-commit=2"}, asRoot...)
	s.Start(tb)
	db, err := sql.Open("mysql", "root@tcp("+s.Addr+")/")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE aviso"); err != nil {
		tb.Fatalf("create database aviso: %v", err)
	}
	return s
}

// URL is the server's database as a postgres:// or mysql:// URL, the form `aviso serve
// --outbox` takes.
func (s *DBServer) URL() string {
	if s.Kind == "postgres" {
		return "postgres://postgres@" + s.Addr + "/postgres?sslmode=disable"
	}
	return "mysql://root@" + s.Addr + "/aviso"
}

// DSN is the data source name database/sql takes for the server's database: the URL for pgx,
// a go-sql-driver/mysql DSN for MariaDB.
func (s *DBServer) DSN() string {
	if s.Kind == "postgres" {
		return s.URL()
	}
	return s.MySQLConfig().FormatDSN()
}

// MySQLConfig is the go-sql-driver/mysql configuration of a MariaDB server's database "aviso".
func (s *DBServer) MySQLConfig() *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "root", "tcp", s.Addr, "aviso"
	return cfg
}

// newDBServer makes the temporary directory (owned by cred's user, if any), picks the port and
// registers the shutdown.
func newDBServer(tb testing.TB, kind string, cred *syscall.Credential) *DBServer {
	tb.Helper()
	// Not tb.TempDir: its parent is private to the test's user, and the server may run as another.
	dir, err := os.MkdirTemp("", "aviso-"+kind+"-")
	if err != nil {
		tb.Fatal(err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			tb.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &DBServer{Kind: kind, Addr: addr, dir: dir, cred: cred}
	tb.Cleanup(func() {
		s.shutdown(tb)
		if err := os.RemoveAll(dir); err != nil {
			tb.Errorf("remove %s: %v", dir, err)
		}
	})
	return s
}

// Start starts the server on its data directory and port and waits until it answers queries
// (after crash recovery, when it was killed). It fails the test when the server exits first or
// does not answer within two minutes.
func (s *DBServer) Start(tb testing.TB) {
	tb.Helper()
	if s.running() {
		tb.Fatalf("start the %s server: it is running", s.Kind)
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	if s.cred != nil {
		_ = logf.Chown(int(s.cred.Uid), int(s.cred.Gid))
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a ^C to the test's group reaches the test, which shuts it down.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(2 * time.Minute) // a bound for a loaded machine; a quiet one starts in a second
	for {
		err := s.ping()
		if err == nil {
			return
		}
		select {
		case <-done:
			tb.Fatalf("the %s server exited before it answered (%v):\n%s", s.Kind, cmd.ProcessState, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the %s server did not answer within 2 minutes: %v\n%s", s.Kind, err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ping runs a query on the server (PostgreSQL accepts connections during crash recovery but
// refuses to serve them until it ends).
func (s *DBServer) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.Kind == "postgres" {
		conn, err := pgx.Connect(ctx, s.URL())
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		return conn.Ping(ctx)
	}
	cfg := s.MySQLConfig()
	cfg.DBName = ""
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	return db.PingContext(ctx)
}

func (s *DBServer) running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Kill SIGKILLs every process of the server at once — a PostgreSQL postmaster and the backends
// and helpers it forked (each in a session of its own, so no process group holds them all), or
// mariadbd — as the kernel's OOM killer or a lost container would, and returns once they are
// gone. The postmaster is stopped (SIGSTOP) first, so that it forks nothing new while its
// processes are listed. Start starts the server again on the same data.
func (s *DBServer) Kill(tb testing.TB) {
	tb.Helper()
	if !s.running() {
		tb.Fatalf("kill the %s server: it is not running", s.Kind)
	}
	pid := s.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		tb.Fatalf("stop the %s server: %v", s.Kind, err)
	}
	s.await(tb, "the server to stop", func() bool {
		st, _ := procState(pid)
		return st == 'T' || !s.running()
	})
	pids := append(descendants(pid), pid)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	s.await(tb, "the killed server's processes to end", func() bool {
		if s.running() {
			return false
		}
		for _, p := range pids {
			if st, ok := procState(p); ok && st != 'Z' {
				return false
			}
		}
		return true
	})
}

// shutdown stops a running server cleanly (PostgreSQL's fast shutdown, which also removes its
// shared memory; mariadbd's SIGTERM), killing it if it has not stopped within a minute.
func (s *DBServer) shutdown(tb testing.TB) {
	if !s.running() {
		return
	}
	sig := syscall.SIGTERM
	if s.Kind == "postgres" {
		sig = syscall.SIGINT
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		tb.Errorf("the %s server did not shut down within a minute; killing it", s.Kind)
		s.Kill(tb)
	}
}

// await polls cond every 5 ms, failing the test after 30 s.
func (s *DBServer) await(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s server: timed out after 30 s waiting for %s", s.Kind, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logTail is the end of the server's logs, for a failure message.
func (s *DBServer) logTail() string {
	var b []byte
	for _, f := range []string{"stdout.log", "server.log"} {
		if data, err := os.ReadFile(filepath.Join(s.dir, f)); err == nil {
			b = append(b, data...)
		}
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// procState is the state letter of /proc/pid/stat (R, S, T, Z, …); false when there is no
// such process.
func procState(pid int) (byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	_, rest, ok := bytes.Cut(b, []byte(") ")) // the command name, in parentheses, may hold spaces
	if !ok || len(rest) == 0 {
		return 0, false
	}
	return rest[0], true
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndex(b, []byte(") "))
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+2:])) // state, ppid, …
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// postgresBin is the directory of initdb and postgres: the PATH's, else the newest of Debian's
// /usr/lib/postgresql/<version>/bin.
func postgresBin(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "postgres")); err == nil {
			return filepath.Dir(p)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dirs[i], "postgres")); err == nil {
			return dirs[i]
		}
	}
	missing(tb, "initdb and postgres not found (on the PATH or in /usr/lib/postgresql/*/bin): install Debian's "+
		"postgresql to run the tests that kill a PostgreSQL server of their own")
	return ""
}

// version is the major version in /usr/lib/postgresql/<version>/bin, 0 when it is not a number.
func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// program is the path of name on the PATH or in /usr/sbin (not on every user's PATH), "" when
// it is in neither.
func program(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// port is the port of host:port.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
