package outbox

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/service"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// dialect is what differs between PostgreSQL and MariaDB.
type dialect struct {
	kind     string // "postgres" or "mariadb"
	driver   string // database/sql driver name
	dataText string // the data column as text
	lag      string // SELECT count and age in seconds of the unrelayed rows
	// remove and mark are the DELETE and UPDATE of relayed rows, before "IN (…)".
	remove, mark string
	ph           func(n int) string
}

var (
	postgresDialect = dialect{kind: "postgres", driver: "pgx", dataText: "data::text",
		lag: "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM CURRENT_TIMESTAMP - min(created_at)), 0)::float8 " +
			"FROM aviso_outbox WHERE relayed_at IS NULL",
		remove: "DELETE FROM aviso_outbox WHERE id",
		mark:   "UPDATE aviso_outbox SET relayed_at = CURRENT_TIMESTAMP WHERE id",
		ph:     func(n int) string { return "$" + strconv.Itoa(n) }}
	mariadbDialect = dialect{kind: "mariadb", driver: "mysql", dataText: "data",
		lag: "SELECT COUNT(*), COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created_at), CURRENT_TIMESTAMP(6)), 0) / 1000000 " +
			"FROM aviso_outbox WHERE relayed_at IS NULL",
		// On a small table InnoDB may pick a full scan for "id IN (…)"; the primary key keeps the
		// statement on its rows (and the next one, which an application's insert may hold briefly).
		remove: "DELETE o FROM aviso_outbox o FORCE INDEX (PRIMARY) WHERE o.id",
		mark:   "UPDATE aviso_outbox FORCE INDEX (PRIMARY) SET relayed_at = CURRENT_TIMESTAMP(6) WHERE id",
		ph:     func(int) string { return "?" }}
)

// source is one outbox database and the loop that relays it.
type source struct {
	r       *Relay
	name    string
	tag     string // part of derived event ids: a hash of name
	d       dialect
	connURL string // for the PostgreSQL listener
	db      *sql.DB
	poll    time.Duration
	wake    chan struct{}

	// leader is the MariaDB connection holding the source's named lock (see lead); nil on
	// PostgreSQL, and while this relay stands by.
	leader *sql.Conn

	mu        sync.Mutex
	standby   bool
	lastID    int64
	lastAt    time.Time
	relayed   int64
	repeated  int64
	lastError string
}

// newSource parses a source URL and opens (without connecting) its database.
func newSource(raw string, r *Relay) (*source, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("outbox: source %q is not a postgres:// or mysql:// URL", aviso.RedactURL(raw))
	}
	q := u.Query()
	name := q.Get("aviso_source")
	q.Del("aviso_source")
	u.RawQuery = q.Encode()
	s := &source{r: r, wake: make(chan struct{}, 1), poll: r.cfg.PollInterval}
	var dsn string
	var mcfg *mysql.Config
	switch u.Scheme {
	case "postgres", "postgresql":
		s.d = postgresDialect
		dsn = u.String()
		s.connURL = dsn
		if s.poll <= 0 {
			s.poll = DefaultPollPostgres
		}
		if name == "" {
			name = "postgres://" + hostPort(u, "5432") + u.Path
			if sp := q.Get("search_path"); sp != "" {
				name += "?search_path=" + sp
			}
		}
	case "mysql", "mariadb":
		s.d = mariadbDialect
		mcfg, err = mysqlConfig(u)
		if err != nil {
			return nil, err
		}
		if s.poll <= 0 {
			s.poll = DefaultPollMariaDB
		}
		if name == "" {
			name = "mysql://" + mcfg.Addr + "/" + mcfg.DBName
		}
	default:
		return nil, fmt.Errorf("outbox: source %q: the scheme must be postgres:// or mysql://", aviso.RedactURL(raw))
	}
	if strings.Trim(u.Path, "/") == "" {
		return nil, fmt.Errorf("outbox: source %q names no database (postgres://host/dbname, mysql://host/dbname)", aviso.RedactURL(raw))
	}
	s.name = name
	sum := sha256.Sum256([]byte(name))
	s.tag = hex.EncodeToString(sum[:4])
	if mcfg != nil {
		// The driver's own messages ("unexpected EOF" when the server dies, …) go to the
		// relay's log, not to the process's stderr.
		mcfg.Logger = driverLogger{log: r.log.With("source", name)}
		c, err := mysql.NewConnector(mcfg)
		if err != nil {
			return nil, fmt.Errorf("outbox: source %s: %w", name, err)
		}
		s.db = sql.OpenDB(c)
	} else if s.db, err = sql.Open(s.d.driver, dsn); err != nil {
		return nil, fmt.Errorf("outbox: source %s: %w", name, err)
	}
	s.db.SetMaxOpenConns(4)
	s.db.SetMaxIdleConns(4)
	s.db.SetConnMaxIdleTime(5 * time.Minute)
	return s, nil
}

func hostPort(u *url.URL, defPort string) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), defPort)
}

// mysqlConfig turns mysql://user:pass@host:port/db?option=value into the driver's config (the
// query takes the driver's DSN options, tls=true, timeout=5s, …) with UTC times. The relay's
// transactions are READ COMMITTED (BeginTx asks for it): no gap locks, so the application's
// inserts never wait for the relay.
func mysqlConfig(u *url.URL) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN("/?" + u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("outbox: mysql source options: %w", err)
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.Net = "tcp"
	cfg.Addr = hostPort(u, "3306")
	cfg.DBName = strings.Trim(u.Path, "/")
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	return cfg, nil
}

// driverLogger logs go-sql-driver/mysql's messages at debug level: each is about a connection
// the driver drops and replaces, and the relay reports the failures that matter itself.
type driverLogger struct{ log *slog.Logger }

func (l driverLogger) Print(v ...any) {
	l.log.Debug("outbox mysql driver: " + strings.TrimSpace(fmt.Sprintln(v...)))
}

// signal wakes the loop without blocking.
func (s *source) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run relays the source until ctx ends.
func (s *source) run(ctx context.Context) {
	if s.d.kind != "postgres" {
		s.work(ctx) // one worker: it holds the source's lock (see lead)
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.listen(ctx) })
	for range s.r.cfg.Workers {
		wg.Go(func() { s.work(ctx) })
	}
	wg.Wait()
}

// work is one relay loop: it relays batches while they come full, then waits for a wake-up or
// the poll interval.
func (s *source) work(ctx context.Context) {
	log := s.r.log.With("source", s.name)
	backoff := time.Duration(0)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		n, err := s.relayBatch(ctx)
		if ctx.Err() != nil {
			s.dropLeader()
			return
		}
		wait := s.poll
		switch {
		case errors.Is(err, errStandby):
			err, backoff, wait = nil, 0, standbyPoll
		case err != nil:
			backoff = min(max(2*backoff, time.Second), s.r.cfg.MaxBackoff)
			wait = backoff
			s.setError(err)
			log.Warn("outbox relay failed; retrying", "error", err, "retry_in", wait.String())
		case n == s.r.cfg.BatchSize:
			backoff = 0
			s.signal() // more may wait: a sibling worker reads the next batch meanwhile
			continue
		default:
			backoff = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
			if err != nil {
				// An error waits its backoff out, whatever wakes the loop.
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// listen holds a PostgreSQL connection that LISTENs on the DDL trigger's channel and wakes the
// loop on each notification, reconnecting after an error.
func (s *source) listen(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		conn, err := pgx.Connect(ctx, s.connURL)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+notifyChannel)
			if err == nil {
				backoff = time.Second
				s.signal() // anything committed while not listening
				for err == nil {
					_, err = conn.WaitForNotification(ctx)
					if err == nil {
						s.signal()
					}
				}
			}
			conn.Close(context.Background())
		}
		if ctx.Err() != nil {
			return
		}
		s.r.log.Debug("outbox listener reconnecting", "source", s.name, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.r.cfg.MaxBackoff)
	}
}

// row is one outbox row as read.
type row struct {
	id       int64
	tenantID string
	typ      string
	extRef   sql.NullString
	data     string
	eventID  sql.NullString
}

// rejection is a row refused for its own sake, and why.
type rejection struct {
	id     int64
	tenant string
	typ    string
	reason string
}

// errStandby: another relay holds the MariaDB source's lock.
var errStandby = errors.New("another relay holds the source")

// standbyPoll is how often a standing-by relay tries to take a MariaDB source's lock.
const standbyPoll = time.Second

// begin starts a relay transaction. On MariaDB it runs on the leader connection, taken first
// (see lead).
func (s *source) begin(ctx context.Context) (*sql.Tx, error) {
	opts := &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	if s.d.kind == "postgres" {
		return s.db.BeginTx(ctx, opts)
	}
	if s.leader == nil {
		if err := s.lead(ctx); err != nil {
			return nil, err
		}
	}
	return s.leader.BeginTx(ctx, opts)
}

// lead takes the MariaDB source's named lock (GET_LOCK, held by the connection's session): one
// relay per MariaDB source works at a time and the others stand by, taking over within a second
// once its connection ends. Two InnoDB relays deleting neighbouring rows deadlock (a locking
// read also locks the record after its range), which PostgreSQL's SKIP LOCKED readers never do.
func (s *source) lead(ctx context.Context) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	var got sql.NullInt64
	err = c.QueryRowContext(ctx, "SELECT GET_LOCK(LEFT(CONCAT('aviso_outbox.', DATABASE()), 64), 0)").Scan(&got)
	if err != nil || got.Int64 != 1 {
		discard(c)
		if err != nil {
			return fmt.Errorf("take the relay lock: %w", err)
		}
		s.mu.Lock()
		s.standby = true
		s.mu.Unlock()
		return errStandby
	}
	s.mu.Lock()
	s.standby = false
	s.mu.Unlock()
	s.leader = c
	return nil
}

// dropLeader closes the leader connection, which releases the lock.
func (s *source) dropLeader() {
	if s.leader != nil {
		discard(s.leader)
		s.leader = nil
	}
}

// discard closes c's connection rather than returning it to the pool (a pooled session would
// keep its named lock).
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}

// relayBatch relays up to BatchSize rows in one source transaction and returns how many it read.
// After an error on MariaDB it gives up the leader connection (and the lock).
func (s *source) relayBatch(ctx context.Context) (n int, err error) {
	if s.d.kind != "postgres" {
		defer func() {
			if err != nil && !errors.Is(err, errStandby) {
				s.dropLeader()
			}
		}()
	}
	tx, err := s.begin(ctx)
	if errors.Is(err, errStandby) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	rows, err := s.read(ctx, tx)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	done, rejected, repeated, err := s.publish(ctx, rows)
	if err != nil {
		return 0, err
	}
	for _, rj := range rejected {
		_, err := tx.ExecContext(ctx, "INSERT INTO aviso_outbox_rejected "+
			"(id, tenant_id, type, external_reference, data, event_id, created_at, reason) "+
			"SELECT id, tenant_id, type, external_reference, "+s.d.dataText+", event_id, created_at, "+s.d.ph(1)+
			" FROM aviso_outbox WHERE id = "+s.d.ph(2), rj.reason, rj.id)
		if err != nil {
			return 0, fmt.Errorf("move row %d to aviso_outbox_rejected: %w", rj.id, err)
		}
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = strconv.FormatInt(r.id, 10)
	}
	stmt := s.d.remove
	if s.r.cfg.Keep {
		stmt = s.d.mark
	}
	_, err = tx.ExecContext(ctx, stmt+" IN ("+strings.Join(ids, ",")+")")
	if err != nil {
		return 0, fmt.Errorf("remove relayed rows: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	for _, rj := range rejected {
		s.r.log.Warn("outbox row rejected", "source", s.name, "outbox_id", rj.id, "tenant_id", rj.tenant,
			"event_type", rj.typ, "reason", rj.reason)
	}
	s.mu.Lock()
	s.lastError = ""
	for _, id := range done {
		s.lastID = max(s.lastID, id)
	}
	if len(done) > 0 {
		s.lastAt = time.Now().UTC()
	}
	s.relayed += int64(len(done))
	s.repeated += int64(repeated)
	s.mu.Unlock()
	return len(rows), nil
}

// read locks the oldest unrelayed rows that no other relay holds.
func (s *source) read(ctx context.Context, tx *sql.Tx) ([]row, error) {
	q := "SELECT id, tenant_id, type, external_reference, " + s.d.dataText + ", event_id FROM aviso_outbox " +
		"WHERE relayed_at IS NULL ORDER BY id LIMIT " + strconv.Itoa(s.r.cfg.BatchSize) + " FOR UPDATE SKIP LOCKED"
	rs, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read aviso_outbox: %w", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.id, &r.tenantID, &r.typ, &r.extRef, &r.data, &r.eventID); err != nil {
			return nil, fmt.Errorf("read aviso_outbox: %w", err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read aviso_outbox: %w", err)
	}
	return out, nil
}

// eventID is the id of a row's event: the row's event_id, or one derived from the source and
// the row id, stable across re-reads.
func (s *source) eventID(r row) string {
	if r.eventID.Valid && r.eventID.String != "" {
		return r.eventID.String
	}
	return "evt_outbox_" + s.tag + "_" + strconv.FormatInt(r.id, 10)
}

func (s *source) input(r row) service.PublishInput {
	return service.PublishInput{ID: s.eventID(r), Type: r.typ, Data: json.RawMessage(r.data), ExternalReference: r.extRef.String}
}

// publish publishes rows grouped by tenant (each group in id order, one Publish call) and
// returns the ids published, the rows refused, and how many were already in Aviso. A refusal
// of a group falls back to one Publish per row, so one bad row refuses only itself.
func (s *source) publish(ctx context.Context, rows []row) (done []int64, rejected []rejection, repeated int, err error) {
	root := aviso.Principal{KeyID: principalKeyID}
	var order []string
	groups := map[string][]row{}
	for _, r := range rows {
		if _, ok := groups[r.tenantID]; !ok {
			order = append(order, r.tenantID)
		}
		groups[r.tenantID] = append(groups[r.tenantID], r)
	}
	count := func(res []service.PublishResult) {
		for _, x := range res {
			if !x.Created {
				repeated++
			}
		}
	}
	for _, tenant := range order {
		g := groups[tenant]
		in := make([]service.PublishInput, len(g))
		for i, r := range g {
			in[i] = s.input(r)
		}
		res, err := s.r.svc.Publish(ctx, root, tenant, in)
		if err == nil {
			count(res)
			for _, r := range g {
				done = append(done, r.id)
			}
			continue
		}
		if !refused(err) {
			return nil, nil, 0, fmt.Errorf("publish for tenant %q: %w", tenant, err)
		}
		if len(g) == 1 || aviso.ErrorCode(err) == aviso.ENOTFOUND {
			for _, r := range g {
				rejected = append(rejected, rejection{r.id, r.tenantID, r.typ, reason(err)})
			}
			continue
		}
		for i, r := range g {
			res, err := s.r.svc.Publish(ctx, root, tenant, in[i:i+1])
			switch {
			case err == nil:
				count(res)
				done = append(done, r.id)
			case refused(err):
				rejected = append(rejected, rejection{r.id, r.tenantID, r.typ, reason(err)})
			default:
				return nil, nil, 0, fmt.Errorf("publish for tenant %q: %w", tenant, err)
			}
		}
	}
	return done, rejected, repeated, nil
}

// refused reports whether the service refused an event for the event's own sake: retrying the
// same row could never succeed.
func refused(err error) bool {
	switch aviso.ErrorCode(err) {
	case aviso.EINVALID, aviso.ENOTFOUND, aviso.ETOOLARGE, aviso.EBADREQUEST:
		return true
	}
	return false
}

// reason is what a rejected row's reason column says: the service's message, naming the field.
func reason(err error) string {
	var e *aviso.Error
	msg := err.Error()
	if errors.As(err, &e) {
		msg = e.Message
		if e.Field != "" {
			msg = e.Field + ": " + msg
		}
	}
	if len(msg) > rejectedReasonMaxLength {
		msg = msg[:rejectedReasonMaxLength]
	}
	return msg
}

func (s *source) setError(err error) {
	s.mu.Lock()
	s.lastError = err.Error()
	s.mu.Unlock()
}

// status reads the source's lag and rejected count and adds this node's counters.
func (s *source) status(ctx context.Context) Status {
	s.mu.Lock()
	st := Status{Source: s.name, Kind: s.d.kind, LastRelayedID: s.lastID, Relayed: s.relayed,
		Repeated: s.repeated, LastError: s.lastError, Standby: s.standby}
	if !s.lastAt.IsZero() {
		t := s.lastAt
		st.LastRelayedAt = &t
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, DefaultStatusTimeout)
	defer cancel()
	err := s.db.QueryRowContext(ctx, s.d.lag).Scan(&st.LagRows, &st.LagSeconds)
	if err == nil {
		err = s.db.QueryRowContext(ctx, "SELECT count(*) FROM aviso_outbox_rejected").Scan(&st.Rejected)
	}
	if err != nil {
		st.Error = "cannot read the source: " + err.Error()
		return st
	}
	st.Reachable = true
	return st
}

// listRejected reads a page of rejected rows, newest first; the cursor is the last id seen.
func (s *source) listRejected(ctx context.Context, lp aviso.ListParams) (*aviso.Page[*Rejected], error) {
	limit := lp.Size()
	where := ""
	var args []any
	if lp.After != "" {
		after, err := strconv.ParseInt(lp.After, 10, 64)
		if err != nil {
			return nil, aviso.Invalid("after", "is not a cursor of this list")
		}
		where = " WHERE id < " + s.d.ph(1)
		args = append(args, after)
	}
	q := "SELECT id, tenant_id, type, external_reference, data, event_id, reason, created_at, rejected_at " +
		"FROM aviso_outbox_rejected" + where + " ORDER BY id DESC LIMIT " + strconv.Itoa(limit+1)
	rs, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, &aviso.Error{Code: aviso.EUNAVAILABLE, Message: fmt.Sprintf("outbox source %s cannot be read", s.name), Err: err}
	}
	defer rs.Close()
	page := &aviso.Page[*Rejected]{Data: []*Rejected{}}
	for rs.Next() {
		var r Rejected
		var ext, evt sql.NullString
		if err := rs.Scan(&r.ID, &r.TenantID, &r.Type, &ext, &r.Data, &evt, &r.Reason, &r.CreatedAt, &r.RejectedAt); err != nil {
			return nil, fmt.Errorf("read aviso_outbox_rejected: %w", err)
		}
		r.Source, r.ExternalReference, r.EventID = s.name, ext.String, evt.String
		r.CreatedAt, r.RejectedAt = r.CreatedAt.UTC(), r.RejectedAt.UTC()
		page.Data = append(page.Data, &r)
	}
	if err := rs.Err(); err != nil {
		return nil, &aviso.Error{Code: aviso.EUNAVAILABLE, Message: fmt.Sprintf("outbox source %s cannot be read", s.name), Err: err}
	}
	if len(page.Data) > limit {
		page.Data = page.Data[:limit]
		page.HasMore = true
		page.NextCursor = strconv.FormatInt(page.Data[limit-1].ID, 10)
	}
	return page, nil
}
