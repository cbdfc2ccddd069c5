package service

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aviso-dev/aviso"
)

// EventTypePatch changes a catalog entry; nil fields are left as they are. Schema and Example
// are nil when absent; a JSON null ("null") removes them.
type EventTypePatch struct {
	Description  *string            `json:"description"`
	Descriptions *map[string]string `json:"descriptions"`
	Schema       json.RawMessage    `json:"schema"`
	Example      json.RawMessage    `json:"example"`
}

// validateEventType checks the entry's fields and that its schema compiles.
func validateEventType(t *aviso.EventType) error {
	if isNull(t.Schema) {
		t.Schema = nil
	}
	if isNull(t.Example) {
		t.Example = nil
	}
	if err := t.Validate(); err != nil {
		return err
	}
	if len(t.Schema) > 0 {
		if _, err := compileSchema(t.Schema); err != nil {
			return aviso.Invalid("schema", "is not a valid JSON Schema (draft 2020-12): %v", err)
		}
	}
	return nil
}

func isNull(b json.RawMessage) bool { return string(b) == "null" }

// CreateEventType adds an entry to the catalog. Root only; EINVALID (also for a schema that does
// not compile); ECONFLICT.
func (s *Service) CreateEventType(ctx context.Context, p aviso.Principal, t *aviso.EventType) (*aviso.EventType, error) {
	if err := requireRoot(p, "change the event catalog"); err != nil {
		return nil, err
	}
	if err := validateEventType(t); err != nil {
		return nil, err
	}
	now := s.now()
	t.CreatedAt, t.UpdatedAt = now, now
	defer s.eventTypes.forget(t.Name)
	if err := s.store.CreateEventType(ctx, t); err != nil {
		if aviso.ErrorCode(err) == aviso.ECONFLICT {
			return nil, aviso.Errorf(aviso.ECONFLICT, "event type %q already exists", t.Name)
		}
		return nil, fmt.Errorf("create event type: %w", err)
	}
	return t, nil
}

// GetEventType returns a catalog entry. Any principal may read the catalog. ENOTFOUND.
func (s *Service) GetEventType(ctx context.Context, _ aviso.Principal, name string) (*aviso.EventType, error) {
	t, err := s.store.GetEventType(ctx, name)
	if aviso.ErrorCode(err) == aviso.ENOTFOUND {
		return nil, aviso.Errorf(aviso.ENOTFOUND, "event type %q not found", name)
	}
	if err != nil {
		return nil, fmt.Errorf("get event type: %w", err)
	}
	return t, nil
}

// ListEventTypes lists the catalog ordered by name. Any principal may read it: tenant keys need
// it to choose what their endpoints subscribe to.
func (s *Service) ListEventTypes(ctx context.Context, _ aviso.Principal, lp aviso.ListParams) (*aviso.Page[*aviso.EventType], error) {
	page, err := listPage(aviso.EventTypesCursor, lp, func(lp aviso.ListParams) (*aviso.Page[*aviso.EventType], error) {
		return s.store.ListEventTypes(ctx, lp)
	})
	if err != nil {
		return nil, fmt.Errorf("list event types: %w", err)
	}
	return page, nil
}

// UpdateEventType changes a catalog entry. Root only; ENOTFOUND; EINVALID.
func (s *Service) UpdateEventType(ctx context.Context, p aviso.Principal, name string, in EventTypePatch) (*aviso.EventType, error) {
	if err := requireRoot(p, "change the event catalog"); err != nil {
		return nil, err
	}
	t, err := s.GetEventType(ctx, p, name)
	if err != nil {
		return nil, err
	}
	if in.Description != nil {
		t.Description = *in.Description
	}
	if in.Descriptions != nil {
		t.Descriptions = *in.Descriptions
	}
	if in.Schema != nil {
		t.Schema = in.Schema
	}
	if in.Example != nil {
		t.Example = in.Example
	}
	if err := validateEventType(t); err != nil {
		return nil, err
	}
	t.UpdatedAt = s.now()
	defer s.eventTypes.forget(name)
	if err := s.store.UpdateEventType(ctx, t); err != nil {
		return nil, fmt.Errorf("update event type: %w", err)
	}
	return t, nil
}

// DeleteEventType removes a catalog entry; published events keep their type. Root only; ENOTFOUND.
func (s *Service) DeleteEventType(ctx context.Context, p aviso.Principal, name string) error {
	if err := requireRoot(p, "change the event catalog"); err != nil {
		return err
	}
	defer s.eventTypes.forget(name)
	if err := s.store.DeleteEventType(ctx, name); err != nil {
		if aviso.ErrorCode(err) == aviso.ENOTFOUND {
			return aviso.Errorf(aviso.ENOTFOUND, "event type %q not found", name)
		}
		return fmt.Errorf("delete event type: %w", err)
	}
	return nil
}

// SeedCatalog adds the given entries that are missing from the catalog. Existing entries are never
// overwritten, so an operator's edits survive upgrades.
func (s *Service) SeedCatalog(ctx context.Context, types []*aviso.EventType) error {
	now := s.now()
	for _, t := range types {
		_, err := s.store.GetEventType(ctx, t.Name)
		if err == nil {
			continue
		}
		if aviso.ErrorCode(err) != aviso.ENOTFOUND {
			return fmt.Errorf("seed catalog: %w", err)
		}
		c := *t
		if err := validateEventType(&c); err != nil {
			return fmt.Errorf("seed catalog: %s: %w", t.Name, err)
		}
		c.CreatedAt, c.UpdatedAt = now, now
		err = s.store.CreateEventType(ctx, &c)
		s.eventTypes.forget(c.Name)
		if err != nil && aviso.ErrorCode(err) != aviso.ECONFLICT {
			return fmt.Errorf("seed catalog: %w", err)
		}
	}
	return nil
}
