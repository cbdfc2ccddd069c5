package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aviso-dev/aviso"
)

// The feed scenario measures pull instead of push (GET …/events, …/events/stream) on a node of its
// own (a child process when the bench can start one, so that its RSS is Aviso's alone):
//
//   - sse_events_per_s: one Server-Sent Events consumer reading while FeedEvents events are
//     published by batch (4 clients, BatchSize each) to a tenant without endpoints: the rate at
//     which the consumer received them all, from the first publish to the last event read;
//   - longpoll_wakeup_p99_ms: FeedPollers long-polls (wait=25s) waiting on a tenant while one event
//     is published every 10 ms: from the publish's 202 to each poller's answer holding it;
//   - idle_streams_rss_mib: the node's resident memory grown by FeedStreams idle streams, each
//     on a connection of its own, once every one has opened.

// feed runs the feed scenario on a fresh node of store.
func (r *runner) feed(ctx context.Context, store string) ([]Result, error) {
	if r.sizes.FeedEvents <= 0 {
		return nil, nil
	}
	n, err := r.startNode(ctx, store, true) // deliveries play no part: the engine stays paused
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := n.stop(); err != nil {
			r.log.Warn("bench: stop feed node", "error", err)
		}
	}()
	if err := n.api.ensureEventType(ctx); err != nil {
		return nil, err
	}
	var out []Result
	res, err := r.feedStream(ctx, n)
	out = append(out, res...)
	if err != nil {
		return out, err
	}
	res, err = r.feedLongPoll(ctx, n)
	out = append(out, res...)
	if err != nil {
		return out, err
	}
	res, err = r.feedIdleStreams(ctx, n)
	return append(out, res...), err
}

// openStream opens a tenant's event stream after the cursor query (e.g. "?after=…"), or from its
// end (only new events) with "".
func openStream(ctx context.Context, hc *http.Client, n *node, tenant, query string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.api.base+"/v1/tenants/"+tenant+"/events/stream"+query, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+n.api.key)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, &statusError{Method: "GET", Path: req.URL.Path, Status: resp.StatusCode, Body: string(b)}
	}
	return resp, nil
}

// streamClient returns a client for long-lived streams: no overall timeout.
func streamClient(conns int) *http.Client {
	hc := newClient(conns)
	hc.Timeout = 0
	return hc
}

func (r *runner) feedStream(ctx context.Context, n *node) ([]Result, error) {
	tenant, cleanup, err := r.tenant(ctx, n, "feed-sse")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	total := r.sizes.FeedEvents
	ctx, cancel := context.WithTimeout(ctx, r.sizes.Timeout)
	defer cancel()
	hc := streamClient(1)
	defer hc.CloseIdleConnections()
	resp, err := openStream(ctx, hc, n, tenant, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	// The stream starts with where it is ("retry:", then an id line): once that is read it is
	// open, and every event published from now on comes.
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			return nil, fmt.Errorf("event stream: %w", err)
		}
		if bytes.HasPrefix(line, []byte("id:")) {
			break
		}
	}
	var got atomic.Int64
	var last atomic.Int64 // unix ns of the last event read
	readErr := make(chan error, 1)
	go func() {
		for got.Load() < int64(total) {
			line, err := rd.ReadSlice('\n')
			if err != nil {
				readErr <- err
				return
			}
			if bytes.HasPrefix(line, []byte("event:")) {
				got.Add(1)
				last.Store(time.Now().UnixNano())
			}
		}
		readErr <- nil
	}()
	stop := r.tick(ctx, n, func() string { return fmt.Sprintf("feed: %d/%d events read from the stream", got.Load(), total) })
	var published atomic.Int64
	start := time.Now()
	pubErr := publishBatches(ctx, []*node{n}, tenant, "sse", total, r.sizes.BatchSize, 4, 0, &published)
	pubElapsed := time.Since(start)
	if pubErr == nil {
		select {
		case err = <-readErr:
		case <-ctx.Done():
			err = errIncomplete
		}
	}
	stop()
	cancel()
	if pubErr != nil && ctx.Err() == nil {
		return nil, pubErr
	}
	count := got.Load()
	elapsed := time.Unix(0, last.Load()).Sub(start)
	v := rate(count, elapsed)
	complete := count == int64(total)
	if err != nil && !errors.Is(err, errIncomplete) && !complete {
		return nil, fmt.Errorf("event stream: %w", err)
	}
	out := []Result{{Metric: "sse_events_per_s", Value: v, Unit: "ev/s", OfCeiling: r.ofCeiling(v), Target: atLeast(20_000),
		Count: count, Expected: int64(total), Complete: complete, Seconds: elapsed.Seconds(),
		Note: fmt.Sprintf("one consumer reading while they are published, in batches of %d by 4 clients at %.0f ev/s (the consumer can go no faster); the last event read %.0f ms after the last 202",
			r.sizes.BatchSize, rate(published.Load(), pubElapsed), float64(elapsed-pubElapsed)/float64(time.Millisecond))}}
	if !complete {
		return out, nil
	}

	// The consumer's own pace: the same events read again from the start of the feed.
	ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), r.sizes.Timeout)
	defer cancel()
	start = time.Now()
	resp2, err := openStream(ctx, hc, n, tenant, "?after="+aviso.FeedCursor{}.String())
	if err != nil {
		return out, err
	}
	defer resp2.Body.Close()
	rd = bufio.NewReaderSize(resp2.Body, 64<<10)
	var again int64
	for again < int64(total) {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			break
		}
		if bytes.HasPrefix(line, []byte("event:")) {
			again++
		}
	}
	elapsed = time.Since(start)
	v = rate(again, elapsed)
	return append(out, Result{Metric: "sse_catch_up_events_per_s", Value: v, Unit: "ev/s", OfCeiling: r.ofCeiling(v),
		Target: atLeast(20_000), Count: again, Expected: int64(total), Complete: again == int64(total), Seconds: elapsed.Seconds(),
		Note: "one consumer reading the same events from the start of the feed: how fast it can keep up"}), nil
}

func (r *runner) feedLongPoll(ctx context.Context, n *node) ([]Result, error) {
	tenant, cleanup, err := r.tenant(ctx, n, "feed-poll")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	rounds, pollers := r.sizes.FeedPollRounds, r.sizes.FeedPollers
	ctx, cancel := context.WithTimeout(ctx, r.sizes.Timeout)
	defer cancel()
	hc := streamClient(pollers + 4)
	defer hc.CloseIdleConnections()

	var start struct {
		NextCursor string `json:"next_cursor"`
	}
	if err := n.api.do(ctx, http.MethodGet, "/v1/tenants/"+tenant+"/events", nil, &start); err != nil {
		return nil, err
	}
	var acked sync.Map // event ID → time its publish's 202 arrived
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	pollCtx, stopPolls := context.WithCancel(ctx)
	for range pollers {
		wg.Go(func() {
			cursor, seen := start.NextCursor, 0
			for seen < rounds && pollCtx.Err() == nil {
				var page struct {
					Data []struct {
						ID string `json:"id"`
					} `json:"data"`
					NextCursor string `json:"next_cursor"`
				}
				c := &apiClient{base: n.api.base, key: n.api.key, hc: hc}
				if err := c.do(pollCtx, http.MethodGet, "/v1/tenants/"+tenant+"/events?wait=25s&after="+cursor, nil, &page); err != nil {
					if pollCtx.Err() == nil {
						firstErr.CompareAndSwap(nil, &err)
					}
					return
				}
				at := time.Now()
				mu.Lock()
				for _, e := range page.Data {
					var d time.Duration
					if v, ok := acked.Load(e.ID); ok { // else answered before the 202 itself arrived: 0
						d = max(at.Sub(v.(time.Time)), 0)
					}
					lat = append(lat, d)
				}
				mu.Unlock()
				seen += len(page.Data)
				cursor = page.NextCursor
			}
		})
	}
	stop := r.tick(ctx, n, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("feed: %d/%d long-poll answers", len(lat), rounds*pollers)
	})
	t0 := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	for i := 0; i < rounds && ctx.Err() == nil && firstErr.Load() == nil; i++ {
		<-tick.C
		id := "poll-" + strconv.Itoa(i)
		if err := n.api.publish(ctx, tenant, id); err != nil {
			firstErr.CompareAndSwap(nil, &err)
			break
		}
		acked.Store(id, time.Now())
	}
	tick.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	stopPolls()
	<-done
	stop()
	if e := firstErr.Load(); e != nil {
		return nil, fmt.Errorf("long-poll: %w", *e)
	}
	mu.Lock()
	s := summarise(lat)
	mu.Unlock()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	complete := s.N == rounds*pollers
	return []Result{{Metric: "longpoll_wakeup_p99_ms", Value: ms(s.P99), Unit: "ms", Target: atMost(50),
		Count: int64(s.N), Expected: int64(rounds * pollers), Complete: complete, Seconds: time.Since(t0).Seconds(),
		Note: fmt.Sprintf("%d long-polls waiting, one event published every 10 ms; from the publish's 202 to the answer: p50 %.1f ms, max %.1f ms",
			pollers, ms(s.P50), ms(s.Max))}}, nil
}

func (r *runner) feedIdleStreams(ctx context.Context, n *node) ([]Result, error) {
	if n.store == "remote" {
		return nil, nil // the node's memory is not the bench's to read
	}
	tenant, cleanup, err := r.tenant(ctx, n, "feed-idle")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	count := r.sizes.FeedStreams
	ctx, cancel := context.WithTimeout(ctx, r.sizes.Timeout)
	defer cancel()
	rss := func() int64 {
		if n.pid == 0 {
			runtime.GC()
		}
		kb, _ := procStatusKB(procPath(n.pid, "status"), "VmRSS")
		return kb * 1024
	}
	before := rss()
	hc := streamClient(count)
	defer hc.CloseIdleConnections()
	var opened atomic.Int64
	stop := r.tick(ctx, n, func() string { return fmt.Sprintf("feed: %d/%d idle streams open", opened.Load(), count) })
	defer stop()
	bodies := make([]io.ReadCloser, 0, count)
	defer func() {
		for _, b := range bodies {
			b.Close()
		}
	}()
	t0 := time.Now()
	for range count {
		resp, err := openStream(ctx, hc, n, tenant, "")
		if err != nil {
			return nil, fmt.Errorf("open idle stream %d: %w", opened.Load()+1, err)
		}
		bodies = append(bodies, resp.Body)
		// Read up to the stream's first id line: the server has served the request.
		rd := bufio.NewReader(resp.Body)
		for {
			line, err := rd.ReadSlice('\n')
			if err != nil {
				return nil, fmt.Errorf("idle stream %d: %w", opened.Load()+1, err)
			}
			if bytes.HasPrefix(line, []byte("id:")) {
				break
			}
		}
		opened.Add(1)
	}
	after := rss()
	grown := float64(after-before) / mib
	where := "the node's own process"
	if n.pid == 0 {
		where = "this process (node, bench and the streams' client side together: an upper bound)"
	}
	var resident struct{ before, after float64 }
	resident.before, resident.after = float64(before)/mib, float64(after)/mib
	return []Result{{Metric: "idle_streams_rss_mib", Value: grown, Unit: "MiB", Target: atMost(64),
		Count: opened.Load(), Expected: int64(count), Complete: opened.Load() == int64(count), Seconds: time.Since(t0).Seconds(),
		Note: fmt.Sprintf("RSS grown by %d idle event streams, one connection each, in %s: %.0f → %.0f MiB",
			count, where, resident.before, resident.after)}}, nil
}
