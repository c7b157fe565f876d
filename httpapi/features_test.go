package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tokenledger/httpapi"
	"tokenledger/projections"
)

// limitedData is create's and rotate's data with the fields of issue 18.
type limitedData struct {
	createdData
	Features []string `json:"features"`
	ReadOnly *int     `json:"readonly"`
}

func (r reply) limited(tb testing.TB) limitedData {
	tb.Helper()
	var d limitedData
	if err := json.Unmarshal(r.ok(tb).Data, &d); err != nil {
		tb.Fatal(err)
	}
	return d
}

// listedRow is a list row's fields that say what a token may do.
type listedRow struct {
	Name          string   `json:"name"`
	HasFullAccess int      `json:"has_full_access"`
	Features      []string `json:"features"`
	ReadOnly      *int     `json:"readonly"`
}

func (n *node) rows(tb testing.TB, auth string) map[string]listedRow {
	tb.Helper()
	var rows []listedRow
	if err := json.Unmarshal(n.uapi(tb, "GET", "list", auth, nil).ok(tb).Data, &rows); err != nil {
		tb.Fatal(err)
	}
	out := map[string]listedRow{}
	for _, r := range rows {
		if r.Features == nil {
			tb.Fatalf("%s: features is null, want an array", r.Name)
		}
		out[r.Name] = r
	}
	return out
}

func params(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// TestFeaturesOverUAPI: tokens with features and read-only tokens are
// created, listed and used over the UAPI as a script would, and validate
// for exactly what they may do.
func TestFeaturesOverUAPI(t *testing.T) {
	n := mustNode(t)
	admin := cpanel("bob", n.mustToken(t, "bob", "admin", nil))

	full := n.uapi(t, "GET", "create_full_access", admin, params("name", "full")).limited(t)
	if full.HasFullAccess != 1 || full.Features == nil || len(full.Features) != 0 || full.ReadOnly != nil {
		t.Fatalf("create_full_access: %+v, want full access, features [], no readonly", full)
	}
	ro := n.uapi(t, "POST", "create_full_access", admin, params("name", "ro", "readonly", "1")).limited(t)
	if ro.HasFullAccess != 1 || ro.ReadOnly == nil || *ro.ReadOnly != 1 {
		t.Fatalf("create_full_access readonly=1: %+v", ro)
	}
	mail := n.uapi(t, "GET", "create_limited_access", admin,
		params("name", "mail", "feature-2", "email", "feature-1", httpapi.TokensFeature, "feature-3", "email")).limited(t)
	if mail.HasFullAccess != 0 || !slices.Equal(mail.Features, []string{httpapi.TokensFeature, "email"}) || mail.ReadOnly != nil {
		t.Fatalf("create_limited_access: %+v", mail)
	}
	dns := n.uapi(t, "GET", "create_limited_access", admin, params("name", "dns", "feature", "dns", "readonly", "1")).limited(t)
	if dns.HasFullAccess != 0 || !slices.Equal(dns.Features, []string{"dns"}) || dns.ReadOnly == nil || *dns.ReadOnly != 1 {
		t.Fatalf("create_limited_access readonly=1: %+v", dns)
	}

	rows := n.rows(t, admin)
	for _, tt := range []struct {
		name     string
		full     int
		features []string
		readOnly bool
	}{
		{"admin", 1, []string{}, false},
		{"full", 1, []string{}, false},
		{"ro", 1, []string{}, true},
		{"mail", 0, []string{httpapi.TokensFeature, "email"}, false},
		{"dns", 0, []string{"dns"}, true},
	} {
		r := rows[tt.name]
		if r.HasFullAccess != tt.full || !slices.Equal(r.Features, tt.features) || (r.ReadOnly != nil) != tt.readOnly || (r.ReadOnly != nil && *r.ReadOnly != 1) {
			t.Errorf("list %s: %+v, want has_full_access %d features %q readonly %v", tt.name, r, tt.full, tt.features, tt.readOnly)
		}
	}

	// Validation, as a service asks the table, for a feature and a write.
	now := n.Clock.Now()
	for _, tt := range []struct {
		name, secret string
		need         projections.Need
		reason       string
	}{
		{"full access has every feature", full.Token, projections.Need{Features: []string{"email"}, Write: true}, ""},
		{"a feature it has", mail.Token, projections.Need{Features: []string{"email"}}, ""},
		{"a feature it lacks", mail.Token, projections.Need{Features: []string{"dns"}}, projections.ReasonFeatureDenied},
		{"read-only, a read", ro.Token, projections.Need{Features: []string{"email"}}, ""},
		{"read-only, a write", ro.Token, projections.Need{Write: true}, projections.ReasonReadOnly},
	} {
		res := n.Table.ValidateFor(tt.secret, "bob", netip.Addr{}, tt.need, func() time.Time { return now })
		if res.Reason != tt.reason || res.Valid != (tt.reason == "") {
			t.Errorf("%s: valid %v reason %q, want %q", tt.name, res.Valid, res.Reason, tt.reason)
		}
	}

	// What each token may call over the UAPI.
	n.rows(t, cpanel("bob", mail.Token))
	n.rows(t, cpanel("bob", ro.Token))
	n.uapi(t, "GET", "list", cpanel("bob", dns.Token), nil).refused(t, http.StatusForbidden, "without the feature “apitokens”")
	for _, fn := range []struct {
		name   string
		params url.Values
	}{
		{"create_full_access", params("name", "x")},
		{"create_limited_access", params("name", "x", "feature", "email")},
		{"rename", params("name", "full", "new_name", "x")},
		{"revoke", params("name", "full")},
		{"rotate", params("name", "full")},
		{"set_features", params("name", "full", "feature", "email")},
	} {
		n.uapi(t, "GET", fn.name, cpanel("bob", ro.Token), fn.params).refused(t, http.StatusForbidden, "read-only")
		n.uapi(t, "GET", fn.name, cpanel("bob", dns.Token), fn.params).refused(t, http.StatusForbidden, "read-only")
	}
	if names := n.names("bob"); !slices.Equal(names, []string{"admin", "full", "ro", "mail", "dns"}) {
		t.Fatalf("after refusals the tokens are %q", names)
	}
}

// TestNoEscalationOverUAPI: a limited token that may manage tokens gives
// only the features it has, never full access, and a token without the
// Tokens feature calls nothing.
func TestNoEscalationOverUAPI(t *testing.T) {
	n := mustNode(t)
	mail := cpanel("bob", n.mustLimitedToken(t, "bob", "mail", false, httpapi.TokensFeature, "email"))
	bare := cpanel("bob", n.mustLimitedToken(t, "bob", "bare", false, "email"))

	d := n.uapi(t, "GET", "create_limited_access", mail, params("name", "child", "feature-1", "email")).limited(t)
	if !slices.Equal(d.Features, []string{"email"}) {
		t.Fatalf("child: %+v", d)
	}
	n.uapi(t, "GET", "create_limited_access", mail, params("name", "x", "feature-1", "email", "feature-2", "dns")).refused(t, http.StatusForbidden, `"dns"`)
	n.uapi(t, "GET", "create_full_access", mail, params("name", "x")).refused(t, http.StatusForbidden, "full access")
	n.uapi(t, "GET", "set_features", mail, params("name", "child", "full_access", "1")).refused(t, http.StatusForbidden, "full access")
	n.uapi(t, "GET", "set_features", mail, params("name", "child", "feature", "dns")).refused(t, http.StatusForbidden, `"dns"`)
	n.uapi(t, "GET", "create_full_access", bare, params("name", "x")).refused(t, http.StatusForbidden, "apitokens")
	n.uapi(t, "GET", "revoke", bare, params("name", "mail")).refused(t, http.StatusForbidden, "apitokens")
	n.uapi(t, "GET", "list", bare, nil).refused(t, http.StatusForbidden, "apitokens")
	// The same through cPanel's older route.
	n.jsonAPI(t, "GET", bare, jsonAPIParams("list")).reply.refused(t, http.StatusForbidden, "apitokens")
	if names := n.names("bob"); !slices.Equal(names, []string{"mail", "bare", "child"}) {
		t.Fatalf("the tokens are %q", names)
	}
}

// TestSetFeaturesOverUAPI narrows a token, widens it, and gives it full
// access again only when asked in so many words.
func TestSetFeaturesOverUAPI(t *testing.T) {
	n := mustNode(t)
	admin := basic("bob", passwords["bob"])
	secret := n.mustToken(t, "bob", "deploy", nil)

	set := func(kv ...string) listedRow {
		t.Helper()
		var r listedRow
		if err := json.Unmarshal(n.uapi(t, "POST", "set_features", admin, params(kv...)).ok(t).Data, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := set("name", "deploy", "feature-1", "email"); r.HasFullAccess != 0 || !slices.Equal(r.Features, []string{"email"}) {
		t.Fatalf("narrowed: %+v", r)
	}
	if res := n.Table.ValidateFor(secret, "bob", netip.Addr{}, projections.Need{Features: []string{"dns"}}, n.Clock.Now); res.Reason != projections.ReasonFeatureDenied {
		t.Fatalf("narrowed token for dns: %+v", res)
	}
	if r := set("name", "deploy", "feature-1", "email", "feature-2", "dns"); !slices.Equal(r.Features, []string{"dns", "email"}) {
		t.Fatalf("widened: %+v", r)
	}
	n.uapi(t, "GET", "set_features", admin, params("name", "deploy")).refused(t, http.StatusOK, "full_access=1")
	n.uapi(t, "GET", "set_features", admin, params("name", "deploy", "full_access", "0")).refused(t, http.StatusOK, "full_access=1")
	n.uapi(t, "GET", "set_features", admin, params("name", "deploy", "full_access", "1", "feature", "dns")).refused(t, http.StatusOK, "without “feature-N”")
	n.uapi(t, "GET", "set_features", admin, params("name", "nope", "feature", "dns")).refused(t, http.StatusOK, "nope")
	if r := n.rows(t, admin)["deploy"]; r.HasFullAccess != 0 || !slices.Equal(r.Features, []string{"dns", "email"}) {
		t.Fatalf("after refusals: %+v", r)
	}
	if r := set("name", "deploy", "full_access", "1"); r.HasFullAccess != 1 || len(r.Features) != 0 {
		t.Fatalf("full access again: %+v", r)
	}
	// Rotating keeps what the token may do, and says so.
	rot := n.uapi(t, "GET", "create_limited_access", admin, params("name", "ci", "feature", "git", "readonly", "1")).limited(t)
	d := n.uapi(t, "GET", "rotate", admin, params("name", "ci")).limited(t)
	if d.Token == rot.Token || d.HasFullAccess != 0 || !slices.Equal(d.Features, []string{"git"}) || d.ReadOnly == nil {
		t.Fatalf("rotated: %+v", d)
	}
}

// TestLimitingParamsRefused: a parameter that would change what a token
// may do is taken only by the functions that take it, and a malformed one
// is refused, never ignored.
func TestLimitingParamsRefused(t *testing.T) {
	n := mustNode(t)
	admin := cpanel("bob", n.mustToken(t, "bob", "admin", nil))
	for _, tt := range []struct {
		name, fn string
		params   url.Values
		msg      string
	}{
		{"a feature on create_full_access", "create_full_access", params("name", "x", "feature-1", "email"), "create_limited_access"},
		{"readonly=2", "create_full_access", params("name", "x", "readonly", "2"), "must be 0 or 1"},
		{"readonly=true", "create_limited_access", params("name", "x", "feature", "email", "readonly", "true"), "must be 0 or 1"},
		{"WHM's acl-N", "create_limited_access", params("name", "x", "feature", "email", "acl-1", "all"), "acl-1"},
		{"features", "create_limited_access", params("name", "x", "features", "email"), "features"},
		{"feature-x", "create_limited_access", params("name", "x", "feature-1", "email", "feature-x", "dns"), "feature-x"},
		{"feature--1", "create_limited_access", params("name", "x", "feature--1", "dns"), "feature--1"},
		{"a bad feature name", "create_limited_access", params("name", "x", "feature-1", "Email"), "not a valid feature name"},
		{"an empty feature", "create_limited_access", params("name", "x", "feature-1", ""), "not a valid feature name"},
		{"no feature", "create_limited_access", params("name", "x"), "at least one"},
		{"full_access on create", "create_full_access", params("name", "x", "full_access", "1"), "full_access"},
		{"readonly on set_features", "set_features", params("name", "admin", "feature", "email", "readonly", "1"), "readonly"},
		{"full_access=yes", "set_features", params("name", "admin", "full_access", "yes"), "must be 0 or 1"},
		{"readonly on rename", "rename", params("name", "admin", "new_name", "x", "readonly", "1"), "readonly"},
		{"a feature on rotate", "rotate", params("name", "admin", "feature", "email"), "feature"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n.uapi(t, "GET", tt.fn, admin, tt.params).refused(t, http.StatusOK, tt.msg)
		})
	}
	if names := n.names("bob"); !slices.Equal(names, []string{"admin"}) {
		t.Fatalf("the tokens are %q", names)
	}
	if r := n.rows(t, admin)["admin"]; r.HasFullAccess != 1 {
		t.Fatalf("admin: %+v", r)
	}
}

// TestPanelFeatures: the panel's forms create a read-only token and change
// a token's features, and never widen one to full access because no box
// was checked.
func TestPanelFeatures(t *testing.T) {
	n := mustNode(t)
	n.mustLimitedToken(t, "bob", "mail", false, "email")
	b := newBrowser(t, n.URL, nil)
	b.login("bob", passwords["bob"])
	csrf := b.csrf()

	if p := b.do("GET", "/create", nil); !strings.Contains(p.body, `id="feature-apitokens"`) || !strings.Contains(p.body, `id="feature-addondomains"`) {
		t.Fatalf("the create form does not offer the default features:\n%s", p.body)
	}
	b.do("POST", "/create", url.Values{"csrf": {csrf}, "name": {"ro"}, "expiry": {"never"}, "readonly": {"1"}})
	if r := n.rows(t, basic("bob", passwords["bob"]))["ro"]; r.HasFullAccess != 1 || r.ReadOnly == nil {
		t.Fatalf("read-only from the panel: %+v", r)
	}
	if p := b.do("POST", "/create", url.Values{"csrf": {csrf}, "name": {"x"}, "expiry": {"never"}, "feature": {"Bad"}}); !strings.Contains(p.body, "not a valid feature name") {
		t.Fatalf("a bad feature: %s", p.body)
	}
	if p := b.do("POST", "/features", url.Values{"csrf": {csrf}, "name": {"mail"}, "access": {"limited"}}); !strings.Contains(p.body, "Check at least one feature") {
		t.Fatalf("limited with nothing checked: %s", p.body)
	}
	if p := b.do("GET", "/manage?name=mail", nil); !strings.Contains(p.body, `id="feature-email" checked`) {
		t.Fatalf("the manage page does not show the token's own feature checked:\n%s", p.body)
	}
	b.do("POST", "/features", url.Values{"csrf": {csrf}, "name": {"mail"}, "access": {"limited"}, "feature": {"email", "cron"}})
	if r := n.rows(t, basic("bob", passwords["bob"]))["mail"]; !slices.Equal(r.Features, []string{"cron", "email"}) {
		t.Fatalf("after the change: %+v", r)
	}
	b.do("POST", "/features", url.Values{"csrf": {csrf}, "name": {"mail"}, "access": {"full"}, "feature": {"cron"}})
	if r := n.rows(t, basic("bob", passwords["bob"]))["mail"]; r.HasFullAccess != 1 {
		t.Fatalf("full access again: %+v", r)
	}
}

func TestReadFeatures(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, file string
		want       []string
		ok         bool
	}{
		{"names and comments", "# offered\napitokens\n\n  email  \n#cron\nemail\n", []string{"apitokens", "email"}, true},
		{"none", "# nothing\n", []string{}, true},
		{"a bad name", "apitokens\nE-mail\n", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			os.WriteFile(path, []byte(tt.file), 0o600)
			have, err := httpapi.ReadFeatures(path)
			if (err == nil) != tt.ok || tt.ok && !slices.Equal(have, tt.want) {
				t.Fatalf("have %q, %v; want %q", have, err, tt.want)
			}
			if !tt.ok && !strings.Contains(err.Error(), ":2:") {
				t.Fatalf("the error does not name the line: %v", err)
			}
		})
	}
}
