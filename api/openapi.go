package api

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the API's OpenAPI 3.1 document, served at GET /v1/openapi.json. It is written by
// hand, next to the routes: TestOpenAPIRoutes holds it to Routes() in both directions, and the
// golden responses (TestGoldenResponses) must validate against it.
//
//go:embed openapi.json
var OpenAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*") // readable by API explorers on other origins
	_, _ = w.Write(OpenAPI)
}
