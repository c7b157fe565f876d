package natsapi

import (
	"encoding/json"
	"strconv"
	"strings"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/projections"
)

// Requests and replies as they travel on NATS.

// CreateRequest asks for a token (tokens.cmd.create). A command refuses
// members it does not know (see decode), so that a misspelt limit such as
// "feature" or "read_only" is never dropped, leaving a token that can do
// more than was asked.
type CreateRequest struct {
	Account    string        `json:"account"`
	Name       string        `json:"name"`
	ExpiresAt  *int64        `json:"expires_at"`
	AllowedIPs []string      `json:"allowed_ips,omitempty"`
	Features   []string      `json:"features,omitempty"` // what the token may do; none: full access
	ReadOnly   bool          `json:"readonly,omitempty"` // it may only do what changes nothing
	Actor      *events.Actor `json:"actor,omitempty"`
}

// RotateRequest asks for a new secret for a token (tokens.cmd.rotate); the
// old one keeps working for GraceSeconds.
type RotateRequest struct {
	Account      string        `json:"account"`
	Name         string        `json:"name"`
	GraceSeconds int64         `json:"grace_seconds,omitempty"`
	Actor        *events.Actor `json:"actor,omitempty"`
}

// SetAllowedIPsRequest replaces a token's allow-list (tokens.cmd.set-allowed-ips).
type SetAllowedIPsRequest struct {
	Account    string        `json:"account"`
	Name       string        `json:"name"`
	AllowedIPs []string      `json:"allowed_ips"`
	Actor      *events.Actor `json:"actor,omitempty"`
}

// SetFeaturesRequest replaces a token's features (tokens.cmd.set-features):
// [] gives it full access again. Features must be given, as a list: a
// request without it, or with null, is refused rather than read as full
// access.
type SetFeaturesRequest struct {
	Account  string        `json:"account"`
	Name     string        `json:"name"`
	Features []string      `json:"features"`
	Actor    *events.Actor `json:"actor,omitempty"`
}

// setFeaturesJSON is SetFeaturesRequest as the service reads it, to tell
// features not given from features given as [].
type setFeaturesJSON struct {
	Account  string        `json:"account"`
	Name     string        `json:"name"`
	Features *[]string     `json:"features"`
	Actor    *events.Actor `json:"actor,omitempty"`
}

// RenameRequest asks for a rename (tokens.cmd.rename).
type RenameRequest struct {
	Account string        `json:"account"`
	Name    string        `json:"name"`
	NewName string        `json:"new_name"`
	Actor   *events.Actor `json:"actor,omitempty"`
}

// RevokeRequest asks for a revoke of one or more names (tokens.cmd.revoke).
type RevokeRequest struct {
	Account string        `json:"account"`
	Names   []string      `json:"names"`
	Actor   *events.Actor `json:"actor,omitempty"`
}

// ListRequest asks for an account's live tokens, oldest first
// (tokens.cmd.list), a page at a time, since a NATS message holds at most
// the server's max_payload (1 MiB by default: some 6,000 tokens without
// allow-lists).
//
// The first page is {"account":"bob","limit":1000}; each reply that leaves
// tokens out says where to go on, {"ok":true,"tokens":[...],"next":"<token_id>"},
// and the next page is {"account":"bob","after":"<that token_id>","limit":1000};
// the last reply has no "next". A page may hold fewer than limit tokens, to
// stay within one message. Tokens created meanwhile come on later pages; if
// the token a page ended with is revoked before the next is asked for, that
// request is refused as a conflict and the listing starts again.
//
// {"account":"bob"} alone, the form before paging, is answered with every
// token in one reply, or refused (invalid) when they exceed one message.
type ListRequest struct {
	Account string `json:"account"`
	After   string `json:"after,omitempty"` // the previous reply's "next"
	Limit   int    `json:"limit,omitempty"` // most tokens in the reply; 0: as many as one message holds
}

// ListPageSize is the limit Client asks with: a page of about 200 KB.
const ListPageSize = 1000

// ValidateRequest asks whether a secret is a valid token (tokens.validate).
// A body that is the bare secret is accepted too.
//
// A request may ask more of the token: Feature and Features name what the
// use needs (a limited token without one of them is refused as
// feature_denied; a token with full access has them all), and Write says
// that the use changes something (a read-only token is refused as
// read_only). A request with a member the service does not know, or a
// feature name that is not one (an empty one too), is malformed: a check
// that the service cannot make is refused, never skipped.
type ValidateRequest struct {
	Token    string   `json:"token"`
	Account  string   `json:"account,omitempty"`
	IP       string   `json:"ip,omitempty"` // the address the token is used from, for allow-lists
	Feature  string   `json:"feature,omitempty"`
	Features []string `json:"features,omitempty"`
	Write    bool     `json:"write,omitempty"`
}

// validateJSON is ValidateRequest as encoding/json reads it for the
// service, to tell "feature":"" from no feature.
type validateJSON struct {
	Token    string   `json:"token"`
	Account  string   `json:"account"`
	IP       string   `json:"ip"`
	Feature  *string  `json:"feature"`
	Features []string `json:"features"`
	Write    bool     `json:"write"`
}

// NewToken is a created token, the only place its secret ever appears.
type NewToken struct {
	Name          string   `json:"name"`
	TokenID       string   `json:"token_id"`
	Token         string   `json:"token"`
	CreateTime    int64    `json:"create_time"`
	ExpiresAt     *int64   `json:"expires_at"`
	HasFullAccess int      `json:"has_full_access"`    // 1 when it has no features
	Features      []string `json:"features"`           // [] for full access
	ReadOnly      int      `json:"readonly,omitempty"` // 1 for a read-only token
}

// TokenInfo is a live token as list shows it.
type TokenInfo struct {
	Name          string   `json:"name"`
	TokenID       string   `json:"token_id"`
	CreateTime    int64    `json:"create_time"`
	ExpiresAt     *int64   `json:"expires_at"`
	HasFullAccess int      `json:"has_full_access"`    // 1 when it has no features
	Features      []string `json:"features"`           // [] for full access
	ReadOnly      int      `json:"readonly,omitempty"` // 1 for a read-only token
	Status        string   `json:"status"`
	LastUsed      *int64   `json:"last_used"`
	LastIP        string   `json:"last_ip,omitempty"`
	AllowedIPs    []string `json:"allowed_ips,omitempty"`
}

// ValidateReply is always sent, valid or not. A valid reply lists the
// token's features, [] for full access, and says "readonly":true for a
// read-only token; an invalid one says only its reason.
type ValidateReply struct {
	Valid     bool     `json:"valid"`
	Reason    string   `json:"reason,omitempty"`
	Account   string   `json:"account,omitempty"`
	TokenID   string   `json:"token_id,omitempty"`
	Name      string   `json:"name,omitempty"`
	ExpiresAt *int64   `json:"expires_at,omitempty"`
	Status    string   `json:"status,omitempty"`
	Features  []string `json:"features,omitzero"` // nil only in an invalid reply
	ReadOnly  bool     `json:"readonly,omitempty"`
}

// reply is the envelope of every command reply. A list reply is written by
// listPage, and always has "tokens".
type reply struct {
	OK     bool        `json:"ok"`
	Code   string      `json:"code,omitempty"`
	Error  string      `json:"error,omitempty"`
	Token  *NewToken   `json:"token,omitempty"`
	Tokens []TokenInfo `json:"tokens,omitempty"`
	Next   string      `json:"next,omitempty"` // a list page's cursor, see ListRequest
}

// TokenInfos converts table rows to their wire form.
func TokenInfos(rows []projections.Row) []TokenInfo {
	out := make([]TokenInfo, len(rows))
	for i, r := range rows {
		out[i] = tokenInfo(r)
	}
	return out
}

func tokenInfo(r projections.Row) TokenInfo {
	return TokenInfo{Name: r.Name, TokenID: r.TokenID.String(), CreateTime: r.Created.Unix(), ExpiresAt: r.ExpiresAt,
		HasFullAccess: flag(len(r.Features) == 0), Features: listed(r.Features), ReadOnly: flag(r.ReadOnly),
		Status: r.Status, LastUsed: r.LastUsed, LastIP: r.LastIP, AllowedIPs: r.AllowedIPs}
}

// noFeatures is the features of a token with full access, as they travel: [].
var noFeatures = []string{}

// listed is features as they travel: [] for none.
func listed(features []string) []string {
	if features == nil {
		return noFeatures
	}
	return features
}

// flag is a boolean as cPanel writes one: 1 or 0.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// NewTokenOf is the wire form of a created or rotated token, from the
// ledger's answer alone.
func NewTokenOf(c commands.Created) NewToken {
	t := c.Token
	return NewToken{Name: t.Name, TokenID: t.ID.String(), Token: c.Secret, CreateTime: t.Created.Unix(),
		ExpiresAt: t.ExpiresAt, HasFullAccess: flag(len(t.Features) == 0), Features: listed(t.Features), ReadOnly: flag(t.ReadOnly)}
}

// parseFlatRequest reads b, a whole JSON object with no white space around
// it, when it is the plain form of a ValidateRequest: members "token",
// "account", "ip" and "feature" with strings, "features" with an array of
// strings, and "write" with true or false, each at most once, every string
// without escapes and "feature" not empty. It says !simple for anything else
// (other members, escapes, other values, trailing bytes), which the caller
// leaves to encoding/json.
func parseFlatRequest(b []byte) (v ValidateRequest, simple bool) {
	if len(b) == 0 || b[0] != '{' {
		return v, false
	}
	// One copy of the body, whose substrings are the request's strings: a
	// string each was an allocation each. A validation made 9 allocations
	// and took 750 ns in BenchmarkValidateHandler; with this copy, the token
	// id and name written into the reply from the table's own bytes, it makes
	// 1 (this copy) and took about 440 ns; 385 since the trims were skipped
	// for a body in braces, bytes checked by look-up and the clock read only
	// for a token that expires (see Table.ValidateFor).
	src := string(b)
	i := 1
	space := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
	}
	str := func() (string, bool) {
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		start := i + 1
		for j := start; j < len(b); j++ {
			switch c := b[j]; {
			case plainASCII[c]:
			case c == '"':
				i = j + 1
				return src[start:j], true
			default: // an escape, a control byte or beyond ASCII: encoding/json's
				return "", false
			}
		}
		return "", false
	}
	literal := func(lit string) bool {
		if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
			i += len(lit)
			return true
		}
		return false
	}
	strs := func() ([]string, bool) {
		if !literal("[") {
			return nil, false
		}
		list := []string{}
		space()
		if literal("]") {
			return list, true
		}
		for {
			space()
			s, ok := str()
			if !ok {
				return nil, false
			}
			list = append(list, s)
			space()
			switch {
			case literal("]"):
				return list, true
			case !literal(","):
				return nil, false
			}
		}
	}
	var haveToken, haveAccount, haveIP, haveFeature, haveFeatures, haveWrite bool
	space()
	if i < len(b) && b[i] == '}' {
		i++
		return v, i == len(b)
	}
	for {
		space()
		key, ok := str()
		if !ok {
			return v, false
		}
		space()
		if i >= len(b) || b[i] != ':' {
			return v, false
		}
		i++
		space()
		switch {
		case key == "features" && !haveFeatures:
			v.Features, ok = strs()
			haveFeatures = true
		case key == "write" && !haveWrite:
			v.Write, ok = literal("true"), true
			if !v.Write && !literal("false") {
				return v, false
			}
			haveWrite = true
		default:
			val, isStr := str()
			switch {
			case !isStr:
				return v, false
			case key == "token" && !haveToken:
				v.Token, haveToken = val, true
			case key == "account" && !haveAccount:
				v.Account, haveAccount = val, true
			case key == "ip" && !haveIP:
				v.IP, haveIP = val, true
			case key == "feature" && !haveFeature && val != "":
				v.Feature, haveFeature = val, true
			default:
				return v, false
			}
		}
		if !ok {
			return v, false
		}
		space()
		if i >= len(b) {
			return v, false
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return v, i+1 == len(b)
		default:
			return v, false
		}
	}
}

// appendValidateReply appends the table's answer r as the ValidateReply
// that json.Marshal would write (FuzzValidateReply holds it to that), without
// reflection and without a string for the token id: the reply is on the
// validation's one-at-a-time path. An invalid reply says only its reason; a
// valid one lists the token's features, [] for full access.
func appendValidateReply(b []byte, r projections.Result) []byte {
	if !r.Valid {
		b = append(b, `{"valid":false`...)
		if r.Reason != "" {
			b = append(b, `,"reason":`...)
			b = appendString(b, r.Reason)
		}
		return append(b, '}')
	}
	b = append(b, `{"valid":true`...)
	member := func(name, value string) {
		if value != "" {
			b = append(b, `,"`...)
			b = append(b, name...)
			b = append(b, `":`...)
			b = appendString(b, value)
		}
	}
	member("account", r.Account)
	b = append(b, `,"token_id":`...)
	b = appendTokenID(b, r.TokenID)
	if name := r.NameBytes(); len(name) > 0 {
		b = append(b, `,"name":`...)
		b = appendString(b, name)
	}
	if r.ExpiresAt != nil {
		b = append(b, `,"expires_at":`...)
		b = strconv.AppendInt(b, *r.ExpiresAt, 10)
	}
	member("status", r.Status)
	b = append(b, `,"features":[`...)
	for i, f := range r.Features {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f)
	}
	b = append(b, ']')
	if r.ReadOnly {
		b = append(b, `,"readonly":true`...)
	}
	return append(b, '}')
}

// appendTokenID quotes id as JSON: its 26 characters need no escaping.
func appendTokenID(b []byte, id events.TokenID) []byte {
	b = append(b, '"')
	b, _ = id.AppendText(b) // fails only for a destination of the wrong size, which AppendText never makes
	return append(b, '"')
}

// appendString quotes s as JSON: directly when no byte of it needs escaping
// (the rules of accounts, names and ids keep them so), else by encoding/json.
func appendString[T string | []byte](b []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		if !verbatim[s[i]] {
			q, _ := json.Marshal(string(s))
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainASCII marks the bytes a request's string may hold for the hand
// parser: printable ASCII but the quote and the backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// verbatim marks the bytes json.Marshal writes as they are: printable ASCII
// but the quote, the backslash and the three it escapes for HTML. One
// look-up a byte, on the validation's path.
var verbatim = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = !strings.ContainsRune(`"\\<>&`, rune(c))
	}
	return t
}()

// claimed is the actor a request claims, for Service.actor: see request.
func (r CreateRequest) claimed() *events.Actor        { return r.Actor }
func (r RenameRequest) claimed() *events.Actor        { return r.Actor }
func (r RevokeRequest) claimed() *events.Actor        { return r.Actor }
func (r RotateRequest) claimed() *events.Actor        { return r.Actor }
func (r SetAllowedIPsRequest) claimed() *events.Actor { return r.Actor }
func (r setFeaturesJSON) claimed() *events.Actor      { return r.Actor }
