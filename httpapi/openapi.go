package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3.1 description of the HTTP API, written by hand
// and kept true by openapi_test.go, which calls every operation it describes
// and checks each reply against its schema.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPI serves /openapi.json, so that users can generate clients and tools
// can check calls.
func (h *handler) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(openAPIDoc)
}
