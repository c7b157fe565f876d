package httpapi

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"tokenledger/accounts"
	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/projections"
)

// The panel is plain HTML from html/template, a stylesheet and a little
// JavaScript, all in the binary: no build step, nothing fetched from
// elsewhere, so it works with no internet. Every page works without
// JavaScript too; the script only adds live checks, the copy button,
// select-all and inline confirmations.

//go:embed web
var webFiles embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
}).ParseFS(webFiles, "web/*.html"))

// pageSizes are the panel's choices of rows per page.
var pageSizes = []int{10, 20, 50, 100}

// panelCSP allows nothing but this server's own files: no inline script, no
// other origin, no framing.
const panelCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (h *handler) panelRoutes(mux *http.ServeMux) {
	static, _ := fs.Sub(webFiles, "web/static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	cop := http.NewCrossOriginProtection()
	post := func(pattern string, f http.HandlerFunc) { mux.Handle("POST "+pattern, cop.Handler(f)) }
	mux.HandleFunc("GET /{$}", h.index)
	post("/login", h.login)
	post("/logout", h.logout)
	mux.HandleFunc("GET /create", h.signedIn(h.createForm))
	post("/create", h.signedIn(h.create))
	mux.HandleFunc("GET /secret", h.signedIn(h.secretPage))
	mux.HandleFunc("GET /saved", h.signedIn(h.saved))
	mux.HandleFunc("GET /manage", h.signedIn(h.manage))
	post("/rename", h.signedIn(h.renameToken))
	post("/revoke", h.signedIn(h.revokeTokens))
	post("/rotate", h.signedIn(h.rotateToken))
	post("/features", h.signedIn(h.setTokenFeatures))
}

// view is what a page template is given.
type view struct {
	Page    string // which page: login, list, create, secret, manage, confirm, confirm-rotate
	Account string
	CSRF    string
	Flash   flash
	Error   string

	// login
	Login string

	// list
	Rows      []rowView
	Total     int
	Size      int
	Sizes     []int
	PageNum   int
	PageCount int
	PageLinks []int
	First     int
	Last      int

	// create and manage
	Name        string
	NewName     string
	Expiry      string // never or date
	Date        string
	MinDate     string
	LiveNames   string // JSON list of the account's live names, for the live check
	MaxNameLen  int
	Created     *created
	ExpiresText string
	Rotated     bool // the secret page shows a rotated token's new secret
	Grace       string
	Graces      []graceChoice
	Features    []featureChoice // the features a user may pick, and which are picked
	ReadOnly    bool
	FullAccess  bool // manage: the features form gives full access

	// confirm
	Names []string

	size int // the session's page size
}

// rowView is one token as the table shows it.
type rowView struct {
	Name       string
	Created    string
	Expires    string
	Status     string
	LastUsed   string // Never, or when
	LastIP     string
	AllowedIPs []string
	FullAccess bool
	Features   []string
	ReadOnly   bool
}

// featureChoice is one feature as the panel offers it, checked or not.
type featureChoice struct {
	Name    string
	Checked bool
}

// featureChoices are the features the operator offers (Config.Features),
// then any other of picked (a token's own, set elsewhere), with picked
// checked.
func (h *handler) featureChoices(picked []string) []featureChoice {
	var out []featureChoice
	for _, f := range h.cfg.Features {
		out = append(out, featureChoice{Name: f, Checked: slices.Contains(picked, f)})
	}
	for _, f := range picked {
		if !slices.Contains(h.cfg.Features, f) {
			out = append(out, featureChoice{Name: f, Checked: true})
		}
	}
	return out
}

// graceChoice is one of the panel's choices of how long a rotated token's
// old secret keeps working.
type graceChoice struct {
	Seconds string
	Label   string
}

var graceChoices = []graceChoice{
	{"0", "Stops working at once"},
	{"3600", "Keeps working for 1 hour"},
	{"86400", "Keeps working for 1 day"},
	{"604800", "Keeps working for 7 days"},
}

// signedIn runs f for a request with a live session; a change must also
// carry the session's CSRF token.
func (h *handler) signedIn(f func(http.ResponseWriter, *http.Request, *view, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.ready() {
			w.Header().Set("Retry-After", "5")
			http.Error(w, "The token ledger is catching up with its event stream; try again shortly.", http.StatusServiceUnavailable)
			return
		}
		id, s, ok := h.session(r)
		if !ok {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if !readForm(w, r, unreadableForm) {
				return
			}
			if !sameToken(r.PostForm.Get("csrf"), s.csrf) {
				text(w, http.StatusForbidden, "this form is stale or did not come from the panel: reload the page and try again\n")
				return
			}
		}
		v := &view{Account: s.account, CSRF: s.csrf, Flash: h.sessions.takeFlash(id), MaxNameLen: events.MaxNameLen, size: s.size}
		f(w, r, v, id)
	}
}

// readForm parses r's parameters, or answers 413 for a body that is too
// large and unreadable(w) for any other failure, and says whether it parsed.
func readForm(w http.ResponseWriter, r *http.Request, unreadable func(http.ResponseWriter)) bool {
	err := parseForm(r)
	switch {
	case err == nil:
		return true
	case isTooLarge(err):
		tooLarge(w, r)
	default:
		unreadable(w)
	}
	return false
}

func unreadableForm(w http.ResponseWriter) {
	text(w, http.StatusBadRequest, "the form cannot be read\n")
}

// session returns the request's live session. One whose account's password
// has changed (or gone) in the accounts file since it logged in ends here:
// whoever changed the password may be shutting someone out.
func (h *handler) session(r *http.Request) (string, session, bool) {
	id, ok := cookie(r, sessionCookie)
	if !ok {
		return "", session{}, false
	}
	s, ok := h.sessions.get(id)
	if !ok {
		return "", session{}, false
	}
	if stamp, ok := h.passwordStamp(s.account); !ok || stamp != s.stamp {
		h.sessions.end(id)
		return "", session{}, false
	}
	return id, s, true
}

// cookie returns the value of r's cookie name, when it has one of a length
// the panel could have set.
func cookie(r *http.Request, name string) (string, bool) {
	c, err := r.Cookie(name)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return "", false
	}
	return c.Value, true
}

func (h *handler) passwordStamp(account string) (accounts.Stamp, bool) {
	if h.cfg.Accounts == nil {
		return accounts.Stamp{}, false
	}
	return h.cfg.Accounts.Stamp(account)
}

func (h *handler) render(w http.ResponseWriter, status int, v *view) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, "layout", v); err != nil {
		h.cfg.Log.Error("panel page failed", "page", v.Page, "err", err)
		text(w, http.StatusInternalServerError, "internal error\n")
		return
	}
	page := printable(b.Bytes())
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", panelCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	w.Write(page)
}

// printable escapes what html/template lets through but a page should not
// show as it is: control characters (a line break and a tab aside), Unicode's
// bidirectional controls, which can make a name read backwards, and bytes
// that are not UTF-8. Each shows as its Go escape (\x1b, \u202e), so a
// name typed with one stays recognisable. The panel's own text has none of
// them; only what a user sent can bring them (a name in a form or a URL).
func printable(page []byte) []byte {
	out := make([]byte, 0, len(page))
	for len(page) > 0 {
		r, n := utf8.DecodeRune(page)
		switch {
		case shows(r):
			out = append(out, page[:n]...)
		case r == utf8.RuneError && n == 1:
			out = fmt.Appendf(out, `\x%02x`, page[0])
		case r < 0x100:
			out = fmt.Appendf(out, `\x%02x`, r)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		page = page[n:]
	}
	return out
}

// shows says whether r may stand in a page as it is; utf8.RuneError stands
// for a byte that is not UTF-8.
func shows(r rune) bool {
	if r == '\n' || r == '\t' {
		return true
	}
	return r != utf8.RuneError && !unicode.IsControl(r) && !unicode.Is(unicode.Bidi_Control, r)
}

// index is the token list, or the login form without a session.
func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := h.session(r); !ok {
		h.renderLogin(w, r, http.StatusOK, &view{})
		return
	}
	h.signedIn(h.listPage)(w, r)
}

// renderLogin shows the login form with its CSRF token, made from the
// browser's pre-session cookie, which is set here when it has none.
func (h *handler) renderLogin(w http.ResponseWriter, r *http.Request, status int, v *view) {
	pre, ok := cookie(r, loginCookie)
	if !ok {
		pre = randomToken()
		h.setCookie(w, r, loginCookie, pre)
	}
	v.Page, v.CSRF = "login", h.loginToken(pre)
	h.render(w, status, v)
}

// loginFormOK says whether a login came from this panel's form: its token
// matches the browser's pre-session cookie.
func (h *handler) loginFormOK(r *http.Request) bool {
	pre, ok := cookie(r, loginCookie)
	return ok && sameToken(r.PostForm.Get("csrf"), h.loginToken(pre))
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	if !readForm(w, r, unreadableForm) {
		return
	}
	account, password := r.PostForm.Get("account"), r.PostForm.Get("password")
	v := &view{Login: clip(account)}
	if !h.loginFormOK(r) {
		// Refused before the password is looked at: another site may be
		// logging this browser in as an account of its choosing.
		v.Error = "This login form is stale or did not come from the panel: log in again."
		h.renderLogin(w, r, http.StatusForbidden, v)
		return
	}
	if h.cfg.Accounts == nil {
		v.Error = "Password logins are off: start the server with --accounts FILE."
		h.renderLogin(w, r, http.StatusUnauthorized, v)
		return
	}
	stamp, ok, wait := h.passwordLogin(r, account, password)
	if wait > 0 {
		// Refused without looking at the password: an account being guessed
		// waits, so guessing is slow, and no goroutine sleeps meanwhile.
		w.Header().Set("Retry-After", strconv.FormatInt(waitSeconds(wait), 10))
		v.Error = waitMessage(wait)
		h.renderLogin(w, r, http.StatusTooManyRequests, v)
		return
	}
	h.metrics.login(ok)
	if !ok {
		v.Error = "The login is invalid."
		h.renderLogin(w, r, http.StatusUnauthorized, v)
		return
	}
	h.setCookie(w, r, loginCookie, "")
	h.setSessionCookie(w, r, h.sessions.start(account, stamp))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	if id, s, ok := h.session(r); ok {
		if parseForm(r) != nil || !sameToken(r.PostForm.Get("csrf"), s.csrf) {
			text(w, http.StatusForbidden, "this form is stale: reload the page and try again\n")
			return
		}
		h.sessions.end(id)
	}
	h.setSessionCookie(w, r, "")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *handler) listPage(w http.ResponseWriter, r *http.Request, v *view, id string) {
	now := h.cfg.Now()
	rows := h.cfg.Table.List(v.Account, now)
	v.Page, v.Total, v.Sizes = "list", len(rows), pageSizes
	v.Size = max(v.size, pageSizes[0])
	if n, err := strconv.Atoi(r.URL.Query().Get("size")); err == nil && slices.Contains(pageSizes, n) {
		v.Size = n
		h.sessions.setSize(id, n)
	}
	v.PageCount = max(1, (len(rows)+v.Size-1)/v.Size)
	v.PageNum = 1
	if n, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil {
		v.PageNum = min(max(n, 1), v.PageCount)
	}
	for i := 1; i <= v.PageCount; i++ {
		v.PageLinks = append(v.PageLinks, i)
	}
	from, to := (v.PageNum-1)*v.Size, min(v.PageNum*v.Size, len(rows))
	for _, row := range rows[from:to] {
		v.Rows = append(v.Rows, h.rowView(row))
	}
	v.First, v.Last = from+1, to
	h.render(w, http.StatusOK, v)
}

func (h *handler) rowView(row projections.Row) rowView {
	v := rowView{Name: row.Name, Created: h.showTime(row.Created), Expires: h.showExpiry(row.ExpiresAt), Status: row.Status,
		LastUsed: "Never", LastIP: row.LastIP, AllowedIPs: row.AllowedIPs, FullAccess: row.FullAccess, Features: row.Features, ReadOnly: row.ReadOnly}
	if row.LastUsed != nil {
		v.LastUsed = h.showTime(time.Unix(*row.LastUsed, 0))
	}
	return v
}

func (h *handler) showTime(t time.Time) string {
	return t.In(h.cfg.Location).Format("Jan 2, 2006 3:04:05 PM")
}

func (h *handler) showExpiry(at *int64) string {
	if at == nil {
		return "Never"
	}
	return h.showTime(time.Unix(*at, 0))
}

func (h *handler) createForm(w http.ResponseWriter, r *http.Request, v *view, _ string) {
	v.Expiry = "never"
	h.renderCreate(w, http.StatusOK, v)
}

// renderCreate shows the create form; the date picker defaults to one year
// from today and allows nothing before today, in the server's zone.
func (h *handler) renderCreate(w http.ResponseWriter, status int, v *view) {
	today := h.cfg.Now().In(h.cfg.Location)
	v.Page, v.MinDate = "create", today.Format(time.DateOnly)
	if v.Features == nil {
		v.Features = h.featureChoices(nil)
	}
	if v.Date == "" {
		v.Date = today.AddDate(1, 0, 0).Format(time.DateOnly)
	}
	names := []string{}
	for _, row := range h.cfg.Table.List(v.Account, today) {
		names = append(names, row.Name)
	}
	b, _ := json.Marshal(names)
	v.LiveNames = string(b)
	h.render(w, status, v)
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, v *view, id string) {
	v.Name, v.Expiry, v.Date = r.PostForm.Get("name"), r.PostForm.Get("expiry"), r.PostForm.Get("date")
	v.Features = h.featureChoices(r.PostForm["feature"])
	now := h.cfg.Now()
	var expires *int64
	err := checkName("name", v.Name)
	var features []string
	if err == nil {
		features, err = parseFeatures(r.PostForm)
	}
	if err == nil {
		v.ReadOnly, err = parseFlag(r.PostForm, "readonly")
	}
	if err == nil && v.Expiry == "date" {
		var at time.Time
		if at, err = events.ParseDate(v.Date, h.cfg.Location); err == nil && !at.After(now) {
			err = events.Errorf(events.Invalid, "The expiration date %s is in the past: choose today or a later day.", v.Date)
		}
		x := at.Unix()
		expires = &x
	}
	var t commands.Created
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
		defer cancel()
		t, err = h.cfg.Ledger.Create(ctx, commands.Create{Account: v.Account, Name: v.Name, ExpiresAt: expires,
			Features: features, ReadOnly: v.ReadOnly, Actor: accountPrincipal(v.Account, r).actor})
	}
	if err != nil {
		v.Error = h.panelRefusal(fnCreate, err, v.Name, "")
		h.renderCreate(w, http.StatusOK, v)
		return
	}
	c := createdFrom(t)
	h.showSecret(w, r, id, newSecret{token: c, expiresText: h.showExpiry(c.ExpiresAt)})
}

// showSecret has the browser fetch the page that shows a new secret, which
// the session keeps for that one GET: the answer to the POST that made it
// is a redirect, so that a reload neither makes another nor shows it again.
func (h *handler) showSecret(w http.ResponseWriter, r *http.Request, id string, secret newSecret) {
	h.sessions.setSecret(id, secret)
	http.Redirect(w, r, "/secret", http.StatusSeeOther)
}

// secretPage shows the session's new secret, once. Later, it says why the
// secret is not shown again.
func (h *handler) secretPage(w http.ResponseWriter, r *http.Request, v *view, id string) {
	secret, ok := h.sessions.takeSecret(id)
	if !ok {
		h.sessions.setFlash(id, flash{Bad: true, Text: "An API token's secret is shown only once, and cannot be shown again. " +
			"If you did not save it, revoke the token and create a new one."})
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	v.Page, v.Created, v.ExpiresText, v.Rotated, v.Grace = "secret", &secret.token, secret.expiresText, secret.rotated, secret.grace
	h.render(w, http.StatusOK, v)
}

// saved leaves the page that showed a new secret, to another create form or
// to the list.
func (h *handler) saved(w http.ResponseWriter, r *http.Request, v *view, _ string) {
	if r.URL.Query().Get("another") != "" {
		http.Redirect(w, r, "/create", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *handler) manage(w http.ResponseWriter, r *http.Request, v *view, id string) {
	v.Name = r.URL.Query().Get("name")
	h.renderManage(w, r, v, id, http.StatusOK)
}

func (h *handler) renderManage(w http.ResponseWriter, r *http.Request, v *view, id string, status int) {
	for _, row := range h.cfg.Table.List(v.Account, h.cfg.Now()) {
		if row.Name == v.Name {
			v.Page, v.Rows, v.Graces = "manage", []rowView{h.rowView(row)}, graceChoices
			if v.Features == nil {
				v.Features, v.FullAccess = h.featureChoices(row.Features), row.FullAccess
			}
			h.render(w, status, v)
			return
		}
	}
	h.sessions.setFlash(id, flash{Text: fmt.Sprintf("The API token “%s” does not exist.", clip(v.Name)), Bad: true})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *handler) renameToken(w http.ResponseWriter, r *http.Request, v *view, id string) {
	v.Name, v.NewName = r.PostForm.Get("name"), r.PostForm.Get("new_name")
	err := checkName("name", v.Name)
	if err == nil {
		err = checkName("new_name", v.NewName)
	}
	if err == nil && v.Name == v.NewName {
		err = events.Errorf(events.Invalid, "The new name must be different from the current name.")
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
		defer cancel()
		err = h.cfg.Ledger.Rename(ctx, commands.Rename{Account: v.Account, Name: v.Name, NewName: v.NewName, Actor: accountPrincipal(v.Account, r).actor})
	}
	if err != nil {
		v.Error = h.panelRefusal(fnRename, err, v.Name, v.NewName)
		h.renderManage(w, r, v, id, http.StatusOK)
		return
	}
	h.sessions.setFlash(id, flash{Text: fmt.Sprintf("The API token “%s” is now named “%s”.", v.Name, v.NewName)})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// revokeTokens revokes the selected tokens once the user has confirmed; an
// unconfirmed request (a browser without JavaScript) gets a page that asks.
func (h *handler) revokeTokens(w http.ResponseWriter, r *http.Request, v *view, id string) {
	names := r.PostForm["name"]
	if len(names) == 0 {
		h.sessions.setFlash(id, flash{Text: "Select the API tokens to revoke.", Bad: true})
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if r.PostForm.Get("confirmed") != "1" {
		v.Page, v.Names = "confirm", names
		h.render(w, http.StatusOK, v)
		return
	}
	err := error(nil)
	for _, n := range names {
		if err = checkName("name", n); err != nil {
			break
		}
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
		defer cancel()
		err = h.cfg.Ledger.Revoke(ctx, commands.Revoke{Account: v.Account, Names: names, Actor: accountPrincipal(v.Account, r).actor})
	}
	if err != nil {
		unknown := names[0]
		if gone := events.ErrorNames(err); len(gone) > 0 {
			unknown = gone[0] // the ledger's, current where this node's table may lag
		}
		h.sessions.setFlash(id, flash{Text: h.panelRefusal(fnRevoke, err, unknown, ""), Bad: true})
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	msg := fmt.Sprintf("The API token “%s” was revoked.", names[0])
	if len(names) > 1 {
		msg = fmt.Sprintf("%d API tokens were revoked.", len(names))
	}
	h.sessions.setFlash(id, flash{Text: msg})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// rotateToken gives a token a new secret once the user has confirmed, and
// shows it once, as create does (showSecret); an unconfirmed request (a browser without
// JavaScript) gets a page that asks.
func (h *handler) rotateToken(w http.ResponseWriter, r *http.Request, v *view, id string) {
	v.Name, v.Grace = r.PostForm.Get("name"), r.PostForm.Get("grace")
	if r.PostForm.Get("confirmed") != "1" {
		if err := checkName("name", v.Name); err != nil {
			h.sessions.setFlash(id, flash{Text: h.panelRefusal(fnRotate, err, v.Name, ""), Bad: true})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		v.Page, v.Graces = "confirm-rotate", graceChoices
		h.render(w, http.StatusOK, v)
		return
	}
	err := checkName("name", v.Name)
	var grace time.Duration
	if err == nil {
		grace, err = parseGrace(v.Grace)
	}
	var t commands.Created
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
		defer cancel()
		t, err = h.cfg.Ledger.Rotate(ctx, commands.Rotate{Account: v.Account, Name: v.Name, Grace: grace, Actor: accountPrincipal(v.Account, r).actor})
	}
	if err != nil {
		if events.ErrorCode(err) == events.NotFound {
			h.sessions.setFlash(id, flash{Text: h.panelRefusal(fnRotate, err, v.Name, ""), Bad: true})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		v.Error = h.panelRefusal(fnRotate, err, v.Name, "")
		h.renderManage(w, r, v, id, http.StatusOK)
		return
	}
	c := createdFrom(t)
	secret := newSecret{token: c, expiresText: h.showExpiry(c.ExpiresAt), rotated: true}
	if grace > 0 {
		secret.grace = h.showTime(h.cfg.Now().Add(grace))
	}
	h.showSecret(w, r, id, secret)
}

// setTokenFeatures changes a token's features from the Manage page: the
// features checked, or full access when the user chose it. Limited with
// none checked is refused, so that unchecking every box never widens a
// token to full access by accident.
func (h *handler) setTokenFeatures(w http.ResponseWriter, r *http.Request, v *view, id string) {
	v.Name = r.PostForm.Get("name")
	v.Features = h.featureChoices(r.PostForm["feature"])
	access := r.PostForm.Get("access")
	v.FullAccess = access == "full"
	err := checkName("name", v.Name)
	var features []string
	if err == nil {
		features, err = parseFeatures(r.PostForm)
	}
	if err == nil {
		switch {
		case access == "full":
			features = nil
		case access != "limited":
			err = events.Errorf(events.Invalid, "Choose full access, or access limited to the features checked.")
		case len(features) == 0:
			err = events.Errorf(events.Invalid, "Check at least one feature, or choose full access.")
		}
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
		defer cancel()
		err = h.cfg.Ledger.SetFeatures(ctx, commands.SetFeatures{Account: v.Account, Name: v.Name, Features: features, Actor: accountPrincipal(v.Account, r).actor})
	}
	if err != nil {
		v.Error = h.panelRefusal(fnSetFeatures, err, v.Name, "")
		h.renderManage(w, r, v, id, http.StatusOK)
		return
	}
	msg := fmt.Sprintf("The API token “%s” now has full access.", v.Name)
	if len(features) > 0 {
		msg = fmt.Sprintf("The API token “%s” may now use: %s.", v.Name, strings.Join(features, ", "))
	}
	h.sessions.setFlash(id, flash{Text: msg})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// panelRefusal words a refusal as the API does; internal errors are logged
// and shown without detail.
func (h *handler) panelRefusal(fn string, err error, name, newName string) string {
	if events.ErrorCode(err) == events.Internal {
		h.cfg.Log.Error("panel change failed", "function", fn, "err", err)
	}
	_, msg := refusal(fn, err, name, newName)
	return msg
}
