// Package broadcast wakes every waiter on a key at once: the stores use it for
// aviso.Store.EventsPublished, where any number of feed readers (long-polls, event streams) wait
// for the next publication to one tenant.
//
// The invariant: a channel returned by Wait(key) is closed by the first Signal(key) or
// SignalAll() after the call. Waiters share one channel per key, so a thousand idle readers cost a
// map entry and no goroutine, and a signal costs one close whatever their number.
package broadcast

import "sync"

// Group holds one channel per key that has a waiter. The zero value is ready to use.
type Group struct {
	mu   sync.Mutex
	wait map[string]chan struct{}
}

// Wait returns a channel closed at the next signal of key.
func (g *Group) Wait(key string) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch, ok := g.wait[key]
	if !ok {
		if g.wait == nil {
			g.wait = make(map[string]chan struct{})
		}
		ch = make(chan struct{})
		g.wait[key] = ch
	}
	return ch
}

// Signal wakes the waiters of each key.
func (g *Group) Signal(keys ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range keys {
		if ch, ok := g.wait[k]; ok {
			close(ch)
			delete(g.wait, k)
		}
	}
}

// SignalAll wakes every waiter.
func (g *Group) SignalAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, ch := range g.wait {
		close(ch)
		delete(g.wait, k)
	}
}
