package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// runStore runs the selected scenarios on one store: all but the backlog on one node (the
// end-to-end scenario on a group of Config.Nodes nodes of its own when the store is PostgreSQL
// and Nodes is above 1), then the backlog on a fresh node of its own. A scenario that fails
// yields a result naming the error.
func (r *runner) runStore(ctx context.Context, store string) []Result {
	var out []Result
	fail := func(scenario string, err error) {
		r.log.Warn("bench scenario failed", "store", store, "scenario", scenario, "error", err)
		out = append(out, Result{Store: store, Scenario: scenario, Metric: "error", Note: err.Error()})
	}
	type scenario struct {
		name string
		run  func(context.Context, []*node) ([]Result, error)
	}
	onOne := func(f func(context.Context, *node) ([]Result, error)) func(context.Context, []*node) ([]Result, error) {
		return func(ctx context.Context, nodes []*node) ([]Result, error) { return f(ctx, nodes[0]) }
	}
	// Each group runs on nodes started for it and stopped after it.
	type group struct {
		nodes     int
		scenarios []scenario
	}
	var groups []group
	e2e := scenario{ScenarioEndToEnd, r.endToEnd}
	shared := group{nodes: 1}
	if size := r.clusterSize(store); size > 1 && r.wants(ScenarioEndToEnd) {
		groups = append(groups, group{nodes: size, scenarios: []scenario{e2e}})
	} else if r.wants(ScenarioEndToEnd) {
		shared.scenarios = append(shared.scenarios, e2e)
	}
	for _, s := range []scenario{
		{ScenarioPublish, onOne(r.publish)}, {ScenarioLatency, onOne(r.latency)},
		{ScenarioFanout, onOne(r.fanout)}, {ScenarioIsolate, onOne(r.isolation)},
		{ScenarioOrdering, onOne(r.ordering)}, {ScenarioRateLimit, onOne(r.rateLimit)},
	} {
		if r.wants(s.name) {
			shared.scenarios = append(shared.scenarios, s)
		}
	}
	if len(shared.scenarios) > 0 {
		groups = append(groups, shared)
	}
	for _, g := range groups {
		if ctx.Err() != nil {
			break
		}
		nodes, err := r.startCluster(ctx, store, g.nodes)
		if err != nil {
			fail("node", err)
			return out
		}
		first := len(out)
		if err := nodes[0].api.ensureEventType(ctx); err != nil {
			fail("node", err)
		} else {
			for _, s := range g.scenarios {
				if ctx.Err() != nil {
					break
				}
				res, err := s.run(ctx, nodes)
				for i := range res {
					res[i].Store, res[i].Scenario, res[i].Nodes = store, s.name, len(nodes)
				}
				out = append(out, res...)
				if err != nil {
					fail(s.name, err)
				}
			}
		}
		if err := stopNodes(nodes); err != nil {
			r.log.Warn("bench: stop node", "store", store, "error", err)
		}
		if len(nodes) > 1 {
			// Stopped, each engine has recorded every attempt it made; the group ran one scenario.
			attempts := nodeAttempts(nodes)
			for i := first; i < len(out); i++ {
				if out[i].Metric != "error" && attempts != nil {
					out[i].NodeAttempts = attempts
					out[i].Note += fmt.Sprintf("; attempts by node: %s", joinInts(attempts))
				}
			}
		}
	}
	if r.wants(ScenarioOutbox) && ctx.Err() == nil {
		res, err := r.outboxScenario(ctx, store)
		for i := range res {
			res[i].Store, res[i].Scenario, res[i].Nodes = store, ScenarioOutbox, 1
		}
		out = append(out, res...)
		if err != nil {
			fail(ScenarioOutbox, err)
		}
	}
	if r.wants(ScenarioFeed) && ctx.Err() == nil {
		res, err := r.feed(ctx, store)
		for i := range res {
			res[i].Store, res[i].Scenario, res[i].Nodes = store, ScenarioFeed, 1
		}
		out = append(out, res...)
		if err != nil {
			fail(ScenarioFeed, err)
		}
	}
	if r.wants(ScenarioBacklog) && ctx.Err() == nil {
		res, err := r.backlog(ctx, store)
		for i := range res {
			res[i].Store, res[i].Scenario, res[i].Nodes = store, ScenarioBacklog, 1
		}
		out = append(out, res...)
		if err != nil {
			fail(ScenarioBacklog, err)
		}
	}
	return out
}

// nodeAttempts returns the attempts each node's engine made, or nil if one cannot say.
func nodeAttempts(nodes []*node) []int64 {
	out := make([]int64, len(nodes))
	for i, n := range nodes {
		if n.attempts == nil {
			return nil
		}
		out[i] = n.attempts()
	}
	return out
}

func joinInts(v []int64) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = thousands(n)
	}
	return strings.Join(s, ", ")
}

// tenant creates a tenant for one scenario and returns its ID and a cleanup that deletes it
// (with its endpoints, events and deliveries).
func (r *runner) tenant(ctx context.Context, n *node, name string) (string, func(), error) {
	id := "bench-" + r.runID + "-" + name
	if err := n.api.createTenant(ctx, id); err != nil {
		return "", nil, err
	}
	return id, func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		// A 5xx is tried again, twice: on PostgreSQL the deletion can be chosen as a deadlock's
		// victim while another node's engine still records completions of the tenant's deliveries.
		var err error
		for range 3 {
			var se *statusError
			if err = n.api.deleteTenant(ctx, id); err == nil || !errors.As(err, &se) || se.Status < 500 {
				break
			}
		}
		if err != nil {
			r.log.Warn("bench: delete tenant", "tenant_id", id, "error", err)
		}
	}, nil
}

// tick shows a progress line computed by status every 200 ms until the returned stop is called.
func (r *runner) tick(ctx context.Context, n *node, status func() string) (stop func()) {
	return startTicker(ctx, func() { r.progress.set("[" + n.store + "] " + status()) })
}

// publishBatches publishes events prefix-0 … prefix-(count-1) in batches of size from clients
// concurrent publishers, counting published events in done, each batch to the next of nodes in
// turn; with refs > 0, event i carries the external reference doc-(i mod refs). It returns the
// first error.
func publishBatches(ctx context.Context, nodes []*node, tenant, prefix string, count, size, clients, refs int, done *atomic.Int64) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range clients {
		wg.Go(func() {
			ids := make([]string, 0, size)
			var docs []string
			for ctx.Err() == nil {
				from := int(next.Add(int64(size))) - size
				if from >= count {
					return
				}
				ids = ids[:0]
				for i := from; i < min(from+size, count); i++ {
					ids = append(ids, prefix+"-"+strconv.Itoa(i))
				}
				if refs > 0 {
					docs = docs[:0]
					for i := from; i < min(from+size, count); i++ {
						docs = append(docs, "doc-"+strconv.Itoa(i%refs))
					}
				}
				n := nodes[(from/size)%len(nodes)]
				if err := n.api.publishBatch(ctx, tenant, ids, docs); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
				done.Add(int64(len(ids)))
			}
		})
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("publish batch: %w", first)
	}
	return ctx.Err()
}

// deliverAll publishes count events by batch, round-robin across nodes, while waiting for the
// receiver to have total requests, and returns when the total-th arrived. Publishing failures
// end the wait.
func (r *runner) deliverAll(ctx context.Context, nodes []*node, rcv *receiver, tenant, prefix string, count int, total int64) (time.Time, error) {
	return r.deliverAllRefs(ctx, nodes, rcv, tenant, prefix, count, 0, total)
}

// deliverAllRefs is deliverAll with the events' external references spread over refs (0: none).
func (r *runner) deliverAllRefs(ctx context.Context, nodes []*node, rcv *receiver, tenant, prefix string, count, refs int, total int64) (time.Time, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var published atomic.Int64
	pubErr := make(chan error, 1)
	go func() {
		err := publishBatches(ctx, nodes, tenant, prefix, count, r.sizes.BatchSize, 2, refs, &published)
		if err != nil {
			cancel()
		}
		pubErr <- err
	}()
	last, err := rcv.waitFor(ctx, total)
	cancel()
	if perr := <-pubErr; perr != nil && !errors.Is(perr, context.Canceled) {
		return last, perr
	}
	return last, err
}

// endToEnd publishes EndToEnd events by batch to one endpoint on a receiver answering 204 and
// times from the first publish until the last delivery arrived. With several nodes (sharing a
// PostgreSQL database) the batches go to their APIs in turn and every node's engine delivers.
func (r *runner) endToEnd(ctx context.Context, nodes []*node) ([]Result, error) {
	v, got, elapsed, writer, err := r.measureEndToEnd(ctx, nodes)
	if err != nil && !errors.Is(err, errIncomplete) {
		return nil, err
	}
	if err == nil && len(nodes) == 1 && nodes[0].pid == 0 {
		r.e2e[nodes[0].store] = v // an in-process backlog drains on one such node: compare it with one
	}
	where := "one node"
	if len(nodes) > 1 {
		where = fmt.Sprintf("%d nodes on one database (batches to their APIs in turn)", len(nodes))
	}
	return []Result{{Metric: "deliveries_per_s", Value: v, Unit: "dlv/s", OfCeiling: r.ofCeiling(v),
		Target: atLeast(10_000), Count: got, Expected: int64(r.sizes.EndToEnd), Complete: err == nil, Seconds: elapsed.Seconds(),
		WriterBusy: writer.value(),
		Note: fmt.Sprintf("one endpoint, %s; published in batches of %d meanwhile; every attempt recorded by the store; "+
			"target also ≥ 0.40 of the ceiling (here %.2f)", where, r.sizes.BatchSize, r.ofCeiling(v)) + writer.note()}}, nil
}

// measureEndToEnd publishes EndToEnd events by batch to one endpoint of a tenant of its own on
// nodes while they deliver, and returns the deliveries per second from the first publish to the
// last arrival, how many arrived and in how long, and the first node's writer meanwhile;
// errIncomplete if not all of them did in time.
func (r *runner) measureEndToEnd(ctx context.Context, nodes []*node) (float64, int64, time.Duration, writerUse, error) {
	n := nodes[0]
	rcv, err := startReceiver(false, nil)
	if err != nil {
		return 0, 0, 0, writerUse{}, err
	}
	defer rcv.close()
	tenant, cleanup, err := r.tenant(ctx, n, "e2e")
	if err != nil {
		return 0, 0, 0, writerUse{}, err
	}
	defer cleanup()
	if _, err := n.api.createEndpoint(ctx, tenant, rcv.URL()+"/e2e", 0); err != nil {
		return 0, 0, 0, writerUse{}, err
	}
	total := r.sizes.EndToEnd
	ctx, cancel := context.WithTimeout(ctx, r.sizes.Timeout)
	defer cancel()
	defer r.tick(ctx, n, func() string { return fmt.Sprintf("end-to-end: %d/%d delivered", rcv.Count(), total) })()
	writer := writerWindow(n)
	start := time.Now()
	last, err := r.deliverAll(ctx, nodes, rcv, tenant, "e2e", total, int64(total))
	if err != nil && !errors.Is(err, errIncomplete) {
		return 0, 0, 0, writerUse{}, err
	}
	got, elapsed := rcv.Count(), last.Sub(start)
	return rate(got, elapsed), got, elapsed, writer(), err
}

// childEndToEnd measures end-to-end, as measureEndToEnd does, on a node of its own started as
// the backlog's is (a child process), so that the drain is compared with a figure of the same
// topology: a node in a process of its own, beside the bench's receivers and clients, shares
// the CPUs differently from one in the bench's process. It returns 0 for a node the bench runs
// in-process (the end_to_end scenario's figure is then the reference).
func (r *runner) childEndToEnd(ctx context.Context, store string) (float64, writerUse, error) {
	if len(r.cfg.NodeCommand) == 0 {
		return 0, writerUse{}, nil
	}
	n, err := r.startNode(ctx, store, true)
	if err != nil {
		return 0, writerUse{}, err
	}
	v, w, err := func() (float64, writerUse, error) {
		if err := n.api.ensureEventType(ctx); err != nil {
			return 0, writerUse{}, err
		}
		if err := n.resume(); err != nil {
			return 0, writerUse{}, err
		}
		v, _, _, w, err := r.measureEndToEnd(ctx, []*node{n})
		if errors.Is(err, errIncomplete) {
			r.log.Warn("bench: end-to-end on a child node did not finish in time; the drain is compared with end_to_end's figure")
			return 0, writerUse{}, nil
		}
		return v, w, err
	}()
	return v, w, errors.Join(err, n.stop())
}

// publish measures the publish API: single-event requests from PublishClients concurrent
// clients, then events by batch, to a tenant with one endpoint (so deliveries are created and
// flow meanwhile, as in production); then it waits for every delivery to arrive.
func (r *runner) publish(ctx context.Context, n *node) ([]Result, error) {
	rcv, err := startReceiver(false, nil)
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	tenant, cleanup, err := r.tenant(ctx, n, "publish")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if _, err := n.api.createEndpoint(ctx, tenant, rcv.URL()+"/publish", 0); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.sizes.Timeout)
	defer cancel()

	// Single-event requests.
	reqs := r.sizes.PublishRequests
	var next, ok atomic.Int64
	stop := r.tick(ctx, n, func() string { return fmt.Sprintf("publish: %d/%d single-event requests", ok.Load(), reqs) })
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	writer := writerWindow(n)
	start := time.Now()
	for range r.sizes.PublishClients {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(reqs) {
					return
				}
				if err := n.api.publish(ctx, tenant, "single-"+strconv.FormatInt(i, 10)); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	singleElapsed := time.Since(start)
	singleWriter := writer()
	stop()
	if e := firstErr.Load(); e != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("publish: %w", *e)
	}
	single := rate(ok.Load(), singleElapsed)
	out := []Result{{Metric: "single_requests_per_s", Value: single, Unit: "req/s", OfCeiling: r.ofCeiling(single),
		Target: atLeast(5_000), Count: ok.Load(), Expected: int64(reqs), Complete: ok.Load() == int64(reqs),
		Seconds: singleElapsed.Seconds(), WriterBusy: singleWriter.value(),
		Note: fmt.Sprintf("%d concurrent clients, one event per request, one subscribed endpoint", r.sizes.PublishClients) +
			singleWriter.note()}}

	// Batches.
	events := r.sizes.BatchEvents
	var published atomic.Int64
	stop = r.tick(ctx, n, func() string { return fmt.Sprintf("publish: %d/%d events by batch", published.Load(), events) })
	writer = writerWindow(n)
	start = time.Now()
	err = publishBatches(ctx, []*node{n}, tenant, "batch", events, r.sizes.BatchSize, 4, 0, &published)
	batchElapsed := time.Since(start)
	batchWriter := writer()
	stop()
	if err != nil && ctx.Err() == nil {
		return out, err
	}
	batch := rate(published.Load(), batchElapsed)
	out = append(out, Result{Metric: "batch_events_per_s", Value: batch, Unit: "ev/s", OfCeiling: r.ofCeiling(batch),
		Target: atLeast(50_000), Count: published.Load(), Expected: int64(events), Complete: published.Load() == int64(events),
		Seconds: batchElapsed.Seconds(), WriterBusy: batchWriter.value(),
		Note: fmt.Sprintf("%d events per request, 4 concurrent clients", r.sizes.BatchSize) + batchWriter.note()})

	// Every published event must arrive.
	want := ok.Load() + published.Load()
	stop = r.tick(ctx, n, func() string { return fmt.Sprintf("publish: %d/%d delivered", rcv.Count(), want) })
	_, err = rcv.waitFor(ctx, want)
	stop()
	out = append(out, Result{Metric: "delivered", Value: float64(rcv.Count()), Unit: "dlv", Count: rcv.Count(),
		Expected: want, Complete: err == nil, Seconds: time.Since(start).Seconds()})
	return out, nil
}

// latency offers LatencyRate single-event publishes per second, on schedule whatever the
// answers (an open loop), and measures from just before each request is sent until its
// delivery reaches the receiver (matched by the Webhook-Id header, the event ID).
func (r *runner) latency(ctx context.Context, n *node) ([]Result, error) {
	var sent sync.Map // event ID → time.Time
	var mu sync.Mutex
	total := r.sizes.LatencyEvents
	lat := make([]time.Duration, 0, total)
	rcv, err := startReceiver(false, func(req *http.Request, at time.Time) {
		if v, ok := sent.Load(req.Header.Get("Webhook-Id")); ok {
			mu.Lock()
			lat = append(lat, at.Sub(v.(time.Time)))
			mu.Unlock()
		}
	})
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	tenant, cleanup, err := r.tenant(ctx, n, "latency")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if _, err := n.api.createEndpoint(ctx, tenant, rcv.URL()+"/latency", 0); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.sizes.Timeout)
	defer cancel()
	defer r.tick(ctx, n, func() string {
		return fmt.Sprintf("latency: %d/%d delivered at %d/s offered", rcv.Count(), total, r.sizes.LatencyRate)
	})()

	interval := time.Second / time.Duration(r.sizes.LatencyRate)
	sem := make(chan struct{}, 512) // requests outstanding at once
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	timer := time.NewTimer(0)
	<-timer.C
	start := time.Now()
	var sentAll time.Time
send:
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break send
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break send
		}
		if firstErr.Load() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			id := "lat-" + strconv.Itoa(i)
			sent.Store(id, time.Now())
			if err := n.api.publish(ctx, tenant, id); err != nil {
				firstErr.CompareAndSwap(nil, &err)
			}
		})
		sentAll = time.Now()
	}
	offered := rate(int64(total), sentAll.Sub(start))
	_, waitErr := rcv.waitFor(ctx, int64(total))
	cancel()
	wg.Wait()
	if e := firstErr.Load(); e != nil && !errors.Is(*e, context.Canceled) {
		return nil, fmt.Errorf("latency: publish: %w", *e)
	}
	mu.Lock()
	l := summarise(lat)
	mu.Unlock()
	note := fmt.Sprintf("offered %d events at %.0f/s (one per request), one endpoint; max %.1f ms", total, offered, ms(l.Max))
	mk := func(metric string, d time.Duration, target *Target) Result {
		return Result{Metric: metric, Value: ms(d), Unit: "ms", Target: target, Count: int64(l.N), Expected: int64(total),
			Complete: waitErr == nil && l.N == total, Seconds: time.Since(start).Seconds()}
	}
	p99 := mk("p99_ms", l.P99, atMost(25))
	p99.Note = note
	return []Result{mk("p50_ms", l.P50, nil), mk("p95_ms", l.P95, nil), p99}, nil
}

// fanout subscribes FanoutEndpoints endpoints of one tenant (distinct paths on one receiver)
// and publishes FanoutRounds events one after another, timing each from publish until the last
// endpoint has it. The figure is the slowest round.
func (r *runner) fanout(ctx context.Context, n *node) ([]Result, error) {
	rcv, err := startReceiver(false, nil)
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	tenant, cleanup, err := r.tenant(ctx, n, "fanout")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	ctx, cancel := context.WithTimeout(ctx, r.sizes.Timeout)
	defer cancel()
	eps := r.sizes.FanoutEndpoints
	var created, next atomic.Int64
	stop := r.tick(ctx, n, func() string { return fmt.Sprintf("fan-out: %d/%d endpoints created", created.Load(), eps) })
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil && firstErr.Load() == nil {
				i := next.Add(1) - 1
				if i >= int64(eps) {
					return
				}
				if _, err := n.api.createEndpoint(ctx, tenant, rcv.URL()+"/fanout/"+strconv.FormatInt(i, 10), 0); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				created.Add(1)
			}
		})
	}
	wg.Wait()
	stop()
	if e := firstErr.Load(); e != nil {
		return nil, fmt.Errorf("fan-out: create endpoints: %w", *e)
	}
	var rounds []time.Duration
	var waitErr error
	defer r.tick(ctx, n, func() string {
		return fmt.Sprintf("fan-out: %d/%d delivered", rcv.Count(), eps*r.sizes.FanoutRounds)
	})()
	for round := range r.sizes.FanoutRounds {
		start := time.Now()
		if err := n.api.publish(ctx, tenant, "fanout-"+strconv.Itoa(round)); err != nil {
			return nil, fmt.Errorf("fan-out: publish: %w", err)
		}
		var last time.Time
		last, waitErr = rcv.waitFor(ctx, int64(eps*(round+1)))
		rounds = append(rounds, last.Sub(start))
		if waitErr != nil {
			break
		}
	}
	worst := slices.Max(rounds)
	note := "rounds:"
	for _, d := range rounds {
		note += fmt.Sprintf(" %.0f ms", ms(d))
	}
	return []Result{{Metric: "last_endpoint_s", Value: worst.Seconds(), Unit: "s", Target: atMost(2),
		Count: rcv.Count(), Expected: int64(eps * r.sizes.FanoutRounds), Complete: waitErr == nil,
		Seconds: worst.Seconds(), Note: fmt.Sprintf("%d endpoints, slowest of %d events; %s", eps, len(rounds), note)}}, nil
}

// isolation measures a healthy endpoint's throughput alone, then beside an endpoint of the same
// tenant that accepts connections and never answers (1 s timeout), with Isolation events each,
// IsolationRounds times, and reports the medians.
func (r *runner) isolation(ctx context.Context, n *node) ([]Result, error) {
	dead, err := startReceiver(true, nil)
	if err != nil {
		return nil, err
	}
	defer dead.close()
	count := r.sizes.Isolation
	ctx, cancel := context.WithTimeout(ctx, r.sizes.Timeout)
	defer cancel()

	measure := func(name string, withDead bool) (float64, int64, time.Duration, writerUse, error) {
		rcv, err := startReceiver(false, nil)
		if err != nil {
			return 0, 0, 0, writerUse{}, err
		}
		defer rcv.close()
		tenant, cleanup, err := r.tenant(ctx, n, name)
		if err != nil {
			return 0, 0, 0, writerUse{}, err
		}
		defer cleanup()
		if _, err := n.api.createEndpoint(ctx, tenant, rcv.URL()+"/healthy", 0); err != nil {
			return 0, 0, 0, writerUse{}, err
		}
		if withDead {
			if _, err := n.api.createEndpoint(ctx, tenant, dead.URL()+"/dead", 1); err != nil {
				return 0, 0, 0, writerUse{}, err
			}
		}
		stop := r.tick(ctx, n, func() string { return fmt.Sprintf("isolation (%s): %d/%d delivered", name, rcv.Count(), count) })
		defer stop()
		writer := writerWindow(n)
		start := time.Now()
		last, err := r.deliverAll(ctx, []*node{n}, rcv, tenant, name, count, int64(count))
		if err != nil && !errors.Is(err, errIncomplete) {
			return 0, 0, 0, writerUse{}, err
		}
		elapsed := last.Sub(start)
		return rate(rcv.Count(), elapsed), rcv.Count(), elapsed, writer(), err
	}
	// Rounds of a solo run then a run beside the dead endpoint: each run is about a second, so
	// one pair is at the mercy of the machine's noise; the medians of several are not.
	var solos, mixeds, ratios []float64
	var soloBusy, mixedBusy []writerUse
	var got int64
	var took time.Duration
	done := true
	rounds := max(1, r.sizes.IsolationRounds)
	for i := range rounds {
		solo, soloN, soloT, soloW, err := measure(fmt.Sprintf("iso-solo-%d", i), false)
		if err != nil && !errors.Is(err, errIncomplete) {
			return nil, err
		}
		done = done && err == nil
		mixed, mixedN, mixedT, mixedW, err := measure(fmt.Sprintf("iso-mixed-%d", i), true)
		if err != nil && !errors.Is(err, errIncomplete) {
			return nil, err
		}
		done = done && err == nil
		solos, mixeds = append(solos, solo), append(mixeds, mixed)
		soloBusy, mixedBusy = append(soloBusy, soloW), append(mixedBusy, mixedW)
		if solo > 0 {
			ratios = append(ratios, mixed/solo)
		}
		got, took = got+soloN+mixedN, took+soloT+mixedT
		if !done {
			break // out of time: report what was measured
		}
	}
	expected := int64(2 * count * rounds)
	roundsNote := fmt.Sprintf("median of %d rounds (a solo run, then one beside the dead endpoint; %d events each)",
		len(solos), count)
	ratioNote := roundsNote + "; each round's ratio: " + joinFloats(ratios)
	soloW, mixedW := medianUse(soloBusy), medianUse(mixedBusy)
	return []Result{
		{Metric: "solo_deliveries_per_s", Value: median(solos), Unit: "dlv/s", OfCeiling: r.ofCeiling(median(solos)),
			Count: got, Expected: expected, Complete: done, Seconds: took.Seconds(), WriterBusy: soloW.value(),
			Note: roundsNote + soloW.note()},
		{Metric: "beside_dead_deliveries_per_s", Value: median(mixeds), Unit: "dlv/s", OfCeiling: r.ofCeiling(median(mixeds)),
			Count: got, Expected: expected, Complete: done, Seconds: took.Seconds(), WriterBusy: mixedW.value(),
			Note: fmt.Sprintf("each event also went to an endpoint that never answers (1 s timeout); it was tried %d times in all",
				dead.hung.Load()) + mixedW.note()},
		{Metric: "healthy_kept", Value: median(ratios), Unit: "ratio", Target: atLeast(0.9), Count: got, Expected: expected,
			Complete: done, Seconds: took.Seconds(), Note: ratioNote},
	}, nil
}

// backlog builds Backlog pending deliveries on a fresh node whose delivery engine is not
// running — as after a receiver outage, when everything is due at once — measures the store's
// size and the node's peak RSS, then starts the engine and times the drain.
func (r *runner) backlog(ctx context.Context, store string) ([]Result, error) {
	// The drain's reference: end-to-end on a node like this one, measured first (see
	// childEndToEnd); with an in-process node, the end_to_end scenario's figure.
	sameNode, sameNodeW, err := r.childEndToEnd(ctx, store)
	if err != nil {
		return nil, fmt.Errorf("end-to-end on a child node, the drain's reference: %w", err)
	}
	n, err := r.startNode(ctx, store, true)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = n.stop()
		}
	}()
	if n.pid == 0 {
		debug.FreeOSMemory()
		resetPeakRSS(0)
	}
	if err := n.api.ensureEventType(ctx); err != nil {
		return nil, err
	}
	rcv, err := startReceiver(false, nil)
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	tenant, cleanup, err := r.tenant(ctx, n, "backlog")
	if err != nil {
		return nil, err
	}
	// The shared database keeps nothing (an SQLite node's directory is removed): the tenant is
	// deleted through the node's API, so before the node stops, whichever way the scenario ends.
	cleaned := store != "postgres"
	clean := func() {
		if !cleaned {
			cleaned = true
			cleanup()
		}
	}
	defer clean() // deferred after the node's stop, so run before it
	if _, err := n.api.createEndpoint(ctx, tenant, rcv.URL()+"/backlog", 0); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.sizes.BacklogTimeout)
	defer cancel()
	dbSize := r.storeSize(ctx, n)
	sizeBefore := dbSize()

	total := r.sizes.Backlog
	var published atomic.Int64
	stop := r.tick(ctx, n, func() string { return fmt.Sprintf("backlog: %d/%d deliveries queued", published.Load(), total) })
	start := time.Now()
	err = publishBatches(ctx, []*node{n}, tenant, "backlog", total, 1000, 4, 0, &published)
	pubElapsed := time.Since(start)
	stop()
	if err != nil {
		return nil, err
	}
	pub := rate(published.Load(), pubElapsed)
	disk := float64(dbSize()-sizeBefore) / mib

	stop = r.tick(ctx, n, func() string { return fmt.Sprintf("backlog: %d/%d drained", rcv.Count(), total) })
	writer := writerWindow(n)
	start = time.Now()
	if err := n.resume(); err != nil {
		stop()
		return nil, err
	}
	last, waitErr := rcv.waitFor(ctx, int64(total))
	drainW := writer()
	stop()
	drainT := last.Sub(start)
	drain := rate(rcv.Count(), drainT)
	rss, rssOK := peakRSS(n.pid)
	clean()
	stopped = true
	if err := n.stop(); err != nil {
		r.log.Warn("bench: stop backlog node", "error", err)
	}

	rssNote := "peak RSS of the node's own process (aviso bench --node)"
	if n.pid == 0 {
		rssNote = "peak RSS of the whole bench process (node, load generator and receivers); " +
			"the aviso binary runs the node as a child process to measure it alone"
	}
	out := []Result{
		{Metric: "queue_events_per_s", Value: pub, Unit: "ev/s", OfCeiling: r.ofCeiling(pub), Count: published.Load(),
			Expected: int64(total), Complete: true, Seconds: pubElapsed.Seconds(),
			Note: "published in batches of 1000 while the delivery engine was not running"},
		{Metric: "disk_mib", Value: disk, Unit: "MiB", Count: published.Load(), Expected: int64(total), Complete: true,
			Note: r.diskNote(store)},
	}
	if rssOK {
		out = append(out, Result{Metric: "peak_rss_mib", Value: float64(rss) / mib, Unit: "MiB", Target: atMost(256),
			Count: rcv.Count(), Expected: int64(total), Complete: waitErr == nil, Seconds: drainT.Seconds(), Note: rssNote})
	}
	out = append(out, Result{Metric: "drain_deliveries_per_s", Value: drain, Unit: "dlv/s", OfCeiling: r.ofCeiling(drain),
		Count: rcv.Count(), Expected: int64(total), Complete: waitErr == nil, Seconds: drainT.Seconds(),
		WriterBusy: drainW.value(), Note: strings.TrimPrefix(drainW.note(), "; ")})
	ref, refNote := r.e2e[store], "of the end_to_end scenario's figure (a node in this process, as the backlog's)"
	if sameNode > 0 {
		out = append(out, Result{Metric: "end_to_end_deliveries_per_s", Value: sameNode, Unit: "dlv/s",
			OfCeiling: r.ofCeiling(sameNode), Count: int64(r.sizes.EndToEnd), Expected: int64(r.sizes.EndToEnd), Complete: true,
			WriterBusy: sameNodeW.value(),
			Note:       "end-to-end as in end_to_end, on a node in a child process like the backlog's: the drain's reference" + sameNodeW.note()})
		ref, refNote = sameNode, "of end-to-end on a node in a child process, as the backlog's"
		if e2e := r.e2e[store]; e2e > 0 {
			refNote += fmt.Sprintf("; %.2f of the end_to_end scenario's in-process figure", drain/e2e)
		}
	}
	if ref > 0 {
		out = append(out, Result{Metric: "drain_of_end_to_end", Value: drain / ref, Unit: "ratio", Target: atLeast(0.8),
			Count: rcv.Count(), Expected: int64(total), Complete: waitErr == nil, Seconds: drainT.Seconds(), Note: refNote})
	}
	return out, nil
}

// storeSize returns a function measuring the size of a node's store in bytes: the SQLite data
// directory, or the PostgreSQL database.
func (r *runner) storeSize(ctx context.Context, n *node) func() int64 {
	if n.dataDir != "" {
		return func() int64 { return dirSize(n.dataDir) }
	}
	return func() int64 {
		conn, err := pgx.Connect(ctx, r.cfg.DatabaseURL)
		if err != nil {
			return 0
		}
		defer conn.Close(context.WithoutCancel(ctx))
		var size int64
		_ = conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&size)
		return size
	}
}

func (r *runner) diskNote(store string) string {
	if store == "postgres" {
		return "growth of pg_database_size while the backlog was queued"
	}
	return "growth of the SQLite data directory (database, WAL) while the backlog was queued"
}
