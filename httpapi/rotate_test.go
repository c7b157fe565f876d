package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"tokenledger/events"
)

func TestRotate(t *testing.T) {
	n := mustNode(t)
	now := n.Clock.Now()
	expires := unix(now.Add(30 * 24 * time.Hour))
	admin := n.mustToken(t, "bob", "admin", nil)
	old := n.mustToken(t, "bob", "deploy", expires)
	auth := cpanel("bob", admin)
	created := n.Table.List("bob", now)[1].Created.Unix()
	tokenID := n.Table.ValidateFrom(old, "bob", loopback, now).TokenID
	n.Clock.Advance(time.Minute)

	// The new secret is shown once; the old one stops working at once.
	r := n.uapi(t, "POST", "rotate", auth, url.Values{"name": {"deploy"}}).ok(t)
	var d createdData
	if err := json.Unmarshal(r.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Name != "deploy" || !events.IsSecretShaped(d.Token) || d.Token == old || d.CreateTime != created ||
		!eqPtr(d.ExpiresAt, expires) || d.HasFullAccess != 1 {
		t.Fatalf("rotate data %+v", d)
	}
	if res := n.Table.ValidateFrom(d.Token, "bob", loopback, n.Clock.Now()); !res.Valid || res.TokenID != tokenID || res.Name() != "deploy" {
		t.Fatalf("new secret: %+v", res)
	}
	n.uapi(t, "GET", "list", cpanel("bob", old), nil).refused(t, http.StatusUnauthorized, "Access denied")
	n.uapi(t, "GET", "list", cpanel("bob", d.Token), nil).ok(t)

	// With a grace period the old secret works until it ends.
	r = n.uapi(t, "GET", "rotate", auth, url.Values{"name": {"deploy"}, "grace": {"3600"}}).ok(t)
	var d2 createdData
	json.Unmarshal(r.Data, &d2)
	n.uapi(t, "GET", "list", cpanel("bob", d.Token), nil).ok(t)
	n.uapi(t, "GET", "list", cpanel("bob", d2.Token), nil).ok(t)
	n.Clock.Advance(time.Hour)
	n.uapi(t, "GET", "list", cpanel("bob", d.Token), nil).refused(t, http.StatusUnauthorized, "Access denied")
	n.uapi(t, "GET", "list", cpanel("bob", d2.Token), nil).ok(t)

	for _, tc := range []struct {
		name   string
		params url.Values
		msg    string
	}{
		{"no name", nil, "Provide the “name” parameter."},
		{"unknown", url.Values{"name": {"nope"}}, "The API token “nope” does not exist."},
		{"bad name", url.Values{"name": {"a b"}}, "is not a valid API token name"},
		{"negative grace", url.Values{"name": {"deploy"}, "grace": {"-1"}}, "The “grace” value “-1” is not a number of seconds"},
		{"grace over a year", url.Values{"name": {"deploy"}, "grace": {"99999999"}}, "is not a number of seconds"},
		{"grace not a number", url.Values{"name": {"deploy"}, "grace": {"1h"}}, "is not a number of seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n.uapi(t, "GET", "rotate", auth, tc.params).refused(t, http.StatusOK, tc.msg)
		})
	}
	n.uapi(t, "GET", "list", cpanel("bob", d2.Token), nil).ok(t)
	// Another account's token is not there to rotate.
	n.mustToken(t, "carol", "carols", nil)
	n.uapi(t, "GET", "rotate", auth, url.Values{"name": {"carols"}}).refused(t, http.StatusOK, "The API token “carols” does not exist.")

	evs := n.events(t, "bob")
	if e := evs[2]; e.Type() != events.TypeRotated || e.TokenID != tokenID || e.Actor.Kind != "token" || e.Actor.Remote != "127.0.0.1" {
		t.Fatalf("rotate event %s %+v", e.Type(), e.Actor)
	}
}

var secretField = regexp.MustCompile(`id="secret" value="([A-Z0-9]{32})"`)

// TestPanelRotate: the Manage page's Rotate asks first, then shows the new
// secret once, as create does.
func TestPanelRotate(t *testing.T) {
	n := mustNode(t)
	old := n.mustToken(t, "bob", "deploy", nil)
	b := newBrowser(t, n.URL, nil)
	b.login("bob", passwords["bob"])
	csrf := b.csrf()

	p := b.do("GET", "/manage?name=deploy", nil)
	if !strings.Contains(p.body, `id="rotate"`) || !strings.Contains(p.body, `id="rotate-confirm"`) {
		t.Fatalf("manage page has no Rotate:\n%s", p.body)
	}
	// Without the confirmation (a browser without JavaScript) it asks.
	p = b.do("POST", "/rotate", url.Values{"csrf": {csrf}, "name": {"deploy"}})
	if !strings.Contains(p.body, `id="confirm-rotate-yes"`) || !n.Table.ValidateFrom(old, "bob", loopback, n.Clock.Now()).Valid {
		t.Fatalf("unconfirmed rotate: %s", p.body)
	}
	if p := b.do("POST", "/rotate", url.Values{"name": {"deploy"}, "confirmed": {"1"}}); p.status != http.StatusForbidden {
		t.Fatalf("rotate without CSRF token: %d", p.status)
	}

	// The rotation redirects to the page that shows the new secret once
	// (post/redirect/get), so that a reload does not rotate again.
	p = b.do("POST", "/rotate", url.Values{"csrf": {csrf}, "name": {"deploy"}, "grace": {"0"}, "confirmed": {"1"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/secret" {
		t.Fatalf("rotate: %d %v", p.status, p.header)
	}
	p = b.do("GET", "/secret", nil)
	m := secretField.FindStringSubmatch(p.body)
	if m == nil || !strings.Contains(p.body, "Yes, I Saved My Token") || !strings.Contains(p.body, `id="copy"`) ||
		!strings.Contains(p.body, "Its old secret no longer works.") || p.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate: %d\n%s", p.status, p.body)
	}
	if res := n.Table.ValidateFrom(m[1], "bob", loopback, n.Clock.Now()); !res.Valid || res.Name() != "deploy" {
		t.Fatalf("new secret: %+v", res)
	}
	if n.Table.ValidateFrom(old, "bob", loopback, n.Clock.Now()).Valid {
		t.Fatal("the old secret still works")
	}
	if p := b.do("GET", "/saved", nil); p.header.Get("Location") != "/" {
		t.Fatalf("saved: %v", p.header)
	}
	if strings.Contains(b.do("GET", "/secret", nil).body, m[1]) || strings.Contains(b.do("GET", "/", nil).body, m[1]) ||
		strings.Contains(b.do("GET", "/manage?name=deploy", nil).body, m[1]) {
		t.Fatal("the new secret is shown again")
	}

	// With a grace period the page says until when the old one works.
	b.do("POST", "/rotate", url.Values{"csrf": {csrf}, "name": {"deploy"}, "grace": {"86400"}, "confirmed": {"1"}})
	p = b.do("GET", "/secret", nil)
	if !strings.Contains(p.body, "Its old secret keeps working until") || !n.Table.ValidateFrom(m[1], "bob", loopback, n.Clock.Now()).Valid {
		t.Fatalf("rotate with grace: %s", p.body)
	}
	// An unknown token is said so on the list.
	b.do("POST", "/rotate", url.Values{"csrf": {csrf}, "name": {"nope"}, "confirmed": {"1"}})
	if !strings.Contains(b.do("GET", "/", nil).body, "The API token “nope” does not exist.") {
		t.Fatal("no message for an unknown token")
	}
}
