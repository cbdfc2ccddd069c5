// Package catalog holds Aviso's built-in event catalog: the event types a new installation
// starts with — the invoicing ones (invoice.created … receipt.paid) and the operational ones
// Aviso itself publishes to the platform's operational endpoints (endpoint.disabled,
// delivery.failed, …; see aviso.OperationalTenant) — each with an English and a Spanish
// description, a JSON Schema (draft 2020-12) of its data and an example payload drawn from the
// Alegra and FacturaScripts webhook documents. The data is embedded: types.json lists the types
// and names a schema in schemas/ for each. The service seeds these entries into the store on
// start, adding only the missing ones, so an operator's edits survive upgrades.
package catalog

import (
	"embed"
	"encoding/json"
	"fmt"

	"github.com/aviso-dev/aviso"
)

//go:embed types.json schemas/*.json
var files embed.FS

// entry is one element of types.json; Schema names a file in schemas/ without ".json".
type entry struct {
	Name         string            `json:"name"`
	Description  string            `json:"description"`
	Descriptions map[string]string `json:"descriptions"`
	Schema       string            `json:"schema"`
	Example      json.RawMessage   `json:"example"`
}

// EventTypes returns a fresh copy of the built-in catalog, in a fixed order. The embedded files
// are checked by this package's tests, so a failure to read them is a build defect and panics.
func EventTypes() []*aviso.EventType {
	types, err := load()
	if err != nil {
		panic(err)
	}
	return types
}

func load() ([]*aviso.EventType, error) {
	b, err := files.ReadFile("types.json")
	if err != nil {
		return nil, fmt.Errorf("load catalog: %w", err)
	}
	var entries []entry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("load catalog: types.json: %w", err)
	}
	out := make([]*aviso.EventType, 0, len(entries))
	for _, e := range entries {
		schema, err := files.ReadFile("schemas/" + e.Schema + ".json")
		if err != nil {
			return nil, fmt.Errorf("load catalog: %s: %w", e.Name, err)
		}
		out = append(out, &aviso.EventType{Name: e.Name, Description: e.Description,
			Descriptions: e.Descriptions, Schema: schema, Example: e.Example})
	}
	return out, nil
}
