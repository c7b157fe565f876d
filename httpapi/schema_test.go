package httpapi_test

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// schemas checks JSON values against the JSON Schema (2020-12, as OpenAPI
// 3.1 uses it) of an OpenAPI document: only the keywords the document
// uses, and it refuses a schema with any other, so that nothing in the
// document goes unchecked. Values are as encoding/json decodes them with
// UseNumber: numbers are json.Number.
type schemas struct {
	doc map[string]any
}

// annotations say something to a reader and nothing to a check.
var annotations = []string{"description", "title", "example", "examples", "format", "default", "deprecated"}

// checked are the keywords check knows.
var checked = []string{"$ref", "type", "enum", "properties", "required", "additionalProperties", "items",
	"pattern", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"}

// resolve follows a local reference, "#/components/schemas/Name".
func (s schemas) resolve(ref string) (any, error) {
	path, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("the reference %q is not local", ref)
	}
	var at any = s.doc
	for _, key := range strings.Split(path, "/") {
		m, ok := at.(map[string]any)
		if !ok || m[key] == nil {
			return nil, fmt.Errorf("the reference %q leads nowhere", ref)
		}
		at = m[key]
	}
	return at, nil
}

// lint refuses a schema that uses a keyword check does not know, or a
// reference that leads nowhere, anywhere within it.
func (s schemas) lint(schema any, where string) error {
	m, ok := schema.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: a schema must be an object, not %T", where, schema)
	}
	for k, v := range m {
		switch {
		case slices.Contains(annotations, k) || strings.HasPrefix(k, "x-"):
		case !slices.Contains(checked, k):
			return fmt.Errorf("%s: the schema keyword %q is not checked by this test", where, k)
		case k == "$ref":
			if _, err := s.resolve(v.(string)); err != nil {
				return fmt.Errorf("%s: %v", where, err)
			}
		case k == "properties":
			for name, p := range v.(map[string]any) {
				if err := s.lint(p, where+"."+name); err != nil {
					return err
				}
			}
		case k == "items":
			if err := s.lint(v, where+"[]"); err != nil {
				return err
			}
		case k == "additionalProperties":
			if _, ok := v.(bool); !ok {
				return fmt.Errorf("%s: additionalProperties must be true or false", where)
			}
		}
	}
	return nil
}

// check says what is wrong with v as schema describes it, at where.
func (s schemas) check(schema any, v any, where string) error {
	m := schema.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		target, err := s.resolve(ref)
		if err != nil {
			return err
		}
		return s.check(target, v, where)
	}
	if t, ok := m["type"]; ok {
		types := []string{}
		switch t := t.(type) {
		case string:
			types = append(types, t)
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return isType(v, t) }) {
			return fmt.Errorf("%s: %s is not of type %v", where, showJSON(v), types)
		}
	}
	if enum, ok := m["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return sameJSON(e, v) }) {
		return fmt.Errorf("%s: %s is not one of %v", where, showJSON(v), enum)
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := m["properties"].(map[string]any)
		for _, r := range asStrings(m["required"]) {
			if _, ok := v[r]; !ok {
				return fmt.Errorf("%s: %q is missing", where, r)
			}
		}
		for k, x := range v {
			p, ok := props[k]
			if !ok {
				if m["additionalProperties"] == false {
					return fmt.Errorf("%s: %q is not described", where, k)
				}
				continue
			}
			if err := s.check(p, x, where+"."+k); err != nil {
				return err
			}
		}
	case []any:
		if n, ok := m["minItems"]; ok && len(v) < toInt(n) {
			return fmt.Errorf("%s: %d items, fewer than %v", where, len(v), n)
		}
		if n, ok := m["maxItems"]; ok && len(v) > toInt(n) {
			return fmt.Errorf("%s: %d items, more than %v", where, len(v), n)
		}
		if items, ok := m["items"]; ok {
			for i, x := range v {
				if err := s.check(items, x, fmt.Sprintf("%s[%d]", where, i)); err != nil {
					return err
				}
			}
		}
	case string:
		if p, ok := m["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			return fmt.Errorf("%s: %q does not match %s", where, v, p)
		}
		n := utf8.RuneCountInString(v)
		if x, ok := m["minLength"]; ok && n < toInt(x) {
			return fmt.Errorf("%s: %q is shorter than %v", where, v, x)
		}
		if x, ok := m["maxLength"]; ok && n > toInt(x) {
			return fmt.Errorf("%s: %q is longer than %v", where, v, x)
		}
	case json.Number:
		x, _ := new(big.Rat).SetString(v.String())
		if lo, ok := m["minimum"]; ok && x.Cmp(rat(lo)) < 0 {
			return fmt.Errorf("%s: %s is below %v", where, v, lo)
		}
		if hi, ok := m["maximum"]; ok && x.Cmp(rat(hi)) > 0 {
			return fmt.Errorf("%s: %s is above %v", where, v, hi)
		}
	}
	return nil
}

func isType(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		x, ok := new(big.Rat).SetString(n.String())
		return ok && x.IsInt()
	}
	return false
}

// sameJSON compares JSON values, numbers by value.
func sameJSON(a, b any) bool {
	if na, ok := a.(json.Number); ok {
		nb, ok := b.(json.Number)
		return ok && rat(na).Cmp(rat(nb)) == 0
	}
	return reflect.DeepEqual(a, b)
}

func rat(n any) *big.Rat {
	x, _ := new(big.Rat).SetString(fmt.Sprint(n))
	if x == nil {
		return new(big.Rat)
	}
	return x
}

func toInt(n any) int {
	x := rat(n)
	return int(x.Num().Int64() / x.Denom().Int64())
}

func asStrings(v any) []string {
	var out []string
	for _, x := range asList(v) {
		out = append(out, x.(string))
	}
	return out
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func showJSON(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		b = append(b[:80], "…"...)
	}
	return string(b)
}

// decodeJSON decodes b as the checker takes values: numbers as json.Number.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// TestSchemaChecker: the checker finds what it is there to find.
func TestSchemaChecker(t *testing.T) {
	doc, err := decodeJSON([]byte(`{"components": {"schemas": {
		"Row": {"type": "object", "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"}, "at": {"type": ["integer", "null"], "minimum": 0}},
			"required": ["name", "at"], "additionalProperties": false},
		"Rows": {"type": "array", "items": {"$ref": "#/components/schemas/Row"}, "maxItems": 2},
		"One": {"enum": [1, null]},
		"Short": {"type": "string", "maxLength": 2},
		"Odd": {"type": "string", "oneOf": []},
		"Lost": {"$ref": "#/components/schemas/Nowhere"}
	}}}`))
	if err != nil {
		t.Fatal(err)
	}
	s := schemas{doc: doc.(map[string]any)}
	for _, tc := range []struct {
		name, schema, value string
		want                string // in the error; "" for none
	}{
		{"rows", "Rows", `[{"name": "a", "at": 1}, {"name": "b", "at": null}]`, ""},
		{"a missing field", "Rows", `[{"name": "a"}]`, `"at" is missing`},
		{"a field not described", "Rows", `[{"name": "a", "at": 1, "x": 2}]`, `"x" is not described`},
		{"a wrong type", "Rows", `[{"name": "a", "at": "1"}]`, "is not of type"},
		{"not an integer", "Rows", `[{"name": "a", "at": 1.5}]`, "is not of type"},
		{"below the minimum", "Rows", `[{"name": "a", "at": -1}]`, "is below 0"},
		{"against the pattern", "Rows", `[{"name": "A", "at": 1}]`, "does not match"},
		{"too many", "Rows", `[{"name": "a", "at": 1}, {"name": "a", "at": 1}, {"name": "a", "at": 1}]`, "more than 2"},
		{"not an array", "Rows", `{}`, "is not of type"},
		{"in the enum", "One", `1.0`, ""},
		{"null in the enum", "One", `null`, ""},
		{"not in the enum", "One", `2`, "is not one of"},
		{"too long", "Short", `"abc"`, "is longer than 2"},
		{"a reference that leads nowhere", "Lost", `1`, "leads nowhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := decodeJSON([]byte(tc.value))
			if err != nil {
				t.Fatal(err)
			}
			err = s.check(map[string]any{"$ref": "#/components/schemas/" + tc.schema}, v, tc.schema)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("have %v, want %q", err, tc.want)
			}
		})
	}
	if err := s.lint(s.doc["components"].(map[string]any)["schemas"].(map[string]any)["Odd"], "Odd"); err == nil || !strings.Contains(err.Error(), `"oneOf" is not checked`) {
		t.Fatalf("a keyword the checker does not know: %v", err)
	}
	if err := s.lint(s.doc["components"].(map[string]any)["schemas"].(map[string]any)["Lost"], "Lost"); err == nil {
		t.Fatal("a reference that leads nowhere passes")
	}
}
