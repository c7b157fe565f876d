package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"tokenledger/httpapi"
)

// apiCall is one real call that TestOpenAPI makes, and what it expects.
type apiCall struct {
	name   string
	base   string // the server; the test node when empty
	path   string
	auth   string
	query  url.Values
	status int
	// refused: the parameters are ones the document does not promise to
	// take (a call made to be refused), so only the reply is checked.
	refused bool
}

// TestOpenAPI keeps /openapi.json true: it calls every operation the
// document describes, for real, and checks each call's parameters against
// their description and each reply (status, content type, body) against
// the described response. Every schema in the document uses only keywords
// the checker checks.
func TestOpenAPI(t *testing.T) {
	n := mustNode(t, withUses)
	admin := cpanel("bob", n.mustToken(t, "bob", "admin", nil))
	limited := cpanel("bob", n.mustLimitedToken(t, "bob", "no-tokens", false, "email"))
	readOnly := cpanel("bob", n.mustLimitedToken(t, "bob", "reader", true))
	catchingUp := httptest.NewServer(httpapi.New(httpapi.Config{Ready: func() bool { return false }}))
	t.Cleanup(catchingUp.Close)
	inADay := strconv.FormatInt(n.Clock.Now().Add(24*time.Hour).Unix(), 10)
	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	jq := func(fn string, kv ...string) url.Values {
		return q(append([]string{"cpanel_jsonapi_apiversion", "3", "cpanel_jsonapi_module", "Tokens", "cpanel_jsonapi_func", fn}, kv...)...)
	}
	calls := []apiCall{
		{name: "healthz", path: "/healthz", status: 200},
		{name: "readyz", path: "/readyz", status: 200},
		{name: "readyz while catching up", base: catchingUp.URL, path: "/readyz", status: 503},
		{name: "metrics", path: "/metrics", status: 200},
		{name: "openapi", path: "/openapi.json", status: 200},

		{name: "create", path: "/execute/Tokens/create_full_access", auth: admin, status: 200,
			query: q("name", "ci", "expires_at", inADay, "whitelist_ip-0", "192.0.2.0/24", "whitelist_ip", "198.51.100.7")},
		{name: "create, no expiry", path: "/execute/Tokens/create_full_access", auth: admin, status: 200, query: q("name", "forever")},
		{name: "create a duplicate", path: "/execute/Tokens/create_full_access", auth: admin, status: 200, query: q("name", "ci")},
		{name: "create without a credential", path: "/execute/Tokens/create_full_access", status: 401, query: q("name", "x")},
		{name: "create while catching up", base: catchingUp.URL, path: "/execute/Tokens/create_full_access", auth: admin, status: 503, query: q("name", "x")},
		{name: "create with a bad name", path: "/execute/Tokens/create_full_access", auth: admin, status: 200, query: q("name", "a b"), refused: true},
		{name: "create read-only", path: "/execute/Tokens/create_full_access", auth: admin, status: 200, query: q("name", "ro", "readonly", "1")},
		{name: "create with a feature", path: "/execute/Tokens/create_full_access", auth: admin, status: 200, query: q("name", "x", "feature-1", "email"), refused: true},
		{name: "create by a read-only token", path: "/execute/Tokens/create_full_access", auth: readOnly, status: 403, query: q("name", "x")},
		{name: "create limited", path: "/execute/Tokens/create_limited_access", auth: admin, status: 200,
			query: q("name", "mail", "feature-1", "email", "feature-2", httpapi.TokensFeature, "expires_at", inADay, "readonly", "0", "whitelist_ip", "192.0.2.1")},
		{name: "create limited, no feature", path: "/execute/Tokens/create_limited_access", auth: admin, status: 200, query: q("name", "y"), refused: true},
		{name: "create limited without the feature apitokens", path: "/execute/Tokens/create_limited_access", auth: limited, status: 403, query: q("name", "y", "feature", "email")},
		{name: "create limited without a credential", path: "/execute/Tokens/create_limited_access", status: 401, query: q("name", "y", "feature", "email")},
		{name: "set features", path: "/execute/Tokens/set_features", auth: admin, status: 200, query: q("name", "mail", "feature-1", "dns")},
		{name: "set features back to full access", path: "/execute/Tokens/set_features", auth: admin, status: 200, query: q("name", "mail", "full_access", "1")},
		{name: "set no features", path: "/execute/Tokens/set_features", auth: admin, status: 200, query: q("name", "mail"), refused: true},
		{name: "set features by a token without apitokens", path: "/execute/Tokens/set_features", auth: limited, status: 403, query: q("name", "mail", "full_access", "1")},
		{name: "set features without a credential", path: "/execute/Tokens/set_features", status: 401, query: q("name", "mail", "full_access", "1")},
		{name: "list by a read-only token", path: "/execute/Tokens/list", auth: readOnly, status: 200},
		{name: "list without the feature apitokens", path: "/execute/Tokens/list", auth: limited, status: 403},
		{name: "list", path: "/execute/Tokens/list", auth: admin, status: 200},
		{name: "list with a wrong password", path: "/execute/Tokens/list", auth: basic("bob", "guess"), status: 401},
		{name: "rename", path: "/execute/Tokens/rename", auth: admin, status: 200, query: q("name", "ci", "new_name", "ci2")},
		{name: "rename an unknown token", path: "/execute/Tokens/rename", auth: admin, status: 200, query: q("name", "nope", "new_name", "x")},
		{name: "rotate", path: "/execute/Tokens/rotate", auth: admin, status: 200, query: q("name", "ci2", "grace", "3600")},
		{name: "rotate an unknown token", path: "/execute/Tokens/rotate", auth: admin, status: 200, query: q("name", "nope")},
		{name: "list after", path: "/execute/Tokens/list", auth: basic("bob", passwords["bob"]), status: 200},
		{name: "revoke", path: "/execute/Tokens/revoke", auth: admin, status: 200, query: q("name-1", "ci2", "name-2", "never-was")},
		{name: "revoke again", path: "/execute/Tokens/revoke", auth: admin, status: 200, query: q("name", "ci2")},
		{name: "revoke without a name", path: "/execute/Tokens/revoke", auth: admin, status: 200, refused: true},

		{name: "json-api list", path: "/json-api/cpanel", auth: admin, status: 200, query: jq("list")},
		{name: "json-api create", path: "/json-api/cpanel", auth: admin, status: 200, query: jq("create_full_access", "name", "via-json", "cpanel_jsonapi_user", "bob")},
		{name: "json-api rename", path: "/json-api/cpanel", auth: admin, status: 200, query: jq("rename", "name", "via-json", "new_name", "via-json-2")},
		{name: "json-api rotate", path: "/json-api/cpanel", auth: admin, status: 200, query: jq("rotate", "name", "via-json-2")},
		{name: "json-api revoke", path: "/json-api/cpanel", auth: admin, status: 200, query: jq("revoke", "name-0", "via-json-2", "name-1", "forever")},
		{name: "json-api without a credential", path: "/json-api/cpanel", status: 401, query: jq("list")},
		{name: "json-api create limited", path: "/json-api/cpanel", auth: admin, status: 200, query: jq("create_limited_access", "name", "j-limited", "feature-1", "email", "readonly", "1")},
		{name: "json-api set features", path: "/json-api/cpanel", auth: admin, status: 200, query: jq("set_features", "name", "j-limited", "full_access", "1")},
		{name: "json-api without the feature apitokens", path: "/json-api/cpanel", auth: limited, status: 403, query: jq("list")},
		{name: "json-api as another account", path: "/json-api/cpanel", auth: admin, status: 403, query: jq("list", "cpanel_jsonapi_user", "carol")},
		{name: "json-api, an unknown function", path: "/json-api/cpanel", auth: admin, status: 404, query: jq("nope"), refused: true},
		{name: "json-api, cPanel API 2", path: "/json-api/cpanel", auth: admin, status: 400, refused: true,
			query: q("cpanel_jsonapi_apiversion", "2", "cpanel_jsonapi_module", "Tokens", "cpanel_jsonapi_func", "list")},
	}

	resp, err := http.Get(n.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	raw, err := decodeJSON(b)
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("/openapi.json: %d %s: %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	doc := raw.(map[string]any)
	s := schemas{doc: doc}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi %v, want 3.1.0 (whose schemas are JSON Schema 2020-12)", doc["openapi"])
	}
	for name, schema := range object(object(doc["components"])["schemas"]) {
		if err := s.lint(schema, "components.schemas."+name); err != nil {
			t.Error(err)
		}
	}
	ops := map[string]map[string]any{} // path -> the GET operation
	for path, item := range object(doc["paths"]) {
		for method, op := range object(item) {
			if method != "get" {
				t.Errorf("%s: %s is described; the test calls GET only", path, method)
				continue
			}
			ops[path] = object(op)
			for _, p := range asList(object(op)["parameters"]) {
				if err := s.lint(object(p)["schema"], path+" parameter "+fmt.Sprint(object(p)["name"])); err != nil {
					t.Error(err)
				}
			}
			for code, r := range object(object(op)["responses"]) {
				for media, c := range object(object(r)["content"]) {
					if err := s.lint(object(c)["schema"], path+" "+code+" "+media); err != nil {
						t.Error(err)
					}
				}
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	called := map[string]bool{}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			op := ops[c.path]
			if op == nil {
				t.Fatalf("%s is not described", c.path)
			}
			called[c.path] = true
			if !c.refused {
				for _, err := range checkParams(s, op, c.query) {
					t.Error(err)
				}
			}
			base := c.base
			if base == "" {
				base = n.URL
			}
			req, _ := http.NewRequest("GET", base+c.path+"?"+c.query.Encode(), nil)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if err := checkReply(s, op, resp.StatusCode, resp.Header.Get("Content-Type"), body); err != nil {
				t.Fatalf("%v\n%s", err, body)
			}
		})
	}
	for path := range ops {
		if !called[path] {
			t.Errorf("%s is described, and no call checks it", path)
		}
	}
}

// checkReply checks a reply against the response op describes for its
// status, or its default.
func checkReply(s schemas, op map[string]any, status int, contentType string, body []byte) error {
	responses := object(op["responses"])
	r, ok := responses[strconv.Itoa(status)]
	if !ok {
		if r, ok = responses["default"]; !ok {
			return fmt.Errorf("HTTP %d is not described", status)
		}
	}
	media, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("Content-Type %q: %v", contentType, err)
	}
	c, ok := object(object(r)["content"])[media]
	if !ok {
		return fmt.Errorf("HTTP %d as %s is not described", status, media)
	}
	var v any = string(body)
	if media == "application/json" {
		if v, err = decodeJSON(body); err != nil {
			return fmt.Errorf("not JSON: %v", err)
		}
	}
	return s.check(object(c)["schema"], v, "reply")
}

// checkParams checks query against the parameters op describes: each is
// described, the required ones are there, and their values fit their
// schemas. A parameter marked x-numbered may also come as name-0, name-1, …
func checkParams(s schemas, op map[string]any, query url.Values) []error {
	var errs []error
	params := map[string]map[string]any{}
	for _, p := range asList(op["parameters"]) {
		params[object(p)["name"].(string)] = object(p)
	}
	values := map[string][]string{}
	for k, vs := range query {
		name := k
		if base, num, ok := strings.Cut(k, "-"); ok && params[k] == nil {
			if _, err := strconv.Atoi(num); err == nil && params[base] != nil && params[base]["x-numbered"] == true {
				name = base
			}
		}
		if params[name] == nil {
			errs = append(errs, fmt.Errorf("the parameter %q is not described", k))
			continue
		}
		values[name] = append(values[name], vs...)
	}
	for name, p := range params {
		vs, given := values[name]
		if !given {
			if p["required"] == true {
				errs = append(errs, fmt.Errorf("the required parameter %q is missing", name))
			}
			continue
		}
		schema := p["schema"]
		if ref, ok := object(schema)["$ref"].(string); ok {
			schema, _ = s.resolve(ref)
		}
		var v any
		if object(schema)["type"] == "array" {
			var items []any
			for _, x := range vs {
				items = append(items, paramValue(s, object(schema)["items"], x))
			}
			v = items
		} else {
			if len(vs) > 1 {
				errs = append(errs, fmt.Errorf("the parameter %q is given %d times", name, len(vs)))
			}
			v = paramValue(s, schema, vs[0])
		}
		if err := s.check(p["schema"], v, "parameter "+name); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// paramValue is a query parameter's text as the JSON value its schema
// describes: a number for a number, the text for anything else.
func paramValue(s schemas, schema any, text string) any {
	if ref, ok := object(schema)["$ref"].(string); ok {
		schema, _ = s.resolve(ref)
	}
	switch object(schema)["type"] {
	case "integer", "number":
		return json.Number(text)
	}
	return text
}

func object(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
