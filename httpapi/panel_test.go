package httpapi_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// browser is a plain HTTP client with cookies: the panel as a browser
// without JavaScript sees it.
type browser struct {
	tb     testing.TB
	base   string
	client *http.Client
}

func newBrowser(tb testing.TB, base string, client *http.Client) *browser {
	jar, _ := cookiejar.New(nil)
	if client == nil {
		client = &http.Client{}
	}
	client.Jar = jar
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{tb: tb, base: base, client: client}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values, header ...string) page {
	b.tb.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.tb.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.tb.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(out)}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) csrf() string {
	b.tb.Helper()
	m := csrfField.FindStringSubmatch(b.do("GET", "/", nil).body)
	if m == nil {
		b.tb.Fatal("no CSRF token on the panel")
	}
	return m[1]
}

// login fills in the login form as a person would: it loads the page, which
// gives the form its CSRF token, and sends it.
func (b *browser) login(account, password string) page {
	b.tb.Helper()
	return b.do("POST", "/login", url.Values{"account": {account}, "password": {password}, "csrf": {b.csrf()}})
}

func sessionCookie(p page) *http.Cookie {
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == "tokenledger_session" {
			return c
		}
	}
	return nil
}

func TestPanelLogin(t *testing.T) {
	n := mustNode(t)
	b := newBrowser(t, n.URL, nil)
	if p := b.do("GET", "/", nil); p.status != 200 || !strings.Contains(p.body, `id="login-password"`) {
		t.Fatalf("without a session: %d\n%s", p.status, p.body)
	}
	for _, tc := range []struct{ name, account, password string }{
		{"wrong password", "bob", "guess"},
		{"another's password", "bob", passwords["carol"]},
		{"unknown account", "dave", "x"},
		{"bad account", "../bob", "x"},
	} {
		p := b.login(tc.account, tc.password)
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "The login is invalid.") || sessionCookie(p) != nil {
			t.Errorf("%s: %d, cookie %v", tc.name, p.status, sessionCookie(p))
		}
	}
	p := b.login("bob", passwords["bob"])
	c := sessionCookie(p)
	if p.status != http.StatusSeeOther || c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure {
		t.Fatalf("login: %d, cookie %+v", p.status, c)
	}
	home := b.do("GET", "/", nil)
	if !strings.Contains(home.body, `id="tokens"`) || home.header.Get("Cache-Control") != "no-store" ||
		!strings.Contains(home.header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("panel: %d %v", home.status, home.header)
	}

	// Logging out ends the session on the server, not just in the browser.
	old := c.Value
	if p := b.do("POST", "/logout", url.Values{"csrf": {b.csrf()}}); p.status != http.StatusSeeOther || sessionCookie(p).MaxAge >= 0 {
		t.Fatalf("logout: %d %v", p.status, p.header)
	}
	replay := newBrowser(t, n.URL, nil)
	u, _ := url.Parse(n.URL)
	replay.client.Jar.SetCookies(u, []*http.Cookie{{Name: "tokenledger_session", Value: old}})
	if p := replay.do("GET", "/create", nil); p.status != http.StatusSeeOther {
		t.Fatalf("old session after logout: %d", p.status)
	}
}

func TestPanelSecureCookieUnderTLS(t *testing.T) {
	n := mustNode(t)
	srv := httptest.NewTLSServer(n.Handler)
	t.Cleanup(srv.Close)
	b := newBrowser(t, srv.URL, srv.Client())
	if c := sessionCookie(b.login("bob", passwords["bob"])); c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie under TLS: %+v", c)
	}
}

func TestPanelChanges(t *testing.T) {
	n := mustNode(t)
	n.mustToken(t, "bob", "old", nil)
	n.mustToken(t, "carol", "carols", nil)
	b := newBrowser(t, n.URL, nil)
	b.login("bob", passwords["bob"])
	csrf := b.csrf()

	// Changes need the session's CSRF token, and a same-site request.
	for _, tc := range []struct {
		name   string
		form   url.Values
		header []string
	}{
		{"no token", url.Values{"name": {"x"}, "expiry": {"never"}}, nil},
		{"wrong token", url.Values{"csrf": {"forged"}, "name": {"x"}, "expiry": {"never"}}, nil},
		{"another site", url.Values{"csrf": {csrf}, "name": {"x"}, "expiry": {"never"}}, []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		if p := b.do("POST", "/create", tc.form, tc.header...); p.status != http.StatusForbidden {
			t.Errorf("%s: %d", tc.name, p.status)
		}
	}
	if p := b.do("POST", "/create", url.Values{"csrf": {csrf}, "name": {strings.Repeat("x", 70<<10)}}); p.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over 64 KiB: %d", p.status)
	}
	if have := n.names("bob"); !slices.Equal(have, []string{"old"}) {
		t.Fatalf("refused changes changed something: %v", have)
	}

	// Create shows the secret once, in the page and nowhere else.
	p := b.do("POST", "/create", url.Values{"csrf": {csrf}, "name": {"new"}, "expiry": {"date"}, "date": {"2000-01-01"}})
	if !strings.Contains(p.body, "The expiration date 2000-01-01 is in the past") {
		t.Fatalf("past date: %s", p.body)
	}
	p = b.do("POST", "/create", url.Values{"csrf": {csrf}, "name": {"old"}, "expiry": {"never"}})
	if !strings.Contains(p.body, "A conflicting API token with the name “old” already exists.") {
		t.Fatalf("duplicate: %s", p.body)
	}
	// The answer to the create is a redirect (post/redirect/get), so that a
	// reload does not post it again; the page it leads to shows the secret
	// once, and after that says why it does not.
	p = b.do("POST", "/create", url.Values{"csrf": {csrf}, "name": {"new"}, "expiry": {"never"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/secret" || secretField.MatchString(p.body) {
		t.Fatalf("create: %d %v\n%s", p.status, p.header, p.body)
	}
	p = b.do("GET", "/secret", nil)
	m := secretField.FindStringSubmatch(p.body)
	if m == nil || p.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("the page after create: %d\n%s", p.status, p.body)
	}
	if again := b.do("GET", "/secret", nil); again.status != http.StatusSeeOther || strings.Contains(again.body, m[1]) {
		t.Fatalf("the secret's page again: %d\n%s", again.status, again.body)
	}
	if home := b.do("GET", "/", nil); strings.Contains(home.body, m[1]) || !strings.Contains(home.body, "secret is shown only once") {
		t.Fatalf("after the secret's page again:\n%s", home.body)
	}
	if have := n.names("bob"); !slices.Equal(have, []string{"old", "new"}) {
		t.Fatalf("after create: %v", have)
	}
	if res := n.Table.Validate(m[1], "bob", n.Clock.Now()); !res.Valid || res.Name() != "new" || res.ExpiresAt != nil {
		t.Fatalf("the secret shown: %+v", res)
	}
	if p := b.do("GET", "/saved?another=1", nil); p.header.Get("Location") != "/create" {
		t.Fatalf("create another: %v", p.header)
	}
	if strings.Contains(b.do("GET", "/", nil).body, m[1]) {
		t.Fatal("the secret is shown again")
	}

	// Rename, and its refusals.
	p = b.do("POST", "/rename", url.Values{"csrf": {csrf}, "name": {"new"}, "new_name": {"old"}})
	if !strings.Contains(p.body, "A conflicting API token with the name “old” already exists.") {
		t.Fatalf("rename to a taken name: %s", p.body)
	}
	if p := b.do("POST", "/rename", url.Values{"csrf": {csrf}, "name": {"new"}, "new_name": {"newer"}}); p.status != http.StatusSeeOther {
		t.Fatalf("rename: %d", p.status)
	}
	if !strings.Contains(b.do("GET", "/", nil).body, "The API token “new” is now named “newer”.") {
		t.Fatal("no message after rename")
	}
	if p := b.do("GET", "/manage?name=carols", nil); p.status != http.StatusSeeOther {
		t.Fatalf("managing another account's token: %d", p.status)
	}

	// Revoke asks first, then revokes all or nothing.
	p = b.do("POST", "/revoke", url.Values{"csrf": {csrf}, "name": {"old", "newer"}})
	if !strings.Contains(p.body, "Revoke Selected API Tokens") || len(n.names("bob")) != 2 {
		t.Fatalf("unconfirmed revoke: %s", p.body)
	}
	b.do("POST", "/revoke", url.Values{"csrf": {csrf}, "name": {"old", "carols"}, "confirmed": {"1"}})
	if !strings.Contains(b.do("GET", "/", nil).body, "The API token “carols” does not exist.") || len(n.names("bob")) != 2 {
		t.Fatalf("revoke with another account's name: %v", n.names("bob"))
	}
	b.do("POST", "/revoke", url.Values{"csrf": {csrf}, "name": {"old", "newer"}, "confirmed": {"1"}})
	if have := n.names("bob"); len(have) != 0 {
		t.Fatalf("after revoke: %v", have)
	}
	if have := n.names("carol"); !slices.Equal(have, []string{"carols"}) {
		t.Fatalf("carol's tokens: %v", have)
	}

	// Every change the panel made records the account and the client's address.
	for _, e := range n.events(t, "bob")[1:] {
		if e.Actor.Kind != "account" || e.Actor.Name != "bob" || e.Actor.Remote != "127.0.0.1" {
			t.Errorf("%s: actor %+v", e.Type(), e.Actor)
		}
	}
}

// TestLoginCSRF: the login form carries a token made from a cookie the
// login page sets. A login without both, or with another browser's token, is
// refused with 403 and a fresh form, and the password is never checked: no
// login or failure is counted, and no lock comes of it.
func TestLoginCSRF(t *testing.T) {
	n := mustNode(t)
	b := newBrowser(t, n.URL, nil)
	token := b.csrf()
	theirs := newBrowser(t, n.URL, nil).csrf()
	for _, tc := range []struct {
		name  string
		b     *browser
		token string
	}{
		{"no token", b, ""},
		{"forged token", b, "forged"},
		{"another browser's token", b, theirs},
		{"no cookie", newBrowser(t, n.URL, nil), token},
	} {
		for range 6 {
			form := url.Values{"account": {"bob"}, "password": {passwords["bob"]}}
			if tc.token != "" {
				form.Set("csrf", tc.token)
			}
			p := tc.b.do("POST", "/login", form)
			if p.status != http.StatusForbidden || sessionCookie(p) != nil ||
				!strings.Contains(p.body, "This login form is stale or did not come from the panel: log in again.") {
				t.Fatalf("%s: %d, cookie %v\n%s", tc.name, p.status, sessionCookie(p), p.body)
			}
		}
	}
	hasLines(t, n.metricsText(t),
		`tokenledger_auth_failures_total{kind="password"} 0`,
		`tokenledger_panel_logins_total{result="failed"} 0`,
		`tokenledger_panel_logins_total{result="ok"} 0`,
		`tokenledger_login_refusals_total 0`,
	)

	// The refusal's own form works.
	fresh := newBrowser(t, n.URL, nil)
	p := fresh.do("POST", "/login", url.Values{"account": {"bob"}, "password": {passwords["bob"]}})
	m := csrfField.FindStringSubmatch(p.body)
	if p.status != http.StatusForbidden || m == nil {
		t.Fatalf("refused login: %d\n%s", p.status, p.body)
	}
	if p := fresh.do("POST", "/login", url.Values{"account": {"bob"}, "password": {passwords["bob"]}, "csrf": {m[1]}}); p.status != http.StatusSeeOther || sessionCookie(p) == nil {
		t.Fatalf("login with the refusal's form: %d", p.status)
	}
	if p := b.do("POST", "/login", url.Values{"account": {"bob"}, "password": {passwords["bob"]}, "csrf": {token}}); p.status != http.StatusSeeOther || sessionCookie(p) == nil {
		t.Fatalf("login with the page's token: %d", p.status)
	}
}

// TestPanelEscapes: whatever a user sends (HTML, control characters,
// Unicode's bidirectional controls, bytes that are not UTF-8) shows on the
// panel's pages as text, escaped, and cannot break or disguise the page.
func TestPanelEscapes(t *testing.T) {
	n := mustNode(t)
	n.mustToken(t, "bob", "deploy", nil)
	b := newBrowser(t, n.URL, nil)
	b.login("bob", passwords["bob"])
	csrf := b.csrf()
	hostile := []string{`<script>alert(1)</script>`, "red\x1b[31m", "\u202egnp.exe", "nul\x00", "cr\rlf", "not\xffutf8", "del\x7f", "c1\u0085"}
	// html/template itself turns NUL into U+FFFD.
	want := []string{`&lt;script&gt;alert(1)&lt;/script&gt;`, `red\x1b[31m`, `\u202egnp.exe`, `nul\ufffd`, `cr\x0dlf`, `not\xffutf8`, `del\x7f`, `c1\x85`}

	confirm := b.do("POST", "/revoke", url.Values{"csrf": {csrf}, "name": hostile})
	pages := []page{confirm}
	var flashes []page // "The API token “…” does not exist."
	for _, h := range hostile {
		b.do("GET", "/manage?name="+url.QueryEscape(h), nil)
		flashes = append(flashes, b.do("GET", "/", nil))
		pages = append(pages, flashes[len(flashes)-1])
		pages = append(pages, b.do("POST", "/rename", url.Values{"csrf": {csrf}, "name": {"deploy"}, "new_name": {h}}))
		pages = append(pages, b.do("POST", "/create", url.Values{"csrf": {csrf}, "name": {h}, "expiry": {"never"}}))
		pages = append(pages, newBrowser(t, n.URL, nil).login(h, "x"))
	}
	for i, p := range pages {
		if !utf8.ValidString(p.body) {
			t.Errorf("page %d is not UTF-8", i)
		}
		for _, r := range p.body {
			if r != '\n' && r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
				t.Errorf("page %d shows %U as it is:\n%s", i, r, p.body)
				break
			}
		}
		if strings.Contains(p.body, "<script>") {
			t.Errorf("page %d has a script tag:\n%s", i, p.body)
		}
	}
	for i, w := range want {
		if !strings.Contains(confirm.body, w) {
			t.Errorf("the confirmation does not show %q as %q", hostile[i], w)
		}
	}
	if !strings.Contains(flashes[1].body, `The API token “red\x1b[31m” does not exist.`) {
		t.Errorf("the message for an unknown token:\n%s", flashes[1].body)
	}
}
