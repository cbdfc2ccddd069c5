package catalog

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/aviso-dev/aviso"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

func TestEventTypesNames(t *testing.T) {
	want := []string{"invoice.created", "invoice.updated", "invoice.deleted", "invoice.paid",
		"customer.created", "customer.updated", "customer.deleted",
		"product.created", "product.updated", "product.deleted", "receipt.paid",
		"endpoint.created", "endpoint.deleted", "endpoint.disabled", "endpoint.enabled", "delivery.failed"}
	var got []string
	for _, et := range EventTypes() {
		got = append(got, et.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("names = %v, want %v", got, want)
	}
}

func TestEventTypesValid(t *testing.T) {
	for _, et := range EventTypes() {
		t.Run(et.Name, func(t *testing.T) {
			if err := et.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if et.Description == "" || et.Descriptions["es"] == "" {
				t.Errorf("description = %q, es = %q; both are required", et.Description, et.Descriptions["es"])
			}
			var meta struct {
				Schema string `json:"$schema"`
			}
			if err := json.Unmarshal(et.Schema, &meta); err != nil || meta.Schema != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("$schema = %q (%v), want draft 2020-12", meta.Schema, err)
			}
			sch := compile(t, et.Name, et.Schema)
			example, err := jsonschema.UnmarshalJSON(bytes.NewReader(et.Example))
			if err != nil {
				t.Fatalf("example: %v", err)
			}
			if err := sch.Validate(example); err != nil {
				t.Errorf("example does not validate against its schema: %v", err)
			}
			// The schema must be able to fail: an array is never an object.
			if err := sch.Validate([]any{}); err == nil {
				t.Errorf("schema accepts an array; it should require an object")
			}
		})
	}
}

func TestEventTypesFreshCopies(t *testing.T) {
	a, b := EventTypes(), EventTypes()
	a[0].Description = "changed"
	if b[0].Description == "changed" {
		t.Fatal("EventTypes returned shared entries; callers could change each other's catalog")
	}
}

func compile(tb testing.TB, name string, schema []byte) *jsonschema.Schema {
	tb.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		tb.Fatalf("schema of %s: %v", name, err)
	}
	c := jsonschema.NewCompiler()
	url := "urn:aviso:" + name
	if err := c.AddResource(url, doc); err != nil {
		tb.Fatalf("schema of %s: %v", name, err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		tb.Fatalf("compile schema of %s: %v", name, err)
	}
	return sch
}

// Every operational event type Aviso publishes is in the catalog: a publish of one would
// otherwise be refused as an unknown type.
func TestOperationalTypesInCatalog(t *testing.T) {
	have := map[string]bool{}
	for _, et := range EventTypes() {
		have[et.Name] = true
	}
	for _, name := range aviso.OperationalEventTypes() {
		if !have[name] {
			t.Errorf("operational event type %q is not in the catalog", name)
		}
	}
}
