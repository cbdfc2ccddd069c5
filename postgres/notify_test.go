package postgres

import (
	"context"
	"log/slog"
	"testing"
)

// gatedSend is a notifier's send that reports each call on started (with whether its context
// was still live) and returns when release receives.
type gatedSend struct {
	started chan bool
	release chan struct{}
}

func newGatedSend() *gatedSend {
	return &gatedSend{started: make(chan bool), release: make(chan struct{})}
}

func (g *gatedSend) send(ctx context.Context) error {
	g.started <- ctx.Err() == nil
	<-g.release
	return nil
}

// runNotifier runs a notifier on g until the returned stop is called; stop waits for run to return.
func runNotifier(g *gatedSend) (*notifier, context.CancelFunc, chan struct{}) {
	n := newNotifier(g.send, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.run(ctx); close(done) }()
	return n, cancel, done
}

// TestNotifierCoalesces: announcements made while a NOTIFY is on its way are covered by one more.
func TestNotifierCoalesces(t *testing.T) {
	g := newGatedSend()
	n, cancel, done := runNotifier(g)
	n.announce()
	<-g.started // the first NOTIFY is on its way
	for range 10 {
		n.announce()
	}
	g.release <- struct{}{}
	<-g.started // one NOTIFY for the ten
	g.release <- struct{}{}
	cancel()
	select {
	case <-g.started:
		t.Fatal("a third NOTIFY was sent for announcements the second one covered")
	case <-done:
	}
}

// TestNotifierSendsOwedAtClose: a NOTIFY owed when the notifier is stopped is still sent, with a
// live context.
func TestNotifierSendsOwedAtClose(t *testing.T) {
	g := newGatedSend()
	n, cancel, done := runNotifier(g)
	n.announce()
	<-g.started
	n.announce() // owed while the first is on its way
	cancel()
	g.release <- struct{}{}
	if live := <-g.started; !live {
		t.Error("the NOTIFY owed at close was sent with a cancelled context")
	}
	g.release <- struct{}{}
	<-done
}

// TestNotifierIdle: nothing announced, nothing sent.
func TestNotifierIdle(t *testing.T) {
	g := newGatedSend()
	_, cancel, done := runNotifier(g)
	cancel()
	select {
	case <-g.started:
		t.Fatal("a NOTIFY was sent with nothing announced")
	case <-done:
	}
}

func TestHeeds(t *testing.T) {
	for _, tt := range []struct {
		schema, payload string
		want            bool
	}{
		{"", "", true},
		{"", "tenant_a", true}, // a Store that names no schema cannot tell: it wakes
		{"tenant_a", "tenant_a", true},
		{"tenant_a", "", true}, // from a Store naming none, or an older version
		{"tenant_a", "tenant_b", false},
	} {
		if got := heeds(tt.schema, tt.payload); got != tt.want {
			t.Errorf("heeds(%q, %q) = %v, want %v", tt.schema, tt.payload, got, tt.want)
		}
	}
}
