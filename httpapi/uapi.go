package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"tokenledger/commands"
	"tokenledger/events"
)

// envelope is UAPI's reply, as cPanel's /execute/ sends it. Scripts look at
// status first, then errors or data.
type envelope struct {
	Status   int            `json:"status"`
	Errors   []string       `json:"errors"`
	Messages []string       `json:"messages"`
	Warnings []string       `json:"warnings"`
	Metadata map[string]any `json:"metadata"`
	Data     any            `json:"data"`
}

func writeUAPI(w http.ResponseWriter, status int, e envelope) {
	if e.Metadata == nil {
		e.Metadata = map[string]any{}
	}
	b, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func isUAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/execute/") }

// refusals is the one table from an error code to what HTTP says of it: the
// status (a refused UAPI call is 200 with status 0, as in cPanel) and, by
// function, cPanel's wording, where %[1]s is the token's name and %[2]s the
// new name. A code with no wording for the function keeps the ledger's own
// readable message. The panel words its refusals from the same table.
var refusals = map[string]struct {
	status int
	words  map[string]string
}{
	events.Invalid: {status: http.StatusOK},
	events.NotFound: {status: http.StatusOK, words: map[string]string{
		fnRename: "The API token “%[1]s” does not exist.",
		fnRevoke: "The API token “%[1]s” does not exist.",
		fnRotate: "The API token “%[1]s” does not exist.",
	}},
	events.Duplicate: {status: http.StatusOK, words: map[string]string{
		fnCreate: "A conflicting API token with the name “%[1]s” already exists.",
		fnRename: "A conflicting API token with the name “%[2]s” already exists.",
	}},
	events.Conflict:     {status: http.StatusOK},
	events.Unauthorized: {status: http.StatusUnauthorized},
	events.Unavailable:  {status: http.StatusServiceUnavailable},
	events.Internal:     {status: http.StatusInternalServerError},
}

// refusal is the HTTP status and readable message for err, refused while
// doing fn to the token name (renaming it to newName).
func refusal(fn string, err error, name, newName string) (int, string) {
	r, ok := refusals[events.ErrorCode(err)]
	if !ok {
		r = refusals[events.Internal]
	}
	if words, ok := r.words[fn]; ok {
		return r.status, fmt.Sprintf(words, name, newName)
	}
	return r.status, events.ErrorMessage(err)
}

// The Tokens module's functions, by the names cPanel gives them.
const (
	fnCreate = "create_full_access"
	fnList   = "list"
	fnRename = "rename"
	fnRevoke = "revoke"
	fnRotate = "rotate" // not cPanel's: a new secret for a token, see Ledger.Rotate
)

// call is one UAPI call: who makes it and with what parameters. A function
// sets name and newName to the names an error message should quote.
type call struct {
	who           principal
	form          url.Values
	now           time.Time
	name, newName string
}

var functions = map[string]func(*handler, context.Context, *call) (any, error){
	fnCreate: (*handler).createFullAccess,
	fnList:   (*handler).list,
	fnRename: (*handler).rename,
	fnRevoke: (*handler).revoke,
	fnRotate: (*handler).rotate,
}

// execute serves /execute/Tokens/<function>, cPanel's UAPI over HTTP.
func (h *handler) execute(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeUAPI(w, http.StatusMethodNotAllowed, envelope{Errors: []string{"Call UAPI functions with GET or POST."}})
		return
	}
	if crossSite(r) {
		writeUAPI(w, http.StatusForbidden, envelope{Errors: []string{"UAPI calls from another site's pages are refused."}})
		return
	}
	if !h.ready() {
		// A table that has not caught up may lack a revoke, and holds
		// events whose signatures are checked only once it has.
		w.Header().Set("Retry-After", "5")
		writeUAPI(w, http.StatusServiceUnavailable, envelope{Errors: []string{"The token ledger is catching up with its event stream; try again shortly."}})
		return
	}
	who, wait, ok := h.authenticate(r)
	if !ok {
		unauthorized(w, wait)
		return
	}
	module, fn, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/execute/"), "/")
	f := functions[fn]
	if module != "Tokens" || f == nil {
		writeUAPI(w, http.StatusNotFound, envelope{Errors: []string{
			fmt.Sprintf("The function “%s” does not exist in the module “%s”.", clip(fn), clip(module))}})
		return
	}
	if !readForm(w, r, func(w http.ResponseWriter) {
		writeUAPI(w, http.StatusBadRequest, envelope{Errors: []string{"The request's parameters cannot be read."}})
	}) {
		return
	}
	if !h.ready() {
		writeUAPI(w, http.StatusServiceUnavailable, envelope{Errors: []string{"This server is catching up with the ledger; try again in a moment."}})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
	defer cancel()
	c := &call{who: who, form: r.Form, now: h.cfg.Now()}
	data, err := f(h, ctx, c)
	if err != nil {
		status, msg := refusal(fn, err, c.name, c.newName)
		if events.ErrorCode(err) == events.Internal {
			h.cfg.Log.Error("UAPI call failed", "function", fn, "account", who.account, "err", err)
		}
		h.metrics.call(fn, status)
		writeUAPI(w, status, envelope{Errors: []string{msg}})
		return
	}
	h.metrics.call(fn, http.StatusOK)
	writeUAPI(w, http.StatusOK, envelope{Status: 1, Data: data})
}

// unauthorized refuses a request without a valid credential. An account
// locked after repeated failed logins is refused the same way (the contract
// says 401 for any bad credential), with how long to wait in the message and
// in Retry-After.
func unauthorized(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("WWW-Authenticate", `Basic realm="tokenledger", charset="UTF-8"`)
	msg := "Access denied: send “Authorization: cpanel ACCOUNT:TOKEN” with a valid API token of the account, or the account's password."
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(waitSeconds(wait), 10))
		msg = "Access denied: " + waitMessage(wait)
	}
	writeUAPI(w, http.StatusUnauthorized, envelope{Errors: []string{msg}})
}

// crossSite says whether a browser sent the request from another site's
// page. A browser may hold Basic credentials for this origin and would send
// them along, and UAPI allows changes by GET, so such requests are refused;
// scripts send no Sec-Fetch-Site at all.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return false
	}
	return true
}

// created is create_full_access's data.
type created struct {
	Name          string `json:"name"`
	Token         string `json:"token"`
	CreateTime    int64  `json:"create_time"`
	ExpiresAt     *int64 `json:"expires_at"`
	HasFullAccess int    `json:"has_full_access"`
}

// listed is one token in list's data. LastUsed and AllowedIPs are not
// cPanel's: new fields that cPanel's scripts ignore.
type listed struct {
	Name          string   `json:"name"`
	CreateTime    int64    `json:"create_time"`
	ExpiresAt     *int64   `json:"expires_at"`
	HasFullAccess int      `json:"has_full_access"`
	Status        string   `json:"status"`
	LastUsed      *int64   `json:"last_used"`
	AllowedIPs    []string `json:"allowed_ips,omitempty"`
}

func (h *handler) createFullAccess(ctx context.Context, c *call) (any, error) {
	c.name = c.form.Get("name")
	if err := checkName("name", c.name); err != nil {
		return nil, err
	}
	expires, err := parseExpiresAt(c.form.Get("expires_at"), c.now, h.cfg.Location)
	if err != nil {
		return nil, err
	}
	allowed, err := parseWhitelist(c.form)
	if err != nil {
		return nil, err
	}
	t, err := h.cfg.Ledger.Create(ctx, commands.Create{Account: c.who.account, Name: c.name, ExpiresAt: expires, AllowedIPs: allowed, Actor: c.who.actor})
	if err != nil {
		return nil, err
	}
	d := t.Event.Data.(events.TokenCreated)
	return created{Name: d.Name, Token: t.Secret, CreateTime: t.Event.At.Unix(), ExpiresAt: d.ExpiresAt, HasFullAccess: 1}, nil
}

func (h *handler) list(ctx context.Context, c *call) (any, error) {
	rows := h.cfg.Table.List(c.who.account, c.now)
	out := make([]listed, len(rows))
	for i, r := range rows {
		out[i] = listed{Name: r.Name, CreateTime: r.Created.Unix(), ExpiresAt: r.ExpiresAt, HasFullAccess: 1, Status: r.Status,
			LastUsed: r.LastUsed, AllowedIPs: r.AllowedIPs}
	}
	return out, nil
}

func (h *handler) rename(ctx context.Context, c *call) (any, error) {
	c.name, c.newName = c.form.Get("name"), c.form.Get("new_name")
	if err := checkName("name", c.name); err != nil {
		return nil, err
	}
	if err := checkName("new_name", c.newName); err != nil {
		return nil, err
	}
	if c.name == c.newName {
		return nil, events.Errorf(events.Invalid, "“new_name” must be a different value from “name”.")
	}
	return nil, h.cfg.Ledger.Rename(ctx, commands.Rename{Account: c.who.account, Name: c.name, NewName: c.newName, Actor: c.who.actor})
}

func (h *handler) revoke(ctx context.Context, c *call) (any, error) {
	names := revokeNames(c.form)
	if len(names) == 0 {
		return nil, events.Errorf(events.Invalid, "Provide the “name” parameter.")
	}
	for _, n := range names {
		c.name = n
		if err := checkName("name", n); err != nil {
			return nil, err
		}
	}
	err := h.cfg.Ledger.Revoke(ctx, commands.Revoke{Account: c.who.account, Names: names, Actor: c.who.actor})
	if events.ErrorCode(err) == events.NotFound {
		c.name = h.firstUnknown(c.who.account, names, c.now)
	}
	if err != nil {
		return nil, err
	}
	return 1, nil
}

// rotate gives a live token a new secret, shown once as create shows one;
// the old secret keeps working for grace seconds (none by default).
func (h *handler) rotate(ctx context.Context, c *call) (any, error) {
	c.name = c.form.Get("name")
	if err := checkName("name", c.name); err != nil {
		return nil, err
	}
	grace, err := parseGrace(c.form.Get("grace"))
	if err != nil {
		return nil, err
	}
	t, err := h.cfg.Ledger.Rotate(ctx, commands.Rotate{Account: c.who.account, Name: c.name, Grace: grace, Actor: c.who.actor})
	if err != nil {
		return nil, err
	}
	return h.rotated(c.who.account, t, c.now), nil
}

// rotated is what a rotation shows: the token as it stands, with its new
// secret. The reply to Rotate comes after the table has applied it.
func (h *handler) rotated(account string, t commands.Created, now time.Time) created {
	out := created{Token: t.Secret, CreateTime: t.Event.At.Unix(), HasFullAccess: 1}
	if d, ok := t.Event.Data.(events.TokenRotated); ok {
		out.Name = d.Name
	}
	for _, r := range h.cfg.Table.List(account, now) {
		if r.TokenID == t.Event.TokenID {
			out.Name, out.CreateTime, out.ExpiresAt = r.Name, r.Created.Unix(), r.ExpiresAt
			break
		}
	}
	return out
}

// maxGrace is the longest an old secret may keep working after a rotation.
const maxGrace = 366 * 24 * time.Hour

// parseGrace reads rotate's grace: seconds the old secret keeps working;
// empty or 0 is none.
func parseGrace(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > int64(maxGrace/time.Second) {
		return 0, events.Errorf(events.Invalid, "The “grace” value “%s” is not a number of seconds from 0 to %d.", clip(v), int64(maxGrace/time.Second))
	}
	return time.Duration(n) * time.Second, nil
}

// parseWhitelist reads create_full_access's address allow-list, named as WHM
// names it: whitelist_ip (also repeated) and whitelist_ip-0, whitelist_ip-1,
// …; empty values are skipped. None means any address.
func parseWhitelist(form url.Values) ([]string, error) {
	var out []string
	for _, v := range numbered(form, "whitelist_ip") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		if _, err := events.ParsePrefixes([]string{v}); err != nil {
			return nil, events.Errorf(events.Invalid, "The “whitelist_ip” value “%s” is not an IP address or a CIDR range.", clip(v))
		}
		out = append(out, v)
	}
	if len(out) > events.MaxAllowedIPs {
		return nil, events.Errorf(events.Invalid, "Give at most %d “whitelist_ip” values.", events.MaxAllowedIPs)
	}
	return out, nil
}

// firstUnknown is the first of names that the account has no live token of,
// to say which one made a revoke fail.
func (h *handler) firstUnknown(account string, names []string, now time.Time) string {
	live := make(map[string]bool)
	for _, r := range h.cfg.Table.List(account, now) {
		live[r.Name] = true
	}
	for _, n := range names {
		if !live[n] {
			return n
		}
	}
	return names[0]
}

// revokeNames reads cPanel's ways of naming several tokens: name (also
// repeated) and name-0, name-1, … in the order of their numbers.
func revokeNames(form url.Values) []string { return numbered(form, "name") }

// numbered reads a UAPI list parameter: key (also repeated), then key-0,
// key-1, … in the order of their numbers.
func numbered(form url.Values, key string) []string {
	names := slices.Clone(form[key])
	type numbered struct {
		n    int
		name string
	}
	var more []numbered
	for k, vs := range form {
		num, ok := strings.CutPrefix(k, key+"-")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 {
			continue
		}
		for _, v := range vs {
			more = append(more, numbered{n, v})
		}
	}
	slices.SortStableFunc(more, func(a, b numbered) int { return a.n - b.n })
	for _, m := range more {
		names = append(names, m.name)
	}
	return names
}

// checkName refuses a missing or malformed token name with a message that
// names the parameter and the rule.
func checkName(param, v string) error {
	if v == "" {
		return events.Errorf(events.Invalid, "Provide the “%s” parameter.", param)
	}
	if events.CheckName(v) != nil {
		return events.Errorf(events.Invalid, "The “%s” value “%s” is not a valid API token name: use up to %d letters (a-z, A-Z), numbers (0-9), dashes (-) and underscores (_).",
			param, clip(v), events.MaxNameLen)
	}
	return nil
}

// parseExpiresAt reads cPanel's expires_at: empty or 0 is no expiry, other
// values are Unix seconds. An instant before now is refused; now itself is
// accepted, as in cPanel, and kept as now+1s: the ledger takes only expiries
// in the future, and a token created to expire "now" is dead either way.
func parseExpiresAt(v string, now time.Time, loc *time.Location) (*int64, error) {
	if v == "" || v == "0" {
		return nil, nil
	}
	at, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, events.Errorf(events.Invalid, "The “expires_at” value “%s” is not a Unix time in seconds.", clip(v))
	}
	if at < now.Unix() {
		return nil, events.Errorf(events.Invalid, "The expiration time (%s) is in the past.", time.Unix(at, 0).In(loc).Format(time.RFC3339))
	}
	at = max(at, now.Unix()+1)
	return &at, nil
}

// clip keeps an echoed value short, cut between characters, not inside one.
func clip(s string) string {
	if len(s) <= 60 {
		return s
	}
	n := 60
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
