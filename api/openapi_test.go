package api_test

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aviso-dev/aviso/api"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// openAPIValidator is the validator of api.OpenAPI, built once.
var openAPIValidator = sync.OnceValues(func() (validator.Validator, error) {
	doc, err := libopenapi.NewDocument(api.OpenAPI)
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return v, nil
})

func mustValidator(tb testing.TB) validator.Validator {
	tb.Helper()
	v, err := openAPIValidator()
	if err != nil {
		tb.Fatalf("openapi.json: %v", err)
	}
	return v
}

// TestOpenAPIDocument: openapi.json is a valid OpenAPI 3.1 document.
func TestOpenAPIDocument(t *testing.T) {
	v := mustValidator(t)
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("openapi.json: %s: %s", e.Message, e.Reason)
		}
	}
	if !bytes.HasPrefix(bytes.TrimSpace(api.OpenAPI), []byte(`{`)) || !bytes.Contains(api.OpenAPI, []byte(`"openapi": "3.1.0"`)) {
		t.Error(`openapi.json does not declare "openapi": "3.1.0"`)
	}
}

// TestOpenAPIRoutes holds the document to the router in both directions: every route of
// api.Routes() is documented, and every documented operation is a route. To add a route, add
// it to api.routes and its operation to openapi.json (see the README).
func TestOpenAPIRoutes(t *testing.T) {
	doc, err := libopenapi.NewDocument(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	var routed []string
	for _, r := range api.Routes() {
		// A ServeMux wildcard {ref...} matches the rest of the path; OpenAPI names it {ref}.
		routed = append(routed, r.Method+" "+strings.ReplaceAll(r.Path, "...}", "}"))
	}
	if len(routed) < 40 {
		t.Fatalf("api.Routes() lists %d routes; the table is not being read", len(routed))
	}
	for _, r := range routed {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routed, d) {
			t.Errorf("openapi.json documents %s, which no route serves", d)
		}
	}
}

// TestOpenAPIServed: GET /v1/openapi.json answers the document, without a key.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	status, body := e.do(t, "GET", "/v1/openapi.json", "", nil)
	if status != 200 || !bytes.Equal(body, api.OpenAPI) {
		t.Fatalf("GET /v1/openapi.json: %d, %d bytes; want 200 and the %d bytes of openapi.json", status, len(body), len(api.OpenAPI))
	}
}

// checkOpenAPIResponse validates one real answer of the API against the operation of
// openapi.json that its request matches: status documented, body valid against its schema.
func checkOpenAPIResponse(tb testing.TB, method, path string, status int, body []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, "http://127.0.0.1:8080"+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	res := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
		Body: io.NopCloser(bytes.NewReader(body)), Request: req}
	if ok, errs := mustValidator(tb).ValidateHttpResponse(req, res); !ok {
		for _, e := range errs {
			var why []string
			for _, se := range e.SchemaValidationErrors {
				why = append(why, se.FieldPath+": "+se.Reason)
			}
			tb.Errorf("%s %s answered %d, which openapi.json does not allow: %s %s %v\n%s", method, path, status, e.Message, e.Reason, why, body)
		}
	}
}
