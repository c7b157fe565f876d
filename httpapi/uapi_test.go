package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/httpapi"
	"tokenledger/internal/nodetest"
	"tokenledger/projections"
)

// reply is a UAPI envelope as a script reads it.
type reply struct {
	HTTP     int
	Status   int             `json:"status"`
	Errors   []string        `json:"errors"`
	Messages []string        `json:"messages"`
	Warnings []string        `json:"warnings"`
	Metadata map[string]any  `json:"metadata"`
	Data     json.RawMessage `json:"data"`
	raw      map[string]json.RawMessage
}

// cpanel is the header a cPanel script sends with a token.
func cpanel(account, token string) string { return "cpanel " + account + ":" + token }

func basic(account, password string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(account, password)
	return r.Header.Get("Authorization")
}

// uapi calls /execute/Tokens/<fn>: GET with the parameters in the query, or
// POST with them as a form.
func (n *node) uapi(tb testing.TB, method, fn, auth string, params url.Values) reply {
	tb.Helper()
	u := n.URL + "/execute/Tokens/" + fn
	var body io.Reader
	if method == http.MethodGet {
		u += "?" + params.Encode()
	} else {
		body = strings.NewReader(params.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		tb.Fatal(err)
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return do(tb, req)
}

func do(tb testing.TB, req *http.Request) reply {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Fatalf("%s %s: Content-Type %q, body %s", req.Method, req.URL.Path, ct, b)
	}
	return decodeReply(tb, req.URL.Path, resp.StatusCode, b)
}

// decodeReply reads b, a UAPI envelope answered with HTTP status.
func decodeReply(tb testing.TB, path string, status int, b []byte) reply {
	tb.Helper()
	r := reply{HTTP: status}
	if err := json.Unmarshal(b, &r); err != nil {
		tb.Fatalf("%s: %v: %s", path, err, b)
	}
	json.Unmarshal(b, &r.raw)
	for _, k := range []string{"status", "errors", "messages", "warnings", "metadata", "data"} {
		if _, ok := r.raw[k]; !ok {
			tb.Errorf("%s: envelope has no %q: %s", path, k, b)
		}
	}
	return r
}

func (r reply) ok(tb testing.TB) reply {
	tb.Helper()
	if r.HTTP != http.StatusOK || r.Status != 1 || r.Errors != nil {
		tb.Fatalf("want success, have HTTP %d status %d errors %q", r.HTTP, r.Status, r.Errors)
	}
	return r
}

func (r reply) refused(tb testing.TB, http int, msg string) {
	tb.Helper()
	if r.HTTP != http || r.Status != 0 || len(r.Errors) != 1 || !strings.Contains(r.Errors[0], msg) || string(r.Data) != "null" {
		tb.Fatalf("want HTTP %d status 0 error %q, have HTTP %d status %d errors %q data %s", http, msg, r.HTTP, r.Status, r.Errors, r.Data)
	}
}

type createdData struct {
	Name          string `json:"name"`
	Token         string `json:"token"`
	CreateTime    int64  `json:"create_time"`
	ExpiresAt     *int64 `json:"expires_at"`
	HasFullAccess int    `json:"has_full_access"`
}

type listedData struct {
	Name          string `json:"name"`
	CreateTime    int64  `json:"create_time"`
	ExpiresAt     *int64 `json:"expires_at"`
	HasFullAccess int    `json:"has_full_access"`
	Status        string `json:"status"`
}

func TestCreateFullAccess(t *testing.T) {
	n := mustNode(t)
	auth := cpanel("bob", n.mustToken(t, "bob", "admin", nil))
	now := n.Clock.Now()
	inADay := fmt.Sprint(now.Add(24 * time.Hour).Unix())

	for _, tc := range []struct {
		name    string
		method  string
		params  url.Values
		expires *int64 // want, when it succeeds
		refusal string // want, when it is refused
	}{
		{name: "no expiry", method: "GET", params: url.Values{"name": {"deploy"}}},
		{name: "zero is no expiry", method: "POST", params: url.Values{"name": {"zero"}, "expires_at": {"0"}}},
		{name: "empty is no expiry", method: "GET", params: url.Values{"name": {"empty"}, "expires_at": {""}}},
		{name: "expiry", method: "POST", params: url.Values{"name": {"ci_2026"}, "expires_at": {inADay}}, expires: unix(now.Add(24 * time.Hour))},
		{name: "now is accepted", method: "GET", params: url.Values{"name": {"now"}, "expires_at": {fmt.Sprint(now.Unix())}}, expires: unix(now.Add(time.Second))},
		{name: "past", method: "GET", params: url.Values{"name": {"past"}, "expires_at": {fmt.Sprint(now.Unix() - 1)}}, refusal: "is in the past"},
		{name: "not a number", method: "GET", params: url.Values{"name": {"nan"}, "expires_at": {"tomorrow"}}, refusal: "“expires_at” value “tomorrow” is not a Unix time"},
		{name: "beyond 9999", method: "GET", params: url.Values{"name": {"far"}, "expires_at": {"270000000000"}}, refusal: "“expires_at” value “270000000000” is too far in the future"},
		{name: "duplicate", method: "GET", params: url.Values{"name": {"admin"}}, refusal: "A conflicting API token with the name “admin” already exists."},
		{name: "missing name", method: "GET", params: url.Values{}, refusal: "Provide the “name” parameter."},
		{name: "bad name", method: "POST", params: url.Values{"name": {"a.b"}}, refusal: "“a.b” is not a valid API token name"},
		{name: "long name", method: "GET", params: url.Values{"name": {strings.Repeat("x", 51)}}, refusal: "is not a valid API token name"},
		{name: "subject wildcard", method: "GET", params: url.Values{"name": {"*"}}, refusal: "is not a valid API token name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.uapi(t, tc.method, "create_full_access", auth, tc.params)
			if tc.refusal != "" {
				r.refused(t, http.StatusOK, tc.refusal)
				return
			}
			r.ok(t)
			var have createdData
			if err := json.Unmarshal(r.Data, &have); err != nil {
				t.Fatal(err)
			}
			if !events.IsSecretShaped(have.Token) || have.Name != tc.params.Get("name") || have.CreateTime != now.Unix() ||
				have.HasFullAccess != 1 || !eqPtr(have.ExpiresAt, tc.expires) {
				t.Fatalf("have %+v (expires %v), want name %s, created %d, expires %v", have, show(have.ExpiresAt), tc.params.Get("name"), now.Unix(), show(tc.expires))
			}
			// The new token works at once.
			n.uapi(t, "GET", "list", cpanel("bob", have.Token), nil).ok(t)
		})
	}
}

func show(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func eqPtr(a, b *int64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func TestList(t *testing.T) {
	n := mustNode(t)
	now := n.Clock.Now()
	bob := cpanel("bob", n.mustToken(t, "bob", "forever", nil))
	n.mustToken(t, "bob", "soon", unix(now.Add(2*24*time.Hour)))
	gone := n.mustToken(t, "bob", "gone", unix(now.Add(time.Hour)))
	n.mustToken(t, "bob", "later", unix(now.Add(30*24*time.Hour)))
	n.mustToken(t, "carol", "carols", nil)
	n.Clock.Advance(2 * time.Hour)

	var have []listedData
	if err := json.Unmarshal(n.uapi(t, "GET", "list", bob, nil).ok(t).Data, &have); err != nil {
		t.Fatal(err)
	}
	want := []listedData{
		{Name: "forever", Status: "active"},
		{Name: "soon", ExpiresAt: unix(now.Add(2 * 24 * time.Hour)), Status: "expiring"},
		{Name: "gone", ExpiresAt: unix(now.Add(time.Hour)), Status: "expired"},
		{Name: "later", ExpiresAt: unix(now.Add(30 * 24 * time.Hour)), Status: "active"},
	}
	if len(have) != len(want) {
		t.Fatalf("have %+v, want %+v", have, want)
	}
	for i := range want {
		want[i].CreateTime, want[i].HasFullAccess = now.Unix(), 1
		if have[i].Name != want[i].Name || have[i].Status != want[i].Status || have[i].CreateTime != want[i].CreateTime ||
			have[i].HasFullAccess != 1 || !eqPtr(have[i].ExpiresAt, want[i].ExpiresAt) {
			t.Errorf("row %d: have %+v, want %+v", i, have[i], want[i])
		}
	}

	// An account with no tokens lists an empty array, by password.
	r := n.uapi(t, "POST", "list", basic("carol", passwords["carol"]), nil).ok(t)
	var carols []listedData
	json.Unmarshal(r.Data, &carols)
	if len(carols) != 1 || carols[0].Name != "carols" {
		t.Fatalf("carol sees %s", r.Data)
	}
	// The expired token itself no longer opens the API.
	n.uapi(t, "GET", "list", cpanel("bob", gone), nil).refused(t, http.StatusUnauthorized, "Access denied")
}

func TestListEmpty(t *testing.T) {
	n := mustNode(t)
	r := n.uapi(t, "GET", "list", basic("carol", passwords["carol"]), nil).ok(t)
	if string(r.Data) != "[]" {
		t.Fatalf("data %s, want []", r.Data)
	}
}

// TestListAsCPanel: each row carries cPanel's features, an empty array for
// full access, beside has_full_access, and the metadata says transformed.
func TestListAsCPanel(t *testing.T) {
	n := mustNode(t)
	auth := cpanel("bob", n.mustToken(t, "bob", "admin", nil))
	r := n.uapi(t, "GET", "list", auth, nil).ok(t)
	if m := string(r.raw["metadata"]); m != `{"transformed":1}` {
		t.Errorf("metadata %s, want {\"transformed\":1}", m)
	}
	var rows []map[string]json.RawMessage
	if err := json.Unmarshal(r.Data, &rows); err != nil || len(rows) != 1 {
		t.Fatalf("data %s: %v", r.Data, err)
	}
	if f, full := string(rows[0]["features"]), string(rows[0]["has_full_access"]); f != "[]" || full != "1" {
		t.Errorf("features %s, has_full_access %s: want [] and 1: %s", f, full, r.Data)
	}
	// Other functions' metadata stays empty.
	if m := string(n.uapi(t, "GET", "rename", auth, url.Values{"name": {"admin"}, "new_name": {"admin2"}}).ok(t).raw["metadata"]); m != "{}" {
		t.Errorf("rename's metadata %s", m)
	}
}

func TestRename(t *testing.T) {
	n := mustNode(t)
	auth := cpanel("bob", n.mustToken(t, "bob", "admin", nil))
	n.mustToken(t, "bob", "deploy", nil)
	n.mustToken(t, "carol", "carols", nil)

	for _, tc := range []struct {
		name    string
		params  url.Values
		refusal string
	}{
		{"same name", url.Values{"name": {"deploy"}, "new_name": {"deploy"}}, "“new_name” must be a different value from “name”."},
		{"unknown", url.Values{"name": {"nope"}, "new_name": {"x"}}, "The API token “nope” does not exist."},
		{"another account's", url.Values{"name": {"carols"}, "new_name": {"mine"}}, "The API token “carols” does not exist."},
		{"taken", url.Values{"name": {"deploy"}, "new_name": {"admin"}}, "A conflicting API token with the name “admin” already exists."},
		{"missing new_name", url.Values{"name": {"deploy"}}, "Provide the “new_name” parameter."},
		{"bad new_name", url.Values{"name": {"deploy"}, "new_name": {"de ploy"}}, "“de ploy” is not a valid API token name"},
		{"renamed", url.Values{"name": {"deploy"}, "new_name": {"deploy-2"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.uapi(t, "POST", "rename", auth, tc.params)
			if tc.refusal != "" {
				r.refused(t, http.StatusOK, tc.refusal)
				return
			}
			if string(r.ok(t).Data) != "null" {
				t.Fatalf("data %s, want null", r.Data)
			}
		})
	}
	if have, want := n.names("bob"), []string{"admin", "deploy-2"}; !slices.Equal(have, want) {
		t.Fatalf("bob's tokens %v, want %v", have, want)
	}
	if have := n.names("carol"); !slices.Equal(have, []string{"carols"}) {
		t.Fatalf("carol's tokens %v", have)
	}
}

// TestRevoke: as cPanel documents Tokens::revoke, a name that does not
// exist counts as revoked, so a script that revokes twice succeeds; the
// names that exist are revoked together; a malformed name refuses the call.
func TestRevoke(t *testing.T) {
	n := mustNode(t)
	admin := n.mustToken(t, "bob", "admin", nil)
	auth := cpanel("bob", admin)
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		n.mustToken(t, "bob", name, nil)
	}
	n.mustToken(t, "carol", "carols", nil)

	n.uapi(t, "GET", "revoke", auth, url.Values{}).refused(t, http.StatusOK, "Provide the “name” parameter.")
	n.uapi(t, "GET", "revoke", auth, url.Values{"name-0": {"a"}, "name-1": {"a>"}}).refused(t, http.StatusOK, "is not a valid API token name")
	if have, want := n.names("bob"), []string{"admin", "a", "b", "c", "d", "e"}; !slices.Equal(have, want) {
		t.Fatalf("after refusals: %v, want %v", have, want)
	}

	for _, tc := range []struct {
		name   string
		method string
		params url.Values
		want   []string // bob's tokens after
	}{
		{"one", "POST", url.Values{"name": {"a"}}, []string{"admin", "b", "c", "d", "e"}},
		{"the same again", "GET", url.Values{"name": {"a"}}, []string{"admin", "b", "c", "d", "e"}},
		{"never existed", "GET", url.Values{"name": {"zz"}}, []string{"admin", "b", "c", "d", "e"}},
		{"several, numbered", "POST", url.Values{"name-0": {"b"}, "name-1": {"c"}}, []string{"admin", "d", "e"}},
		{"unknown among them", "GET", url.Values{"name-1": {"d"}, "name-2": {"zz"}, "name-3": {"b"}}, []string{"admin", "e"}},
		{"another account's", "GET", url.Values{"name": {"carols"}}, []string{"admin", "e"}},
		{"named twice", "GET", url.Values{"name": {"e", "e"}}, []string{"admin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := n.uapi(t, tc.method, "revoke", auth, tc.params).ok(t); string(r.Data) != "1" {
				t.Fatalf("data %s, want 1", r.Data)
			}
			if have := n.names("bob"); !slices.Equal(have, tc.want) {
				t.Fatalf("bob's tokens %v, want %v", have, tc.want)
			}
		})
	}
	if have := n.names("carol"); !slices.Equal(have, []string{"carols"}) {
		t.Fatalf("carol's tokens %v", have)
	}
	// Only the names that existed were revoked: one event each.
	var revoked []string
	for _, e := range n.events(t, "bob") {
		if d, ok := e.Data.(events.TokenRevoked); ok {
			revoked = append(revoked, d.Name)
		}
	}
	if want := []string{"a", "b", "c", "d", "e"}; !slices.Equal(revoked, want) {
		t.Fatalf("revoke events for %v, want %v", revoked, want)
	}
	// A token may revoke itself, and is then refused.
	n.uapi(t, "GET", "revoke", auth, url.Values{"name": {"admin"}}).ok(t)
	n.uapi(t, "GET", "list", auth, nil).refused(t, http.StatusUnauthorized, "Access denied")
}

// laggingTable is a node's table that has not yet applied the latest
// change of another node: it lists the rows it had when frozen.
type laggingTable struct {
	*projections.Table
	mu   sync.Mutex
	rows map[string][]projections.Row // account -> rows, while frozen
}

func (l *laggingTable) freeze(accounts ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rows = map[string][]projections.Row{}
	for _, a := range accounts {
		l.rows[a] = l.Table.List(a, time.Now())
	}
}

func (l *laggingTable) List(account string, now time.Time) []projections.Row {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rows, ok := l.rows[account]; ok {
		return rows
	}
	return l.Table.List(account, now)
}

// TestRevokeRacesAnotherNode: a token that another node revoked a moment
// ago, and that this node's table still lists, counts as revoked too; the
// others named are revoked with no error, though the table never catches
// up: the ledger's refusal names the tokens it no longer has.
func TestRevokeRacesAnotherNode(t *testing.T) {
	var lag *laggingTable
	n := mustNode(t, func(tb testing.TB, nd *nodetest.Node, cfg *httpapi.Config) {
		lag = &laggingTable{Table: nd.Table}
		cfg.Table = lag
	})
	auth := basic("bob", passwords["bob"])
	n.mustToken(t, "bob", "a", nil)
	n.mustToken(t, "bob", "b", nil)
	lag.freeze("bob")
	if err := n.Ledger.Revoke(context.Background(), commands.Revoke{Account: "bob", Names: []string{"a"},
		Actor: events.Actor{Kind: events.ActorOperator, Name: "elsewhere"}}); err != nil {
		t.Fatal(err)
	}
	n.uapi(t, "GET", "revoke", auth, url.Values{"name-0": {"a"}, "name-1": {"b"}}).ok(t)
	if have := n.names("bob"); len(have) != 0 {
		t.Fatalf("bob's tokens %v", have)
	}
}

func TestAuthentication(t *testing.T) {
	n := mustNode(t)
	now := n.Clock.Now()
	good := n.mustToken(t, "bob", "good", nil)
	expiring := n.mustToken(t, "bob", "expiring", unix(now.Add(time.Minute)))
	revoked := n.mustToken(t, "bob", "revoked", nil)
	carols := n.mustToken(t, "carol", "carols", nil)
	n.uapi(t, "GET", "revoke", cpanel("bob", good), url.Values{"name": {"revoked"}}).ok(t)
	n.uapi(t, "GET", "list", cpanel("bob", expiring), nil).ok(t)
	n.Clock.Advance(time.Minute)

	for _, tc := range []struct {
		name, auth string
	}{
		{"none", ""},
		{"unknown token", cpanel("bob", strings.Repeat("A", 32))},
		{"malformed token", cpanel("bob", "secret")},
		{"another account's token", cpanel("bob", carols)},
		{"token with no account", "cpanel " + good},
		{"bad account", cpanel("Bob", good)},
		{"expired token", cpanel("bob", expiring)},
		{"revoked token", cpanel("bob", revoked)},
		{"wrong password", basic("bob", "guess")},
		{"another account's password", basic("bob", passwords["carol"])},
		{"unknown account", basic("dave", "x")},
		{"bearer", "Bearer " + good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.uapi(t, "GET", "list", tc.auth, nil)
			r.refused(t, http.StatusUnauthorized, "Access denied")
			// Nothing is changed without a credential, and the function is not even looked at.
			n.uapi(t, "GET", "create_full_access", tc.auth, url.Values{"name": {"x"}}).refused(t, http.StatusUnauthorized, "Access denied")
			n.uapi(t, "GET", "no_such_function", tc.auth, nil).refused(t, http.StatusUnauthorized, "Access denied")
		})
	}
	if have := n.names("bob"); !slices.Equal(have, []string{"good", "expiring"}) {
		t.Fatalf("bob's tokens %v", have)
	}
}

// TestActor checks that every change records who made it and from where.
func TestActor(t *testing.T) {
	n := mustNode(t)
	secret := n.mustToken(t, "bob", "admin", nil)
	tokenID := n.Table.Validate(secret, "bob", n.Clock.Now()).TokenID.String()
	n.uapi(t, "GET", "create_full_access", cpanel("bob", secret), url.Values{"name": {"by_token"}}).ok(t)
	n.uapi(t, "POST", "rename", basic("bob", passwords["bob"]), url.Values{"name": {"by_token"}, "new_name": {"by_password"}}).ok(t)
	n.uapi(t, "GET", "revoke", cpanel("bob", secret), url.Values{"name": {"by_password"}}).ok(t)

	evs := n.events(t, "bob")
	want := []events.Actor{
		{Kind: "operator", Name: "test"},
		{Kind: "token", Name: "bob", TokenID: tokenID, Remote: "127.0.0.1"},
		{Kind: "account", Name: "bob", Remote: "127.0.0.1"},
		{Kind: "token", Name: "bob", TokenID: tokenID, Remote: "127.0.0.1"},
	}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d", len(evs), len(want))
	}
	for i, e := range evs {
		if e.Actor != want[i] {
			t.Errorf("event %d (%s): actor %+v, want %+v", i, e.Type(), e.Actor, want[i])
		}
	}
}

func TestTransport(t *testing.T) {
	n := mustNode(t)
	auth := cpanel("bob", n.mustToken(t, "bob", "admin", nil))

	t.Run("unknown function", func(t *testing.T) {
		n.uapi(t, "GET", "create", auth, nil).refused(t, http.StatusNotFound, "The function “create” does not exist in the module “Tokens”.")
	})
	t.Run("unknown module", func(t *testing.T) {
		req, _ := http.NewRequest("GET", n.URL+"/execute/Email/list_pops", nil)
		req.Header.Set("Authorization", auth)
		do(t, req).refused(t, http.StatusNotFound, "does not exist in the module “Email”")
	})
	t.Run("body over 64 KiB", func(t *testing.T) {
		body := "name=big&pad=" + strings.Repeat("x", 64<<10)
		req, _ := http.NewRequest("POST", n.URL+"/execute/Tokens/create_full_access", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		do(t, req).refused(t, http.StatusRequestEntityTooLarge, "larger than 64 KiB")
	})
	t.Run("chunked body over 64 KiB", func(t *testing.T) {
		body := io.MultiReader(strings.NewReader("name=big&pad="), strings.NewReader(strings.Repeat("x", 64<<10)))
		req, _ := http.NewRequest("POST", n.URL+"/execute/Tokens/create_full_access", body)
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		do(t, req).refused(t, http.StatusRequestEntityTooLarge, "larger than 64 KiB")
	})
	t.Run("method", func(t *testing.T) {
		n.uapi(t, "DELETE", "revoke", auth, nil).refused(t, http.StatusMethodNotAllowed, "GET or POST")
	})
	t.Run("from another site's page", func(t *testing.T) {
		req, _ := http.NewRequest("GET", n.URL+"/execute/Tokens/revoke?name=admin", nil)
		req.Header.Set("Authorization", basic("bob", passwords["bob"]))
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		do(t, req).refused(t, http.StatusForbidden, "another site")
	})
	t.Run("query and form together", func(t *testing.T) {
		req, _ := http.NewRequest("POST", n.URL+"/execute/Tokens/rename?name=admin", strings.NewReader("new_name=admin2"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		do(t, req).ok(t)
	})
	if have := n.names("bob"); !slices.Equal(have, []string{"admin2"}) {
		t.Fatalf("bob's tokens %v", have)
	}
}

func TestMetrics(t *testing.T) {
	n := mustNode(t)
	auth := cpanel("bob", n.mustToken(t, "bob", "admin", nil))
	n.uapi(t, "GET", "list", auth, nil).ok(t)
	n.uapi(t, "GET", "rename", auth, url.Values{"name": {"nope"}, "new_name": {"x"}})
	resp, err := http.Get(n.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		"tokenledger_ready 1\n",
		`tokenledger_uapi_calls_total{code="200",function="list"} 1` + "\n",
		`tokenledger_uapi_calls_total{code="200",function="rename"} 1` + "\n",
		`tokenledger_panel_logins_total{result="ok"} 0` + "\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics has no %q:\n%s", want, b)
		}
	}
}
