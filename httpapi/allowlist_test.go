package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// loopback is where every test request comes from.
var loopback = netip.MustParseAddr("127.0.0.1")

// listedMore is a list row with the fields that are not cPanel's.
type listedMore struct {
	Name       string          `json:"name"`
	LastUsed   *int64          `json:"last_used"`
	AllowedIPs []string        `json:"allowed_ips"`
	raw        json.RawMessage `json:"-"`
}

func (n *node) listMore(tb testing.TB, auth string) map[string]listedMore {
	tb.Helper()
	r := n.uapi(tb, "GET", "list", auth, nil).ok(tb)
	var raws []json.RawMessage
	if err := json.Unmarshal(r.Data, &raws); err != nil {
		tb.Fatal(err)
	}
	out := make(map[string]listedMore)
	for _, raw := range raws {
		var l listedMore
		json.Unmarshal(raw, &l)
		l.raw = raw
		out[l.Name] = l
	}
	return out
}

// TestAllowList: create_full_access takes WHM's whitelist_ip, and a token
// with an allow-list works only from the addresses on it.
func TestAllowList(t *testing.T) {
	n := mustNode(t)
	auth := cpanel("bob", n.mustToken(t, "bob", "admin", nil))

	r := n.uapi(t, "GET", "create_full_access", auth, url.Values{"name": {"here"}, "whitelist_ip-1": {"::1"}, "whitelist_ip-0": {"127.0.0.0/8"}}).ok(t)
	var here createdData
	json.Unmarshal(r.Data, &here)
	r = n.uapi(t, "POST", "create_full_access", auth, url.Values{"name": {"elsewhere"}, "whitelist_ip": {"10.0.0.0/8", "192.0.2.7"}}).ok(t)
	var elsewhere createdData
	json.Unmarshal(r.Data, &elsewhere)

	n.uapi(t, "GET", "list", cpanel("bob", here.Token), nil).ok(t)
	n.uapi(t, "GET", "list", cpanel("bob", elsewhere.Token), nil).refused(t, http.StatusUnauthorized, "Access denied")
	if res := n.Table.ValidateFrom(elsewhere.Token, "bob", netip.MustParseAddr("10.1.2.3"), n.Clock.Now()); !res.Valid {
		t.Fatalf("from an allowed address: %+v", res)
	}
	hasLines(t, n.metricsText(t), `tokenledger_auth_failures_total{kind="token"} 1`)

	rows := n.listMore(t, auth)
	if have := rows["here"].AllowedIPs; !slices.Equal(have, []string{"127.0.0.0/8", "::1/128"}) {
		t.Errorf("here's allowed_ips %v", have)
	}
	if have := rows["elsewhere"].AllowedIPs; !slices.Equal(have, []string{"10.0.0.0/8", "192.0.2.7/32"}) {
		t.Errorf("elsewhere's allowed_ips %v", have)
	}
	if strings.Contains(string(rows["admin"].raw), "allowed_ips") {
		t.Errorf("a token without an allow-list lists one: %s", rows["admin"].raw)
	}

	for _, tc := range []struct {
		name   string
		params url.Values
		msg    string
	}{
		{"not an address", url.Values{"whitelist_ip": {"example.com"}}, "The “whitelist_ip” value “example.com” is not an IP address or a CIDR range."},
		{"bad range", url.Values{"whitelist_ip-0": {"10.0.0.0/33"}}, "“10.0.0.0/33” is not an IP address"},
		{"zone", url.Values{"whitelist_ip": {"fe80::1%eth0"}}, "is not an IP address"},
		{"too many", url.Values{"whitelist_ip": slices.Repeat([]string{"10.0.0.1"}, 101)}, "at most 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.params.Set("name", "bad")
			n.uapi(t, "POST", "create_full_access", auth, tc.params).refused(t, http.StatusOK, tc.msg)
		})
	}
	if have := n.names("bob"); !slices.Equal(have, []string{"admin", "here", "elsewhere"}) {
		t.Fatalf("bob's tokens %v", have)
	}
}

// TestLastUsed: a token accepted over HTTP is recorded as used, and list and
// the panel show when.
func TestLastUsed(t *testing.T) {
	n := mustNode(t, withUses)
	secret := n.mustToken(t, "bob", "script", nil)
	n.mustToken(t, "bob", "idle", nil)

	b := newBrowser(t, n.URL, nil)
	b.login("bob", passwords["bob"])
	if p := b.do("GET", "/", nil); !strings.Contains(p.body, "<th>Last used</th>") || !strings.Contains(p.body, `<td class="last-used">Never</td>`) {
		t.Fatalf("panel before any use:\n%s", p.body)
	}
	rows := n.listMore(t, basic("bob", passwords["bob"])) // a password is no token use
	if rows["script"].LastUsed != nil || !strings.Contains(string(rows["script"].raw), `"last_used":null`) {
		t.Fatalf("before use: %s", rows["script"].raw)
	}

	used := n.Clock.Now()
	n.uapi(t, "GET", "list", cpanel("bob", secret), nil).ok(t)
	waitFor(t, "the use to be recorded", func() bool { return n.Table.List("bob", n.Clock.Now())[0].LastUsed != nil })

	rows = n.listMore(t, basic("bob", passwords["bob"]))
	if l := rows["script"].LastUsed; l == nil || *l != used.Unix() {
		t.Fatalf("last_used %v, want %d", l, used.Unix())
	}
	if rows["idle"].LastUsed != nil {
		t.Fatalf("idle: %s", rows["idle"].raw)
	}
	shown := used.In(n.Location).Format("Jan 2, 2006 3:04:05 PM")
	if p := b.do("GET", "/", nil); !strings.Contains(p.body, `<td class="last-used" title="from 127.0.0.1">`+shown+`</td>`) {
		t.Fatalf("panel after use, want %q:\n%s", shown, p.body)
	}
	if p := b.do("GET", "/manage?name=script", nil); !strings.Contains(p.body, shown+"</span> from 127.0.0.1") {
		t.Fatalf("manage page after use:\n%s", p.body)
	}
}

func TestTokensMetric(t *testing.T) {
	n := mustNode(t)
	now := n.Clock.Now()
	n.mustToken(t, "bob", "a", nil)
	n.mustToken(t, "bob", "b", unix(now.Add(time.Hour)))
	n.mustToken(t, "carol", "c", unix(now.Add(3*24*time.Hour)))
	hasLines(t, n.metricsText(t),
		"# TYPE tokenledger_tokens gauge",
		`tokenledger_tokens{status="active"} 1`,
		`tokenledger_tokens{status="expiring"} 2`,
		`tokenledger_tokens{status="expired"} 0`)
	n.Clock.Advance(2 * time.Hour)
	hasLines(t, n.metricsText(t),
		`tokenledger_tokens{status="active"} 1`,
		`tokenledger_tokens{status="expiring"} 1`,
		`tokenledger_tokens{status="expired"} 1`)
}
