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
	"tokenledger/projections"
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
	writeJSON(w, status, e.withMetadata())
}

// withMetadata gives e the empty metadata object UAPI sends when there is
// nothing to say in it.
func (e envelope) withMetadata() envelope {
	if e.Metadata == nil {
		e.Metadata = map[string]any{}
	}
	return e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// replier writes a UAPI reply in the form of the route that was called:
// the envelope itself for /execute/, cPanel's wrapper around it for
// /json-api/cpanel (jsonapi.go).
type replier func(w http.ResponseWriter, status int, e envelope)

func isUAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/execute/") }

// replierFor is how a refusal of r before any handler runs is written: as
// UAPI for either UAPI route, nil for the rest.
func replierFor(r *http.Request) replier {
	switch {
	case isUAPI(r):
		return writeUAPI
	case isJSONAPI(r):
		return jsonAPIReplier(r)
	}
	return nil
}

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
		fnSetFeatures: "The API token “%[1]s” does not exist.",
		fnRename:      "The API token “%[1]s” does not exist.",
		fnRevoke:      "The API token “%[1]s” does not exist.",
		fnRotate:      "The API token “%[1]s” does not exist.",
	}},
	events.Duplicate: {status: http.StatusOK, words: map[string]string{
		fnCreate: "A conflicting API token with the name “%[1]s” already exists.",
		fnRename: "A conflicting API token with the name “%[2]s” already exists.",
	}},
	events.Conflict: {status: http.StatusOK},
	// A command the acting token has no right to give: the credential is
	// good, the right is missing.
	events.Unauthorized: {status: http.StatusForbidden},
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
	fnCreate        = "create_full_access"
	fnCreateLimited = "create_limited_access" // not cPanel's: a token with features, in cPanel's parameter style
	fnList          = "list"
	fnRename        = "rename"
	fnRevoke        = "revoke"
	fnRotate        = "rotate"       // not cPanel's: a new secret for a token, see Ledger.Rotate
	fnSetFeatures   = "set_features" // not cPanel's: change a token's features, see Ledger.SetFeatures
)

// TokensFeature is the feature a token with limited access needs to call
// any Tokens function; a token with full access has every feature. Named
// after cPanel's own feature for the "Manage API Tokens" page.
const TokensFeature = "apitokens"

// call is one UAPI call: who makes it and with what parameters. A function
// sets name and newName to the names an error message should quote, and
// metadata to what its reply's metadata says.
type call struct {
	who           principal
	form          url.Values
	now           time.Time
	name, newName string
	metadata      map[string]any
}

// function is one Tokens function: what it does, whether it changes
// anything (a read-only token may call only those that do not), and which
// of the parameters that set what a token may do it takes (limiting).
type function struct {
	run      func(*handler, context.Context, *call) (any, error)
	write    bool
	limiting []string
}

var functions = map[string]function{
	fnCreate:        {run: (*handler).createFullAccess, write: true, limiting: []string{"readonly"}},
	fnCreateLimited: {run: (*handler).createLimitedAccess, write: true, limiting: []string{"feature", "readonly"}},
	fnList:          {run: (*handler).list},
	fnRename:        {run: (*handler).rename, write: true},
	fnRevoke:        {run: (*handler).revoke, write: true},
	fnRotate:        {run: (*handler).rotate, write: true},
	fnSetFeatures:   {run: (*handler).setFeatures, write: true, limiting: []string{"feature", "full_access"}},
}

// need is what a token must have to call fn: the Tokens feature, and the
// right to write for a function that changes anything.
func need(fn string) projections.Need {
	return projections.Need{Features: []string{TokensFeature}, Write: functions[fn].write}
}

// execute serves /execute/Tokens/<function>, cPanel's UAPI over HTTP.
func (h *handler) execute(w http.ResponseWriter, r *http.Request) {
	module, fn, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/execute/"), "/")
	h.serveUAPI(w, r, writeUAPI, func(principal, url.Values) (string, int, string) {
		return lookup(module, fn)
	})
}

// lookup finds the function fn of module, or says why not with an HTTP
// status and message.
func lookup(module, fn string) (string, int, string) {
	if module != "Tokens" || functions[fn].run == nil {
		return "", http.StatusNotFound, fmt.Sprintf("The function “%s” does not exist in the module “%s”.", clip(fn), clip(module))
	}
	return fn, 0, ""
}

// serveUAPI serves one UAPI call on either route, answering through reply.
// resolve names the function to call once the caller is known and the
// parameters are read, or refuses the call with a status and message.
func (h *handler) serveUAPI(w http.ResponseWriter, r *http.Request, reply replier, resolve func(who principal, form url.Values) (fn string, status int, msg string)) {
	refuse := func(status int, msg string) { reply(w, status, envelope{Errors: []string{msg}}) }
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		refuse(http.StatusMethodNotAllowed, "Call UAPI functions with GET or POST.")
		return
	}
	if crossSite(r) {
		refuse(http.StatusForbidden, "UAPI calls from another site's pages are refused.")
		return
	}
	if !h.ready() {
		// A table that has not caught up may lack a revoke, and holds
		// events whose signatures are checked only once it has.
		w.Header().Set("Retry-After", "5")
		refuse(http.StatusServiceUnavailable, "The token ledger is catching up with its event stream; try again shortly.")
		return
	}
	who, wait, ok := h.authenticate(r)
	if !ok {
		unauthorized(w, wait, reply)
		return
	}
	if !readForm(w, r, func(w http.ResponseWriter) {
		reply(w, http.StatusBadRequest, envelope{Errors: []string{"The request's parameters cannot be read."}})
	}) {
		return
	}
	fn, status, msg := resolve(who, r.Form)
	if status != 0 {
		refuse(status, msg)
		return
	}
	if !h.ready() {
		refuse(http.StatusServiceUnavailable, "This server is catching up with the ledger; try again in a moment.")
		return
	}
	switch status, msg := h.authorize(r, who, fn); status {
	case 0:
	case http.StatusUnauthorized:
		unauthorized(w, 0, reply)
		return
	default:
		h.metrics.call(fn, status)
		refuse(status, msg)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), commandTimeout)
	defer cancel()
	c := &call{who: who, form: r.Form, now: h.cfg.Now()}
	var data any
	err := checkLimiting(fn, r.Form)
	if err == nil {
		data, err = functions[fn].run(h, ctx, c)
	}
	if err != nil {
		status, msg := refusal(fn, err, c.name, c.newName)
		if events.ErrorCode(err) == events.Internal {
			h.cfg.Log.Error("UAPI call failed", "function", fn, "account", who.account, "err", err)
		}
		h.metrics.call(fn, status)
		refuse(status, msg)
		return
	}
	h.metrics.call(fn, http.StatusOK)
	reply(w, http.StatusOK, envelope{Status: 1, Data: data, Metadata: c.metadata})
}

// unauthorized refuses a request without a valid credential. An account
// locked after repeated failed logins is refused the same way (the contract
// says 401 for any bad credential), with how long to wait in the message and
// in Retry-After.
func unauthorized(w http.ResponseWriter, wait time.Duration, reply replier) {
	w.Header().Set("WWW-Authenticate", `Basic realm="tokenledger", charset="UTF-8"`)
	msg := "Access denied: send “Authorization: cpanel ACCOUNT:TOKEN” with a valid API token of the account, or the account's password."
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(waitSeconds(wait), 10))
		msg = "Access denied: " + waitMessage(wait)
	}
	reply(w, http.StatusUnauthorized, envelope{Errors: []string{msg}})
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

// created is create_full_access's data, and create_limited_access's and
// rotate's. Features and ReadOnly are not cPanel's: new fields, with
// readonly sent only when set, as cPanel's list sends it.
type created struct {
	Name          string   `json:"name"`
	Token         string   `json:"token"`
	CreateTime    int64    `json:"create_time"`
	ExpiresAt     *int64   `json:"expires_at"`
	HasFullAccess int      `json:"has_full_access"`
	Features      []string `json:"features"` // none (an empty array) for full access
	ReadOnly      int      `json:"readonly,omitempty"`
}

// createdFrom is what a create or a rotation shows of its token, from the
// ledger's answer alone: a rotation keeps the token's creation, expiry and
// access.
func createdFrom(t commands.Created) created {
	k := t.Token
	return created{Name: k.Name, Token: t.Secret, CreateTime: k.Created.Unix(), ExpiresAt: k.ExpiresAt,
		HasFullAccess: flag(len(k.Features) == 0), Features: nonNil(k.Features), ReadOnly: flag(k.ReadOnly)}
}

// nonNil is features as UAPI lists them: an empty array for none.
func nonNil(features []string) []string {
	if features == nil {
		return []string{}
	}
	return features
}

// listed is one token in list's data, with cPanel's fields first. Status,
// LastUsed and AllowedIPs are not cPanel's: new fields that cPanel's scripts
// ignore.
type listed struct {
	Name          string   `json:"name"`
	CreateTime    int64    `json:"create_time"`
	ExpiresAt     *int64   `json:"expires_at"`
	HasFullAccess int      `json:"has_full_access"`
	Features      []string `json:"features"`           // none (an empty array) for full access, as cPanel lists it
	ReadOnly      int      `json:"readonly,omitempty"` // 1 for a read-only token, as cPanel 11.137 lists it
	Status        string   `json:"status"`
	LastUsed      *int64   `json:"last_used"`
	AllowedIPs    []string `json:"allowed_ips,omitempty"`
}

func (h *handler) createFullAccess(ctx context.Context, c *call) (any, error) {
	return h.createToken(ctx, c, nil)
}

// createLimitedAccess creates a token with the features named feature-1,
// feature-2, … (at least one): cPanel's Tokens module has no such
// function, so it takes create_full_access's parameters and cPanel's
// numbered style for the features.
func (h *handler) createLimitedAccess(ctx context.Context, c *call) (any, error) {
	c.name = c.form.Get("name")
	features, err := parseFeatures(c.form)
	if err != nil {
		return nil, err
	}
	if len(features) == 0 {
		return nil, events.Errorf(events.Invalid, "Provide at least one “feature-N” parameter: a token without features has full access (create_full_access).")
	}
	return h.createToken(ctx, c, features)
}

// createToken creates a token with features (none: full access) from the
// parameters both create functions take.
func (h *handler) createToken(ctx context.Context, c *call, features []string) (any, error) {
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
	readOnly, err := parseFlag(c.form, "readonly")
	if err != nil {
		return nil, err
	}
	t, err := h.cfg.Ledger.Create(ctx, commands.Create{Account: c.who.account, Name: c.name, ExpiresAt: expires, AllowedIPs: allowed,
		Features: features, ReadOnly: readOnly, Actor: c.who.actor})
	if err != nil {
		return nil, err
	}
	return createdFrom(t), nil
}

// setFeatures replaces a token's features with feature-1, feature-2, …, or
// gives it full access again with full_access=1 (and no feature-N): a
// call that names no feature never widens a token by accident.
func (h *handler) setFeatures(ctx context.Context, c *call) (any, error) {
	c.name = c.form.Get("name")
	if err := checkName("name", c.name); err != nil {
		return nil, err
	}
	features, err := parseFeatures(c.form)
	if err != nil {
		return nil, err
	}
	full, err := parseFlag(c.form, "full_access")
	if err != nil {
		return nil, err
	}
	switch {
	case full && len(features) > 0:
		return nil, events.Errorf(events.Invalid, "“full_access=1” gives the token every feature: give it without “feature-N” parameters.")
	case !full && len(features) == 0:
		return nil, events.Errorf(events.Invalid, "Provide “feature-N” parameters, or “full_access=1” to give the token full access again.")
	}
	err = h.cfg.Ledger.SetFeatures(ctx, commands.SetFeatures{Account: c.who.account, Name: c.name, Features: features, Actor: c.who.actor})
	if err != nil {
		return nil, err
	}
	// The reply is the token as list shows it, status and last use with it,
	// which only the read side knows; the table has applied the change.
	for _, r := range h.cfg.Table.List(c.who.account, c.now) {
		if r.Name == c.name {
			return listedFrom(r), nil
		}
	}
	return nil, events.Errorf(events.NotFound, "The API token “%s” does not exist.", c.name)
}

// list answers as cPanel's Tokens::list does, metadata and all: cPanel
// marks its reply as transformed by post-processing.
func (h *handler) list(ctx context.Context, c *call) (any, error) {
	rows := h.cfg.Table.List(c.who.account, c.now)
	out := make([]listed, len(rows))
	for i, r := range rows {
		out[i] = listedFrom(r)
	}
	c.metadata = map[string]any{"transformed": 1}
	return out, nil
}

// listedFrom is a row of the table as list shows it.
func listedFrom(r projections.Row) listed {
	return listed{Name: r.Name, CreateTime: r.Created.Unix(), ExpiresAt: r.ExpiresAt, HasFullAccess: flag(r.FullAccess),
		Features: nonNil(r.Features), ReadOnly: flag(r.ReadOnly), Status: r.Status, LastUsed: r.LastUsed, AllowedIPs: r.AllowedIPs}
}

// flag is a boolean as UAPI writes one.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
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

// revoke answers as cPanel documents Tokens::revoke: 1 when "the system
// removed the API token or the API token doesn't exist", so a cleanup script
// that revokes twice succeeds. The names that exist are revoked together or
// not at all. (The CLI and the NATS service stay strict: there an unknown
// name is an error.)
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
	if err := h.revokeExisting(ctx, c.who, names); err != nil {
		return nil, err
	}
	return 1, nil
}

// revokeExisting revokes, in one command, those of names that the account
// has live tokens of, and takes the rest as revoked already.
//
// The names come from this node's table; the ledger decides on the stream
// itself. When it refuses some of them as unknown, another node has revoked
// or renamed those tokens and this node's table has not applied it yet: the
// refusal names every one (events.ErrorNames), and revokeExisting revokes
// the rest. Each round revokes fewer names, so the rounds end.
func (h *handler) revokeExisting(ctx context.Context, who principal, names []string) error {
	live := make(map[string]bool)
	for _, r := range h.cfg.Table.List(who.account, h.cfg.Now()) {
		live[r.Name] = true
	}
	var existing []string
	for _, n := range names {
		if live[n] && !slices.Contains(existing, n) {
			existing = append(existing, n)
		}
	}
	for len(existing) > 0 {
		err := h.cfg.Ledger.Revoke(ctx, commands.Revoke{Account: who.account, Names: existing, Actor: who.actor})
		if events.ErrorCode(err) != events.NotFound {
			return err
		}
		gone := events.ErrorNames(err)
		left := slices.DeleteFunc(slices.Clone(existing), func(n string) bool { return slices.Contains(gone, n) })
		if len(left) == len(existing) {
			return err
		}
		existing = left
	}
	return nil
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
	return createdFrom(t), nil
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

// parseFlag reads a UAPI boolean: empty or 0 is false, 1 is true, and
// anything else is refused rather than guessed at.
func parseFlag(form url.Values, key string) (bool, error) {
	switch v := form.Get(key); v {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	default:
		return false, events.Errorf(events.Invalid, "The “%s” value “%s” must be 0 or 1.", key, clip(v))
	}
}

// parseFeatures reads feature and feature-1, feature-2, …: each a feature
// name, at most events.MaxFeatures, returned sorted without repeats.
func parseFeatures(form url.Values) ([]string, error) {
	list := numbered(form, "feature")
	for _, f := range list {
		if events.CheckFeature(f) != nil {
			return nil, events.Errorf(events.Invalid, "The “feature” value “%s” is not a valid feature name: use 1 to %d lowercase letters (a-z), numbers (0-9), dots (.), colons (:), dashes (-) and underscores (_), starting with a letter or number.",
				clip(f), events.MaxFeatureLen)
		}
	}
	features, err := events.ParseFeatures(list)
	if err != nil {
		return nil, events.Errorf(events.Invalid, "Give at most %d “feature” values.", events.MaxFeatures)
	}
	return features, nil
}

// limitingParams are the parameters that say what a token may do, by
// their names without a -N: each function takes the ones it lists, and a
// call that gives another (WHM's acl-N among them) is refused, never
// ignored, so that no client that asked for less gets more.
var limitingParams = []string{"feature", "features", "readonly", "read_only", "full_access", "has_full_access", "acl", "acls"}

// checkLimiting refuses a call to fn with a limiting parameter fn does not
// take, or one misnamed (feature-x).
func checkLimiting(fn string, form url.Values) error {
	for k := range form {
		base, num, numbered := strings.Cut(k, "-")
		if !slices.Contains(limitingParams, base) {
			continue
		}
		if !slices.Contains(functions[fn].limiting, base) {
			if fn == fnCreate && base == "feature" {
				return events.Errorf(events.Invalid, "Tokens::create_full_access gives full access and takes no “%s”: call Tokens::create_limited_access for a token with features.", clip(k))
			}
			return events.Errorf(events.Invalid, "Tokens::%s does not take the parameter “%s”.", fn, clip(k))
		}
		if n, err := strconv.Atoi(num); numbered && (base != "feature" || err != nil || n < 0) {
			return events.Errorf(events.Invalid, "The parameter “%s” is not understood: name features “feature-1”, “feature-2”, ….", clip(k))
		}
	}
	return nil
}

// parseWhitelist reads create_full_access's address allow-list, named as WHM
// names it: whitelist_ip (also repeated) and whitelist_ip-0, whitelist_ip-1,
// …; empty values are skipped. None means any address. Repeats are kept, and
// counted against the limit, as given; the ledger drops them.
func parseWhitelist(form url.Values) ([]events.Prefix, error) {
	var out []events.Prefix
	for _, v := range numbered(form, "whitelist_ip") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		p, err := events.ParsePrefix(v)
		if err != nil {
			return nil, events.Errorf(events.Invalid, "The “whitelist_ip” value “%s” is not an IP address or a CIDR range.", clip(v))
		}
		out = append(out, p)
	}
	if len(out) > events.MaxAllowedIPs {
		return nil, events.Errorf(events.Invalid, "Give at most %d “whitelist_ip” values.", events.MaxAllowedIPs)
	}
	return out, nil
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
// values are Unix seconds, up to the end of the year 9999 (the ledger's
// own bound). An instant before now is refused; now itself is
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
	if at > events.MaxExpiresAt {
		return nil, events.Errorf(events.Invalid, "The “expires_at” value “%s” is too far in the future: the latest is %d (the end of the year 9999 UTC).", clip(v), int64(events.MaxExpiresAt))
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
