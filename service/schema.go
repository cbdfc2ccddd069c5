package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/aviso-dev/aviso"
)

// cachedSchema is an event type's compiled schema, valid while the type's UpdatedAt is unchanged.
type cachedSchema struct {
	updatedAt time.Time
	schema    *jsonschema.Schema
}

// compileSchema compiles a JSON Schema; schemas without "$schema" are read as draft 2020-12.
// Remote references are not loaded.
func compileSchema(raw []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	const loc = "aviso:///schema.json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	return c.Compile(loc)
}

// noLoader refuses every remote schema: a catalog schema must be self-contained.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("remote schema %q is not loaded; make the schema self-contained", url)
}

// schemaFor returns the compiled schema of an event type, nil when it has none, compiling once
// per (name, UpdatedAt).
func (s *Service) schemaFor(t *aviso.EventType) (*jsonschema.Schema, error) {
	if len(t.Schema) == 0 {
		return nil, nil
	}
	s.mu.Lock()
	c := s.schemas[t.Name]
	s.mu.Unlock()
	if c != nil && c.updatedAt.Equal(t.UpdatedAt) {
		return c.schema, nil
	}
	sch, err := compileSchema(t.Schema)
	if err != nil {
		return nil, fmt.Errorf("compile schema of %s: %w", t.Name, err)
	}
	s.mu.Lock()
	s.schemas[t.Name] = &cachedSchema{updatedAt: t.UpdatedAt, schema: sch}
	s.mu.Unlock()
	return sch, nil
}

// validateData checks data against the event type's schema. A violation is EINVALID whose Field
// is the JSON pointer of the failing value under "/data" and whose message names the rule.
func (s *Service) validateData(ctx context.Context, t *aviso.EventType, data []byte) error {
	sch, err := s.schemaFor(t)
	if err != nil {
		// A stored schema that no longer compiles is the operator's problem, not the caller's.
		s.log.ErrorContext(ctx, "event type schema does not compile", "event_type", t.Name, "error", err)
		return fmt.Errorf("validate data: %w", err)
	}
	if sch == nil {
		return nil
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return aviso.Invalid("data", "is not valid JSON")
	}
	err = sch.Validate(inst)
	var ve *jsonschema.ValidationError
	if err == nil {
		return nil
	}
	if !errors.As(err, &ve) {
		return fmt.Errorf("validate data: %w", err)
	}
	leaf := firstLeaf(ve)
	ptr := "/data" + jsonPointer(leaf.InstanceLocation)
	rule := strings.Join(leaf.ErrorKind.KeywordPath(), "/")
	msg := leaf.ErrorKind.LocalizedString(message.NewPrinter(language.English))
	return aviso.Invalid(ptr, "violates the schema of %s: %s: %s", t.Name, rule, msg)
}

// firstLeaf follows the first cause down to the most specific error.
func firstLeaf(e *jsonschema.ValidationError) *jsonschema.ValidationError {
	for len(e.Causes) > 0 {
		e = e.Causes[0]
	}
	return e
}

// jsonPointer renders tokens as an RFC 6901 pointer ("" for the root).
func jsonPointer(tokens []string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		sb.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return sb.String()
}
