package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// receiver is a webhook receiver on 127.0.0.1: a net/http server that reads each request's body
// and answers 204 at once, counting the requests. A hanging receiver accepts requests and never
// answers them until it is closed (an endpoint that times out).
type receiver struct {
	ln   net.Listener
	srv  *http.Server
	hang bool
	// onReceive, when set, is called for each request (before the answer) with its arrival time.
	onReceive func(r *http.Request, at time.Time)

	count  atomic.Int64
	hung   atomic.Int64 // requests a hanging receiver held without answering
	target atomic.Int64
	lastAt atomic.Int64 // unix nanos of the request that reached the target

	mu      sync.Mutex
	reached chan struct{} // closed when count reaches target
	release chan struct{} // closed by close: hung handlers return
}

// startReceiver listens on 127.0.0.1:0 and serves until close. With hang, requests are never
// answered.
func startReceiver(hang bool, onReceive func(*http.Request, time.Time)) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start receiver: %w", err)
	}
	r := &receiver{ln: ln, hang: hang, onReceive: onReceive, release: make(chan struct{})}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// URL returns the receiver's base URL; any path is accepted.
func (r *receiver) URL() string { return "http://" + r.ln.Addr().String() }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	if r.hang {
		r.hung.Add(1)
		select {
		case <-req.Context().Done():
		case <-r.release:
		}
		return
	}
	now := time.Now()
	if r.onReceive != nil {
		r.onReceive(req, now)
	}
	n := r.count.Add(1)
	if t := r.target.Load(); t > 0 && n >= t {
		r.mu.Lock()
		if r.reached != nil && n >= r.target.Load() {
			r.lastAt.Store(now.UnixNano())
			close(r.reached)
			r.reached = nil
		}
		r.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

// Count returns the requests answered so far.
func (r *receiver) Count() int64 { return r.count.Load() }

// errIncomplete reports a scenario whose count was not reached within its time bound.
var errIncomplete = errors.New("time bound passed before every request arrived")

// waitFor waits until the receiver has answered n requests in total and returns the time the
// n-th arrived; errIncomplete (with the time of waiting's end) if ctx ends first.
func (r *receiver) waitFor(ctx context.Context, n int64) (time.Time, error) {
	r.mu.Lock()
	ch := make(chan struct{})
	r.reached = ch
	r.target.Store(n)
	if r.count.Load() >= n {
		close(ch)
		r.reached = nil
		r.lastAt.Store(time.Now().UnixNano())
	}
	r.mu.Unlock()
	select {
	case <-ch:
		return time.Unix(0, r.lastAt.Load()), nil
	case <-ctx.Done():
		r.mu.Lock()
		r.reached = nil
		r.target.Store(0)
		r.mu.Unlock()
		return time.Now(), errIncomplete
	}
}

// close stops the receiver, releasing hung requests, and closes its connections at once. Its
// scenario has counted what it needed: there is nothing to wait for. (A graceful Shutdown would
// wait up to 5 s for any connection a client dialled and never used, which net/http counts as
// active until then; that stalled scenarios for whole multiples of 5 s.)
func (r *receiver) close() {
	r.mu.Lock()
	select {
	case <-r.release:
	default:
		close(r.release)
	}
	r.mu.Unlock()
	_ = r.srv.Close()
}
