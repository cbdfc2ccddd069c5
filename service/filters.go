package service

import (
	"context"
	"encoding/json"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/filter"
)

// Payload filters: an endpoint's Filter is compiled when it is created or changed (EINVALID
// naming "filter", with the line and column), and run at publish on each event of its types
// (see newEvent). Compiled programs are kept by source, so a publish compiles nothing.

// maxFilters bounds the compiled programs kept; beyond it they are dropped and compiled again.
const maxFilters = 10_000

// checkFilter compiles ep's filter, or answers EINVALID saying where it is wrong.
func (s *Service) checkFilter(ep *aviso.Endpoint) error {
	if ep.Filter == "" {
		return nil
	}
	if _, err := s.program(ep.Filter); err != nil {
		return aviso.Invalid("filter", "%v", err)
	}
	return nil
}

// program returns the compiled filter src, from the cache when it is there.
func (s *Service) program(src string) (*filter.Program, error) {
	s.mu.Lock()
	p, ok := s.filters[src]
	s.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := filter.Compile(src)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.filters) >= maxFilters {
		clear(s.filters)
	}
	s.filters[src] = p
	s.mu.Unlock()
	return p, nil
}

// eventFilter evaluates endpoints' filters on one event, decoding its data once.
type eventFilter struct {
	s       *Service
	ev      *aviso.Event
	data    any
	decoded bool
}

// match reports whether ep's filter lets the event through. A filter that cannot run (it
// compiled when stored, so only a data mismatch) does not match.
func (f *eventFilter) match(ep *aviso.Endpoint) bool {
	if ep.Filter == "" {
		return true
	}
	p, err := f.s.program(ep.Filter)
	if err != nil {
		return false
	}
	if !f.decoded {
		f.data, _ = filter.Decode(f.ev.Data) // checked as JSON already
		f.decoded = true
	}
	ok, _ := p.Match(f.ev, f.data)
	return ok
}

// FilterTest is the outcome of trying a filter on an event.
type FilterTest struct {
	Match bool   `json:"match"`
	Error string `json:"error,omitempty"` // why it did not run on this event
}

// FilterTestInput is what TestFilter tries: Filter (default: the endpoint's) on one of the
// tenant's events (EventID), or on an event made of Type, Data and ExternalReference.
type FilterTestInput struct {
	Filter            *string         `json:"filter"`
	EventID           string          `json:"event_id"`
	Type              string          `json:"type"`
	Data              json.RawMessage `json:"data"`
	ExternalReference string          `json:"external_reference"`
}

// TestFilter runs a filter on an event exactly as a publish would, and says whether the
// endpoint would get it. ENOTFOUND (endpoint, event); EINVALID ("filter", "data").
func (s *Service) TestFilter(ctx context.Context, p aviso.Principal, tenantID, endpointID string, in FilterTestInput) (*FilterTest, error) {
	if _, err := s.tenant(ctx, p, tenantID); err != nil {
		return nil, err
	}
	ep, err := s.getEndpoint(ctx, tenantID, endpointID)
	if err != nil {
		return nil, err
	}
	src := ep.Filter
	if in.Filter != nil {
		src = *in.Filter
	}
	ev := &aviso.Event{ID: "evt_filter_test", TenantID: tenantID, Type: in.Type, Data: in.Data,
		ExternalReference: in.ExternalReference, CreatedAt: s.now()}
	if in.EventID != "" {
		if ev, err = s.GetEvent(ctx, p, tenantID, in.EventID); err != nil {
			return nil, err
		}
	}
	return s.TryFilter(src, ev)
}

// TryFilter runs the filter src on ev as a publish would ("" lets every event through).
// EINVALID ("filter" if it does not compile, "data" if ev's data is not JSON).
func (s *Service) TryFilter(src string, ev *aviso.Event) (*FilterTest, error) {
	if src == "" {
		return &FilterTest{Match: true}, nil
	}
	prog, err := s.program(src)
	if err != nil {
		return nil, aviso.Invalid("filter", "%v", err)
	}
	data, err := filter.Decode(ev.Data)
	if err != nil {
		return nil, aviso.Invalid("data", "is not valid JSON")
	}
	ok, err := prog.Match(ev, data)
	out := &FilterTest{Match: ok}
	if err != nil {
		out.Error = err.Error()
	}
	return out, nil
}
