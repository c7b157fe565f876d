package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/projections"
)

// fuzzSecret is the one token the fuzzed handler's table accepts, for bob.
var fuzzSecret = strings.Repeat("A", 32)

// fuzzNode stands in for the ledger and the table, so that the fuzzer spends
// its time in the HTTP parsing, not in NATS. It fails the test when the HTTP
// side passes on a command that the command's own checks refuse: the
// transport's checks must be at least as strict.
type fuzzNode struct {
	t   *testing.T
	now time.Time
}

func (f fuzzNode) refused(what string, err error) error {
	if err != nil {
		f.t.Errorf("the HTTP side passed on a %s that its checks refuse: %v", what, err)
	}
	return err
}

func (f fuzzNode) Create(ctx context.Context, c commands.Create) (commands.Created, error) {
	if err := f.refused("create", c.Check(f.now)); err != nil {
		return commands.Created{}, err
	}
	return commands.Created{Secret: strings.Repeat("B", 32), Event: events.Event{At: f.now, Account: c.Account,
		Data: events.TokenCreated{Name: c.Name, ExpiresAt: c.ExpiresAt, FullAccess: len(c.Features) == 0, Features: c.Features, ReadOnly: c.ReadOnly}},
		Token: commands.Token{Name: c.Name, Created: f.now, ExpiresAt: c.ExpiresAt, Features: c.Features, ReadOnly: c.ReadOnly}}, nil
}

func (f fuzzNode) SetFeatures(ctx context.Context, c commands.SetFeatures) error {
	return f.refused("set-features", c.Check())
}

func (f fuzzNode) Rename(ctx context.Context, c commands.Rename) error {
	return f.refused("rename", c.Check())
}

func (f fuzzNode) Revoke(ctx context.Context, c commands.Revoke) error {
	return f.refused("revoke", c.Check())
}

func (f fuzzNode) Rotate(ctx context.Context, c commands.Rotate) (commands.Created, error) {
	if err := f.refused("rotate", c.Check()); err != nil {
		return commands.Created{}, err
	}
	return commands.Created{Secret: strings.Repeat("C", 32), Event: events.Event{At: f.now, Account: c.Account,
		Data: events.TokenRotated{Name: c.Name}}, Token: commands.Token{Name: c.Name, Created: f.now}}, nil
}

func (f fuzzNode) List(account string, now time.Time) []projections.Row {
	return []projections.Row{{Name: "deploy", Created: f.now, Status: projections.Active, FullAccess: true}}
}

func (f fuzzNode) ValidateFor(secret, account string, ip netip.Addr, need projections.Need, now func() time.Time) projections.Result {
	if secret == fuzzSecret && account == "bob" {
		r := projections.Result{Valid: true, Account: "bob", Status: projections.Active}
		r.SetName("admin")
		return r
	}
	return projections.Result{Reason: projections.ReasonUnknown}
}

func (f fuzzNode) CountByStatus(now time.Time) map[string]int { return map[string]int{} }

var fuzzFunctions = []string{fnCreate, fnList, fnRename, fnRevoke, fnRotate, fnCreateLimited, fnSetFeatures, "nope"}

// FuzzParams sends the UAPI any query string and form body, on /execute/
// or (fn's high bit set) through /json-api/cpanel: the reply is always one
// well-formed UAPI envelope (wrapped, on json-api) with a status that the
// parameters explain, and whatever reaches the ledger passes the ledger's
// own checks. It also checks the parameter readers (numbered lists, grace,
// expires_at).
func FuzzParams(f *testing.F) {
	f.Add(uint8(0), "name=deploy&expires_at=0", "", "")
	f.Add(uint8(0), "name=web", "whitelist_ip-0=10.0.0.0/8&whitelist_ip-1=::1&whitelist_ip=192.0.2.1", "application/x-www-form-urlencoded")
	f.Add(uint8(0), "name=x&expires_at=99999999999999999999", "", "")
	f.Add(uint8(0), "name=x&whitelist_ip=fe80::1%25eth0", "", "")
	f.Add(uint8(2), "name=a&new_name=a", "", "")
	f.Add(uint8(3), "name-1=b&name-0=a&name=c&name--1=d&name-x=e", "", "")
	f.Add(uint8(3), "", "--X\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nold\r\n--X--\r\n", "multipart/form-data; boundary=X")
	f.Add(uint8(4), "name=deploy&grace=3600", "", "")
	f.Add(uint8(4), "name=deploy&grace=-1", "grace=1e9", "application/x-www-form-urlencoded")
	f.Add(uint8(1), "%zz&;;==", "%", "application/x-www-form-urlencoded")
	f.Add(uint8(0x83), "name=a&cpanel_jsonapi_func=nope", "", "")
	f.Add(uint8(5), "name=a&feature-1=email&feature-2=ftp&readonly=1", "", "")
	f.Add(uint8(6), "name=deploy&feature=email&feature-x=dns&full_access=1", "", "")
	f.Add(uint8(0), "name=a&readonly=2&acl-1=all", "", "")
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, fn uint8, query, body, contentType string) {
		name := fuzzFunctions[int(fn)%len(fuzzFunctions)]
		node := fuzzNode{t: t, now: now}
		h := New(Config{Ledger: node, Table: node, Now: func() time.Time { return now }, Location: time.UTC})
		jsonAPI := fn&0x80 != 0
		r := httptest.NewRequest("POST", "/execute/Tokens/"+name, strings.NewReader(body))
		r.URL.RawQuery = query
		if jsonAPI {
			r.URL.Path = "/json-api/cpanel"
			r.URL.RawQuery = "cpanel_jsonapi_apiversion=3&cpanel_jsonapi_module=Tokens&cpanel_jsonapi_func=" + name + "&" + query
		}
		r.RequestURI = r.URL.RequestURI()
		r.Header.Set("Authorization", "cpanel bob:"+fuzzSecret)
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		var e map[string]json.RawMessage
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
			t.Fatalf("HTTP %d, not JSON: %v: %q", w.Code, err, w.Body.String())
		}
		if jsonAPI {
			if string(e["apiversion"]) != "3" || e["func"] == nil || e["module"] == nil {
				t.Fatalf("not cPanel's json-api wrapper: %s", w.Body.String())
			}
			if err := json.Unmarshal(e["result"], &e); err != nil {
				t.Fatalf("the wrapper's result is no envelope: %v: %s", err, w.Body.String())
			}
		}
		for _, k := range []string{"status", "errors", "messages", "warnings", "metadata", "data"} {
			if _, ok := e[k]; !ok {
				t.Fatalf("the envelope has no %q: %s", k, w.Body.String())
			}
		}
		status := string(e["status"])
		switch w.Code {
		case http.StatusOK:
			if status != "1" && status != "0" {
				t.Fatalf("status %s", status)
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestURITooLong, http.StatusRequestEntityTooLarge:
			if status != "0" {
				t.Fatalf("HTTP %d with status %s", w.Code, status)
			}
		case http.StatusForbidden: // json-api's cpanel_jsonapi_user, another account
			if !jsonAPI || status != "0" || !strings.Contains(query+body, "cpanel_jsonapi_user") {
				t.Fatalf("HTTP %d: %s", w.Code, w.Body.String())
			}
		default:
			t.Fatalf("HTTP %d: %s", w.Code, w.Body.String())
		}
		if w.Code == http.StatusNotFound && name != "nope" && !jsonAPI {
			t.Fatalf("a known function is not found: %s", w.Body.String())
		}

		// The readers of parameters, on the same input.
		form, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		names := numbered(form, "name")
		want := len(form["name"])
		for k, vs := range form {
			if num, ok := strings.CutPrefix(k, "name-"); ok {
				if n, err := strconv.Atoi(num); err == nil && n >= 0 {
					want += len(vs)
				}
			}
		}
		if len(names) != want {
			t.Fatalf("numbered: %d names of %d", len(names), want)
		}
		if g, err := parseGrace(form.Get("grace")); err == nil && (g < 0 || g > maxGrace) {
			t.Fatalf("grace %v accepted", g)
		}
		if at, err := parseExpiresAt(form.Get("expires_at"), now, time.UTC); err == nil && at != nil && *at <= now.Unix() {
			t.Fatalf("expires_at %d accepted at %d", *at, now.Unix())
		}
		if features, err := parseFeatures(form); err == nil {
			if _, err := events.ParseFeatures(features); err != nil {
				t.Fatalf("features %q accepted: %v", features, err)
			}
		}
		if ips, err := parseWhitelist(form); err == nil {
			if err := events.CheckPrefixes(ips); err != nil {
				t.Fatalf("whitelist %q accepted: %v", ips, err)
			}
			for _, p := range ips {
				if back, err := events.ParsePrefix(p.String()); err != nil || back != p {
					t.Fatalf("whitelist entry %s reads back as %s, %v", p, back, err)
				}
			}
		}
	})
}
