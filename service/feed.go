package service

import (
	"context"
	"fmt"
	"time"

	"github.com/aviso-dev/aviso"
)

// Feed limits.
const (
	// MaxFeedWait is the longest a feed read may wait for an event (FeedQuery.Wait).
	MaxFeedWait = 30 * time.Second
	// MaxFeedTypes is how many event types one feed read may filter on.
	MaxFeedTypes = 100
	// heldBackWait is how long a feed read waits, even without FeedQuery.Wait, for committed
	// events the store holds back (aviso.FeedPage.Pending; usually milliseconds on PostgreSQL),
	// so that a read right after a publish sees it.
	heldBackWait = 2 * time.Second
)

// FeedQuery reads a tenant's events feed (see aviso's feed.go).
type FeedQuery struct {
	After             aviso.FeedCursor // where the last read ended (aviso.ParseFeedCursor)
	End               bool             // start at the end of the feed instead: only new events
	Since             time.Time        // only events created at or after
	Types             []string         // only these event types (each in the catalog)
	ExternalReference string
	Limit             int
	// Wait, up to MaxFeedWait, is how long to wait for an event when there is none after the
	// cursor. 0 answers at once.
	Wait time.Duration
}

// Feed reads a tenant's events feed after q.After, in feed order. It answers as soon as there
// are events; otherwise it waits up to q.Wait for one (woken by the store's EventsPublished,
// never by polling the store while nothing is published), and answers an empty page whose Next
// is the end of the feed when the wait ends or ctx does. ENOTFOUND (tenant); EINVALID ("types",
// "wait").
func (s *Service) Feed(ctx context.Context, p aviso.Principal, tenantID string, q FeedQuery) (*aviso.FeedPage, error) {
	if err := s.tenantExists(ctx, p, tenantID); err != nil {
		return nil, err
	}
	if q.Wait < 0 || q.Wait > MaxFeedWait {
		return nil, aviso.Invalid("wait", "must be a duration from 0s to %s, such as \"25s\"", MaxFeedWait)
	}
	if len(q.Types) > MaxFeedTypes {
		return nil, aviso.Invalid("types", "names %d event types; at most %d", len(q.Types), MaxFeedTypes)
	}
	for _, t := range q.Types {
		_, err := s.eventTypes.get(ctx, t, func(ctx context.Context) (*aviso.EventType, error) {
			return s.store.GetEventType(ctx, t)
		})
		if aviso.ErrorCode(err) == aviso.ENOTFOUND {
			return nil, aviso.Invalid("types", "%q is not in the event catalog", t)
		}
		if err != nil {
			return nil, fmt.Errorf("read feed: get event type: %w", err)
		}
	}
	fp := aviso.FeedParams{TenantID: tenantID, After: q.After, Limit: q.Limit, Types: q.Types,
		ExternalReference: q.ExternalReference, Since: q.Since}
	if q.End {
		end, err := s.store.ReadFeed(ctx, aviso.FeedParams{TenantID: tenantID, End: true})
		if err != nil {
			return nil, fmt.Errorf("read feed: %w", err)
		}
		fp.After = end.Next
	}
	start := time.Now()
	const minPause, maxPause = 2 * time.Millisecond, 25 * time.Millisecond
	pause := minPause
	for {
		published := s.store.EventsPublished(tenantID) // before the read: a publish after it wakes us
		page, err := s.store.ReadFeed(ctx, fp)
		if err != nil {
			return nil, fmt.Errorf("read feed: %w", err)
		}
		if len(page.Items) > 0 || page.HasMore {
			return page, nil
		}
		fp.After = page.Next // past what the filters left out
		left := q.Wait - time.Since(start)
		if page.Pending {
			left = max(left, heldBackWait-time.Since(start))
		}
		if left <= 0 {
			return page, nil
		}
		var timer *time.Timer
		if page.Pending { // no signal announces held-back events: look again shortly
			timer = time.NewTimer(min(left, pause))
			pause = min(2*pause, maxPause)
		} else {
			timer = time.NewTimer(left)
			pause = minPause
		}
		select {
		case <-published:
			timer.Stop()
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return page, nil
		}
	}
}
