package broadcast

import (
	"testing"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestGroup(t *testing.T) {
	var g Group
	a1, a2, b := g.Wait("a"), g.Wait("a"), g.Wait("b")
	if closed(a1) || closed(b) {
		t.Fatal("a channel is closed before any signal")
	}
	g.Signal("a", "c")
	if !closed(a1) || !closed(a2) {
		t.Error("Signal(a) left a waiter of a asleep")
	}
	if closed(b) {
		t.Error("Signal(a) woke a waiter of b")
	}
	a3 := g.Wait("a")
	if closed(a3) {
		t.Error("a wait after the signal is already closed: it must wait for the next one")
	}
	g.SignalAll()
	if !closed(a3) || !closed(b) {
		t.Error("SignalAll left a waiter asleep")
	}
	g.Signal("a") // no waiter: nothing to do
}
