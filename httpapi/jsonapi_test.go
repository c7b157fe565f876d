package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// wrapped is a reply of /json-api/cpanel as a script reads it: cPanel's
// wrapper around a UAPI envelope.
type wrapped struct {
	HTTP       int
	APIVersion int             `json:"apiversion"`
	Func       string          `json:"func"`
	Module     string          `json:"module"`
	Result     json.RawMessage `json:"result"`
	reply      reply
}

// jsonAPI calls /json-api/cpanel with params: GET with them in the query,
// POST with them as a form.
func (n *node) jsonAPI(tb testing.TB, method, auth string, params url.Values) wrapped {
	tb.Helper()
	u, body := n.URL+"/json-api/cpanel", io.Reader(nil)
	if method == http.MethodGet {
		u += "?" + params.Encode()
	} else {
		body = strings.NewReader(params.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return doWrapped(tb, req)
}

func doWrapped(tb testing.TB, req *http.Request) wrapped {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Fatalf("%s: Content-Type %q, body %s", req.URL, ct, b)
	}
	w := wrapped{HTTP: resp.StatusCode}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &w); err != nil || json.Unmarshal(b, &keys) != nil || len(keys) != 4 || keys["apiversion"] == nil ||
		keys["func"] == nil || keys["module"] == nil || keys["result"] == nil {
		tb.Fatalf("not cPanel's json-api wrapper {apiversion, func, module, result}: %v: %s", err, b)
	}
	if w.APIVersion != 3 {
		tb.Errorf("apiversion %d, want 3", w.APIVersion)
	}
	// The result is the envelope /execute/ sends, with the HTTP status.
	w.reply = decodeReply(tb, req.URL.Path, resp.StatusCode, w.Result)
	return w
}

func jsonAPIParams(fn string, more ...string) url.Values {
	v := url.Values{"cpanel_jsonapi_apiversion": {"3"}, "cpanel_jsonapi_module": {"Tokens"}, "cpanel_jsonapi_func": {fn}}
	for i := 0; i+1 < len(more); i += 2 {
		v.Add(more[i], more[i+1])
	}
	return v
}

// TestJSONAPI: cPanel's /json-api/cpanel route answers the same functions
// as /execute/Tokens/, with the same credentials, in cPanel's wrapper; what
// it cannot answer is refused in the same wrapper.
func TestJSONAPI(t *testing.T) {
	n := mustNode(t)
	auth := cpanel("bob", n.mustToken(t, "bob", "admin", nil))
	n.mustToken(t, "carol", "carols", nil)

	// list, as cPanel's spec shows it.
	w := n.jsonAPI(t, "GET", auth, jsonAPIParams("list"))
	w.reply.ok(t)
	var rows []listedData
	json.Unmarshal(w.reply.Data, &rows)
	if w.Func != "list" || w.Module != "Tokens" || len(rows) != 1 || rows[0].Name != "admin" || string(w.reply.raw["metadata"]) != `{"transformed":1}` {
		t.Fatalf("list: %+v %s", w, w.Result)
	}

	// create_full_access by POST, the json-api parameters in the form, and
	// the new token works at once.
	w = n.jsonAPI(t, "POST", basic("bob", passwords["bob"]), jsonAPIParams("create_full_access", "name", "via-json-api", "cpanel_jsonapi_user", "bob"))
	var c createdData
	json.Unmarshal(w.reply.ok(t).Data, &c)
	if w.Func != "create_full_access" || c.Name != "via-json-api" || c.HasFullAccess != 1 {
		t.Fatalf("create: %+v %s", w, w.Result)
	}
	n.jsonAPI(t, "GET", cpanel("bob", c.Token), jsonAPIParams("rename", "name", "via-json-api", "new_name", "renamed")).reply.ok(t)
	n.jsonAPI(t, "GET", auth, jsonAPIParams("rotate", "name", "renamed")).reply.ok(t)
	for range 2 { // cPanel's revoke: the second time, the token does not exist
		if w := n.jsonAPI(t, "GET", auth, jsonAPIParams("revoke", "name", "renamed")); string(w.reply.ok(t).Data) != "1" {
			t.Fatalf("revoke: %s", w.Result)
		}
	}
	if have := n.names("bob"); !slices.Equal(have, []string{"admin"}) {
		t.Fatalf("bob's tokens %v", have)
	}

	// A refused call is refused as on /execute/.
	n.jsonAPI(t, "GET", auth, jsonAPIParams("create_full_access", "name", "admin")).reply.refused(t, http.StatusOK, "A conflicting API token with the name “admin” already exists.")

	for _, tc := range []struct {
		name   string
		auth   string
		params url.Values
		status int
		msg    string
		fn     string // the wrapper's func
	}{
		{"no credential", "", jsonAPIParams("list"), http.StatusUnauthorized, "Access denied", "list"},
		{"another account's token", cpanel("carol", n.mustToken(t, "carol", "c2", nil)), jsonAPIParams("list", "cpanel_jsonapi_user", "bob"), http.StatusForbidden, "cannot act as “bob”", "list"},
		{"unknown function", auth, jsonAPIParams("nope"), http.StatusNotFound, "The function “nope” does not exist in the module “Tokens”.", "nope"},
		{"function names are case-sensitive", auth, jsonAPIParams("List"), http.StatusNotFound, "The function “List” does not exist", "List"},
		{"unknown module", auth, url.Values{"cpanel_jsonapi_apiversion": {"3"}, "cpanel_jsonapi_module": {"Email"}, "cpanel_jsonapi_func": {"list_pops"}}, http.StatusNotFound, "does not exist in the module “Email”", "list_pops"},
		{"cPanel API 2", auth, url.Values{"cpanel_jsonapi_apiversion": {"2"}, "cpanel_jsonapi_module": {"Tokens"}, "cpanel_jsonapi_func": {"list"}}, http.StatusBadRequest, "The API version “2” is not available here", "list"},
		{"no version", auth, url.Values{"cpanel_jsonapi_module": {"Tokens"}, "cpanel_jsonapi_func": {"list"}}, http.StatusBadRequest, "Send “cpanel_jsonapi_apiversion=3”", "list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := n.jsonAPI(t, "GET", tc.auth, tc.params)
			w.reply.refused(t, tc.status, tc.msg)
			if w.Func != tc.fn {
				t.Errorf("wrapper's func %q, want %q", w.Func, tc.fn)
			}
		})
	}

	t.Run("body over 64 KiB", func(t *testing.T) {
		req, _ := http.NewRequest("POST", n.URL+"/json-api/cpanel?"+jsonAPIParams("list").Encode(), strings.NewReader("pad="+strings.Repeat("x", 64<<10)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		doWrapped(t, req).reply.refused(t, http.StatusRequestEntityTooLarge, "larger than 64 KiB")
	})
	t.Run("URL over 8 KiB", func(t *testing.T) {
		req, _ := http.NewRequest("GET", n.URL+"/json-api/cpanel?"+jsonAPIParams("list", "pad", strings.Repeat("x", 8<<10)).Encode(), nil)
		req.Header.Set("Authorization", auth)
		w := doWrapped(t, req)
		w.reply.refused(t, http.StatusRequestURITooLong, "longer than 8 KiB")
		if w.Func != "list" {
			t.Errorf("wrapper's func %q", w.Func)
		}
	})
	if have := n.names("carol"); !slices.Equal(have, []string{"carols", "c2"}) {
		t.Fatalf("carol's tokens %v", have)
	}
}
