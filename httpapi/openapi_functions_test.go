package httpapi

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIDescribesEveryFunction: /openapi.json describes each function
// the UAPI routes call, on /execute/Tokens/ and in json-api's list of
// functions, and no other; TestOpenAPI checks what it says of each.
func TestOpenAPIDescribesEveryFunction(t *testing.T) {
	var doc struct {
		Paths map[string]struct {
			Get struct {
				Parameters []struct {
					Name   string `json:"name"`
					Schema struct {
						Enum []any `json:"enum"`
					} `json:"schema"`
				} `json:"parameters"`
			} `json:"get"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	var execute, viaJSON []string
	for path := range doc.Paths {
		if fn, ok := strings.CutPrefix(path, "/execute/Tokens/"); ok {
			execute = append(execute, fn)
		}
	}
	for _, p := range doc.Paths[jsonAPIPath].Get.Parameters {
		if p.Name == "cpanel_jsonapi_func" {
			for _, fn := range p.Schema.Enum {
				viaJSON = append(viaJSON, fn.(string))
			}
		}
	}
	want := slices.Sorted(maps.Keys(functions))
	slices.Sort(execute)
	slices.Sort(viaJSON)
	if !slices.Equal(execute, want) || !slices.Equal(viaJSON, want) {
		t.Fatalf("the functions are %v; /execute/Tokens/ describes %v, /json-api/cpanel %v", want, execute, viaJSON)
	}
}
