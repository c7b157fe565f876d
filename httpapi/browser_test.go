package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"tokenledger/events"
)

// mustBrowser starts a headless Chromium for the test. Without one it skips,
// loudly, unless CI is set: there a missing browser is a failure.
func mustBrowser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but no chromium is installed: the panel's browser test must run in CI (apt-get install chromium)")
		}
		t.Skip("\n\n!!!! SKIPPED: the panel's end-to-end browser test needs Debian's chromium (apt-get install chromium). !!!!\n\n")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	ctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// into runs a that reads a value and keeps the value in dst, so that reads
// and clicks go in one sequence of steps.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tab *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, tab)
		*dst = v
		return chromedp.Void{}, err
	}
}

// loads runs trigger, which takes the tab to another page, and waits until
// that page has loaded. Before then the panel's script may not have set up
// its handlers, and Chromium renews every node id of a page once it has
// loaded, so a step that found a node while the page was still loading fails
// with "No node with given id found".
func loads(trigger chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return into(new(cdppage.EventLoadEventFired), chromedp.WaitEvent(cdppage.LoadEventFired, nil, trigger))
}

// clearField empties a text field as a user would, so its input handlers run.
func clearField(id string) chromedp.Action[chromedp.Void] {
	return into(new(any), chromedp.Evaluate[any](`(function (e) { e.value = ""; e.dispatchEvent(new Event("input")); })(document.getElementById("`+id+`"))`))
}

// errorRed is the border of a field the panel marks as wrong.
const errorRed = "rgb(217, 83, 79)"

// borders reads the top border colour of the fields with these ids, as
// the user sees them.
func borders(ids ...string) chromedp.Action[[]string] {
	list, _ := json.Marshal(ids)
	return chromedp.Evaluate[[]string](string(list) + `.map(function (id) { return getComputedStyle(document.getElementById(id)).borderTopColor; })`)
}

// tableRow is a row of the panel's token table as the user sees it.
type tableRow struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Color   string `json:"color"`
	Icon    bool   `json:"icon"`
	Expires string `json:"expires"`
	Access  string `json:"access"`
}

const readTable = `Array.from(document.querySelectorAll("#tokens tbody tr[data-name]")).map(function (r) {
  return {name: r.dataset.name, status: r.className.replace("status-", ""),
    color: getComputedStyle(r.cells[1]).backgroundColor, icon: r.querySelector("svg.icon") !== null,
    expires: r.cells[3].innerText.trim(), access: r.cells[5].innerText.trim()};
})`

// TestPanelInBrowser drives the panel in a real headless Chromium as a user
// would: log in, create a token and read it once, see the expiring and
// expired rows, rename, and revoke several at once, reading the table after
// each step.
func TestPanelInBrowser(t *testing.T) {
	ctx := mustBrowser(t)
	n := mustNode(t)
	now := n.Clock.Now()
	n.mustToken(t, "bob", "soon", unix(now.Add(2*24*time.Hour)))
	n.mustToken(t, "bob", "gone", unix(now.Add(time.Hour)))
	for i := 1; i <= 10; i++ {
		n.mustToken(t, "bob", fmt.Sprintf("t%02d", i), nil)
	}
	n.mustToken(t, "carol", "carols", nil)
	n.Clock.Advance(2 * time.Hour)
	shots := os.Getenv("TOKENLEDGER_SCREENSHOTS") // a directory, to look at the panel
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
			if shots == "" {
				return nil
			}
			png, err := chromedp.FullScreenshot(100)(ctx, tab)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		})
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	table := func(what string) []tableRow {
		t.Helper()
		var rows []tableRow
		run(what, chromedp.WaitVisible(chromedp.CSS("#tokens")), into(&rows, chromedp.Evaluate[[]tableRow](readTable)))
		return rows
	}
	names := func(rows []tableRow) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r.Name)
		}
		return out
	}
	var text string

	// A wrong password is refused; the right one shows bob's tokens, ten a page.
	// The login form's empty required fields show no error before anything is typed.
	var colors []string
	unmarked := func(what string, ids ...string) {
		t.Helper()
		run(what, into(&colors, borders(ids...)))
		for i, c := range colors {
			if c == errorRed {
				t.Errorf("%s: #%s has the error border before anything is typed", what, ids[i])
			}
		}
	}
	run("login page", chromedp.Navigate(n.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#login-account")), shot("login"))
	unmarked("login page", "login-account", "login-password")
	run("wrong password",
		chromedp.SendKeys(chromedp.CSS("#login-account"), "bob"),
		chromedp.SendKeys(chromedp.CSS("#login-password"), "guess"),
		loads(chromedp.Click(chromedp.CSS("#login"))),
		chromedp.WaitVisible(chromedp.CSS("#error")),
		into(&text, chromedp.Text(chromedp.CSS("#error"))))
	if text != "The login is invalid." {
		t.Fatalf("wrong password: %q", text)
	}
	unmarked("login page after a refusal", "login-password")
	run("login",
		chromedp.SetValue(chromedp.CSS("#login-account"), "bob"),
		chromedp.SendKeys(chromedp.CSS("#login-password"), passwords["bob"]),
		loads(chromedp.Click(chromedp.CSS("#login"))))
	rows := table("first page")
	if have, want := names(rows), []string{"soon", "gone", "t01", "t02", "t03", "t04", "t05", "t06", "t07", "t08"}; !slices.Equal(have, want) {
		t.Fatalf("first page: %v, want %v", have, want)
	}
	run("range", into(&text, chromedp.Text(chromedp.CSS("#range"))))
	if text != "1–10 of 12" {
		t.Fatalf("range %q", text)
	}

	// The expiring row is yellow with a notice icon, the expired one red.
	if r := rows[0]; r.Status != "expiring" || !r.Icon || r.Color != "rgb(252, 244, 212)" {
		t.Errorf("expiring row: %+v", r)
	}
	if r := rows[1]; r.Status != "expired" || !r.Icon || r.Color != "rgb(249, 223, 223)" || !strings.Contains(r.Expires, "Expired") {
		t.Errorf("expired row: %+v", r)
	}
	if r := rows[2]; r.Status != "active" || r.Icon || r.Expires != "Never" || r.Access != "Full access" {
		t.Errorf("active row: %+v", r)
	}
	// The columns are named as on cPanel's page, with Last used and Access beside them.
	var columns []string
	run("columns", into(&columns, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#tokens thead th")).map(function (th) { return th.innerText.trim(); })`)))
	if want := []string{"", "Token Name", "Created", "Expires", "Last used", "Access", "Manage"}; !slices.Equal(columns, want) {
		t.Errorf("table columns %q, want %q", columns, want)
	}

	// Twenty a page shows all twelve.
	run("page size",
		loads(into(new(any), chromedp.Evaluate[any](`(function (s) { s.value = "20"; s.dispatchEvent(new Event("change")); })(document.getElementById("page-size"))`))),
		chromedp.WaitReady(chromedp.CSS(`#page-size option[value="20"][selected]`)),
		into(&text, chromedp.Text(chromedp.CSS("#range"))), shot("list"))
	if text != "1–12 of 12" {
		t.Fatalf("range with 20 a page: %q", text)
	}

	// Create: the name is checked as typed; the date defaults to a year from today.
	var date, check string
	var disabled bool
	run("create form", loads(chromedp.Click(chromedp.CSS("#create"))), chromedp.WaitVisible(chromedp.CSS("#token-name")))
	unmarked("create form", "token-name")
	run("a name with a space",
		chromedp.SendKeys(chromedp.CSS("#token-name"), "web deploy"),
		into(&text, chromedp.Text(chromedp.CSS("#name-check"))),
		into(&disabled, chromedp.Evaluate[bool](`document.getElementById("create-submit").disabled`)),
		into(&colors, borders("token-name")))
	if !strings.Contains(text, "You can only enter letters") || !disabled || colors[0] != errorRed {
		t.Fatalf("a name with a space: %q, create disabled %v, border %s", text, disabled, colors[0])
	}
	run("duplicate name",
		clearField("token-name"),
		chromedp.SendKeys(chromedp.CSS("#token-name"), "soon"),
		into(&check, chromedp.Text(chromedp.CSS("#name-check"))))
	if !strings.Contains(check, "A conflicting API token with the name “soon” already exists.") {
		t.Fatalf("a taken name: %q", check)
	}
	run("good name",
		clearField("token-name"),
		chromedp.SendKeys(chromedp.CSS("#token-name"), "web-deploy"),
		chromedp.WaitNotVisible(chromedp.CSS("#name-check")),
		chromedp.Click(chromedp.CSS("#expiry-date")),
		chromedp.WaitVisible(chromedp.CSS("#expires-date")),
		into(&date, chromedp.Value(chromedp.CSS("#expires-date"))), shot("create"))
	today := n.Clock.Now().In(n.Location)
	if want := today.AddDate(1, 0, 0).Format(time.DateOnly); date != want {
		t.Fatalf("default expiry date %q, want %q", date, want)
	}

	// Two features picked from the operator's list make a limited token.
	run("pick features",
		chromedp.Click(chromedp.CSS("#feature-apitokens")),
		chromedp.Click(chromedp.CSS("#feature-cron")))

	// The secret shows once, with Copy and "Yes, I Saved My Token", on a
	// page the create redirected to.
	var secret, url, access string
	run("create",
		loads(chromedp.Click(chromedp.CSS("#create-submit"))),
		chromedp.WaitVisible(chromedp.CSS("#secret")),
		into(&secret, chromedp.Value(chromedp.CSS("#secret"))),
		into(&access, chromedp.Text(chromedp.CSS("#secret-access"))),
		into(&url, chromedp.Location()),
		chromedp.Click(chromedp.CSS("#copy")),
		chromedp.WaitVisible(chromedp.CSS("#copy-done")), shot("secret"))
	if url != n.URL+"/secret" {
		t.Fatalf("the secret is shown at %s, not on a page of its own", url)
	}
	res := n.Table.Validate(secret, "bob", n.Clock.Now())
	if !events.IsSecretShaped(secret) || !res.Valid || res.Name() != "web-deploy" {
		t.Fatalf("the secret shown does not validate: %+v", res)
	}
	if access != "apitokens, cron" || !slices.Equal(res.Features, []string{"apitokens", "cron"}) || res.ReadOnly {
		t.Fatalf("the limited token: the page says %q, the table has %+v", access, res)
	}
	if want, _ := events.ParseDate(date, n.Location); res.ExpiresAt == nil || *res.ExpiresAt != want.Unix() {
		t.Fatalf("expiry %v, want 23:59:59 of %s", res.ExpiresAt, date)
	}
	// A reload neither creates again nor shows the secret again, and says why.
	before := n.names("bob")
	var html string
	run("reload the secret's page",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#tokens")),
		into(&html, chromedp.OuterHTML(chromedp.CSS("html"))),
		into(&text, chromedp.Text(chromedp.CSS("#flash"))),
		into(&url, chromedp.Location()))
	if strings.Contains(html, secret) || strings.Contains(url, secret) || !strings.Contains(text, "shown only once") {
		t.Fatalf("after a reload of the secret's page: flash %q", text)
	}
	if have := n.names("bob"); !slices.Equal(have, before) || !slices.Contains(have, "web-deploy") {
		t.Fatalf("after the reload: %v, want %v", have, before)
	}
	rows = table("after create")
	if i := slices.IndexFunc(rows, func(r tableRow) bool { return r.Name == "web-deploy" }); i < 0 || rows[i].Access != "apitokens, cron" {
		t.Fatalf("after create: %+v", rows)
	}

	// Manage: change the features, from the operator's list.
	run("change features",
		loads(chromedp.Click(chromedp.CSS(`#tokens tr[data-name="web-deploy"] a.btn`))),
		chromedp.WaitVisible(chromedp.CSS("#set-features")),
		into(&access, chromedp.Text(chromedp.CSS("#manage-access"))),
		chromedp.Click(chromedp.CSS("#feature-cron")),
		chromedp.Click(chromedp.CSS("#feature-mysql")), shot("features"),
		loads(chromedp.Click(chromedp.CSS("#set-features"))),
		chromedp.WaitVisible(chromedp.CSS("#flash")),
		into(&text, chromedp.Text(chromedp.CSS("#flash"))))
	if access != "apitokens, cron" || text != "The API token “web-deploy” may now use: apitokens, mysql." {
		t.Fatalf("manage showed %q; change features flash %q", access, text)
	}
	rows = table("after changing features")
	if i := slices.IndexFunc(rows, func(r tableRow) bool { return r.Name == "web-deploy" }); i < 0 || rows[i].Access != "apitokens, mysql" {
		t.Fatalf("after changing features: %+v", rows)
	}

	// Manage: rename.
	run("manage",
		loads(chromedp.Click(chromedp.CSS(`#tokens tr[data-name="web-deploy"] a.btn`))),
		chromedp.WaitVisible(chromedp.CSS("#new-name")))
	unmarked("manage page", "new-name")
	run("rename",
		chromedp.SendKeys(chromedp.CSS("#new-name"), "web-deploy-2"), shot("manage"),
		loads(chromedp.Click(chromedp.CSS("#update"))),
		chromedp.WaitVisible(chromedp.CSS("#flash")),
		into(&text, chromedp.Text(chromedp.CSS("#flash"))))
	if text != "The API token “web-deploy” is now named “web-deploy-2”." {
		t.Fatalf("rename flash %q", text)
	}
	have := names(table("after rename"))
	if !slices.Contains(have, "web-deploy-2") || slices.Contains(have, "web-deploy") {
		t.Fatalf("after rename: %v", have)
	}

	// Manage: rotate, behind a confirmation; the new secret shows once, as
	// on create, and the old one stops working.
	var rotated, notice string
	run("rotate",
		loads(chromedp.Click(chromedp.CSS(`#tokens tr[data-name="web-deploy-2"] a.btn`))),
		chromedp.WaitVisible(chromedp.CSS("#rotate")),
		chromedp.Click(chromedp.CSS("#rotate")),
		chromedp.WaitVisible(chromedp.CSS("#rotate-confirm")), shot("rotate-confirm"))
	if res := n.Table.Validate(secret, "bob", n.Clock.Now()); !res.Valid {
		t.Fatalf("rotated before the confirmation: %+v", res)
	}
	run("rotate confirmed",
		loads(chromedp.Click(chromedp.CSS("#rotate-yes"))),
		chromedp.WaitVisible(chromedp.CSS("#secret")),
		into(&rotated, chromedp.Value(chromedp.CSS("#secret"))),
		into(&notice, chromedp.Text(chromedp.CSS("#created-notice"))),
		chromedp.Click(chromedp.CSS("#copy")),
		chromedp.WaitVisible(chromedp.CSS("#copy-done")), shot("rotated"))
	if !strings.Contains(notice, "“web-deploy-2” API token has a new secret") {
		t.Fatalf("rotate notice %q", notice)
	}
	if res := n.Table.Validate(rotated, "bob", n.Clock.Now()); rotated == secret || !res.Valid || res.Name() != "web-deploy-2" {
		t.Fatalf("the rotated secret shown does not validate: %+v", res)
	}
	if res := n.Table.Validate(secret, "bob", n.Clock.Now()); res.Valid {
		t.Fatal("the old secret still works after rotate")
	}
	run("saved after rotate",
		loads(chromedp.Click(chromedp.CSS("#saved"))),
		chromedp.WaitVisible(chromedp.CSS("#tokens")),
		into(&html, chromedp.OuterHTML(chromedp.CSS("html"))))
	if strings.Contains(html, rotated) {
		t.Fatal("the rotated secret is shown again after “Yes, I Saved My Token”")
	}

	// Select all, then only three, and revoke them behind a confirmation.
	var count string
	run("select all",
		chromedp.Navigate(n.URL+"/?size=20"),
		chromedp.WaitVisible(chromedp.CSS("#tokens")),
		chromedp.Click(chromedp.CSS("#select-all")),
		into(&count, chromedp.Text(chromedp.CSS("#selected-count"))),
		chromedp.Click(chromedp.CSS("#select-all")))
	if count != "13 tokens selected" {
		t.Fatalf("select all: %q", count)
	}
	run("revoke three",
		chromedp.Click(chromedp.CSS(`#tokens tr[data-name="gone"] input`)),
		chromedp.Click(chromedp.CSS(`#tokens tr[data-name="t01"] input`)),
		chromedp.Click(chromedp.CSS(`#tokens tr[data-name="web-deploy-2"] input`)),
		chromedp.Click(chromedp.CSS("#revoke-selected")),
		chromedp.WaitVisible(chromedp.CSS("#revoke-confirm")),
		into(&text, chromedp.Text(chromedp.CSS("#revoke-confirm-text"))), shot("confirm"))
	var yes string
	run("confirmation's button", into(&yes, chromedp.Text(chromedp.CSS("#revoke-yes"))))
	if !strings.Contains(text, "the 3 selected API tokens") || yes != "Revoke Selected API Tokens" {
		t.Fatalf("confirmation %q, button %q", text, yes)
	}
	if have := n.names("bob"); len(have) != 13 {
		t.Fatalf("revoked before the confirmation: %v", have)
	}
	run("confirm",
		loads(chromedp.Click(chromedp.CSS("#revoke-yes"))),
		chromedp.WaitVisible(chromedp.CSS("#flash")),
		into(&text, chromedp.Text(chromedp.CSS("#flash"))))
	if text != "3 API tokens were revoked." {
		t.Fatalf("revoke flash %q", text)
	}
	want := []string{"soon", "t02", "t03", "t04", "t05", "t06", "t07", "t08", "t09", "t10"}
	if have := names(table("after revoke")); !slices.Equal(have, want) {
		t.Fatalf("table after revoke: %v, want %v", have, want)
	}
	if have := n.names("bob"); !slices.Equal(have, want) {
		t.Fatalf("ledger after revoke: %v, want %v", have, want)
	}
	if have := n.names("carol"); !slices.Equal(have, []string{"carols"}) {
		t.Fatalf("carol's tokens: %v", have)
	}

	// Logging out ends the session.
	run("logout", loads(chromedp.Click(chromedp.CSS("#logout"))), chromedp.WaitVisible(chromedp.CSS("#login-account")),
		chromedp.Navigate(n.URL+"/create"), chromedp.WaitVisible(chromedp.CSS("#login-account")))
}
