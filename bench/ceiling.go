package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// samplePayload is the event data the scenarios publish: a small invoice notification of the
// size a billing platform sends (a few hundred bytes once rendered).
const samplePayload = `{"invoice":{"id":"FE-000123","number":"SETP990000123","total":"1190000.00","currency":"COP",` +
	`"customer":{"id":"900123456","name":"Comercializadora Andina S.A.S."},"items":3,"status":"issued"}}`

// ceilingBody is what the bare client sends: the shape and size of a rendered Standard Webhooks
// delivery of samplePayload, so the receiver does the same work in both measurements.
var ceilingBody = []byte(`{"type":"invoice.created","timestamp":"2026-01-01T00:00:00Z","data":` + samplePayload + `}`)

// newClient returns an HTTP client that keeps up to conns connections alive to each host.
func newClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConns = conns * 4
	t.MaxIdleConnsPerHost = conns
	t.MaxConnsPerHost = 0
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}

// ceilingResult is the machine's own HTTP limit: n POSTs by a bare Go client, concurrency at a
// time, to a receiver that answers 204.
type ceilingResult struct {
	Requests    int64
	Elapsed     time.Duration
	Concurrency int
	Complete    bool
}

func (c ceilingResult) perSecond() float64 { return rate(c.Requests, c.Elapsed) }

// measureCeiling sends n requests from concurrency workers to a fresh receiver with the headers
// a delivery carries, and times them. It stops early, incomplete, when ctx ends.
func measureCeiling(ctx context.Context, n, concurrency int, progress func(string)) (ceilingResult, error) {
	rcv, err := startReceiver(false, nil)
	if err != nil {
		return ceilingResult{}, err
	}
	defer rcv.close()
	hc := newClient(concurrency)
	defer hc.CloseIdleConnections()
	url := rcv.URL() + "/ceiling"

	var next, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	send := func(i int64) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(ceilingBody))
		if err != nil {
			return err
		}
		req.Header["Content-Type"] = []string{"application/json"}
		req.Header["Webhook-Id"] = []string{"evt_ceiling_" + strconv.FormatInt(i, 10)}
		req.Header["Webhook-Timestamp"] = []string{"1767225600"}
		req.Header["Webhook-Signature"] = []string{"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("receiver answered %d", resp.StatusCode)
		}
		return nil
	}
	stop := startTicker(ctx, func() {
		progress(fmt.Sprintf("ceiling %d/%d requests", rcv.Count(), n))
	})
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if err := send(i); err != nil {
					if ctx.Err() == nil && failed.Add(1) == 1 {
						firstErr.Store(&err)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()
	if e := firstErr.Load(); e != nil {
		return ceilingResult{}, fmt.Errorf("ceiling: %w", *e)
	}
	if ctx.Err() != nil && rcv.Count() == 0 {
		return ceilingResult{}, fmt.Errorf("ceiling: no request answered in time: %w", ctx.Err())
	}
	got := rcv.Count()
	return ceilingResult{Requests: got, Elapsed: elapsed, Concurrency: concurrency, Complete: got == int64(n)}, nil
}

// startTicker calls f every 200 ms until the returned stop is called or ctx ends.
func startTicker(ctx context.Context, f func()) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() { cancel(); <-done }
}
