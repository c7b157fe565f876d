package natsapi

import (
	"encoding/json"
	"strconv"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/projections"
)

// Requests and replies as they travel on NATS.

// CreateRequest asks for a token (tokens.cmd.create).
type CreateRequest struct {
	Account    string        `json:"account"`
	Name       string        `json:"name"`
	ExpiresAt  *int64        `json:"expires_at"`
	AllowedIPs []string      `json:"allowed_ips,omitempty"`
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
type ValidateRequest struct {
	Token   string `json:"token"`
	Account string `json:"account,omitempty"`
	IP      string `json:"ip,omitempty"` // the address the token is used from, for allow-lists
}

// NewToken is a created token, the only place its secret ever appears.
type NewToken struct {
	Name          string `json:"name"`
	TokenID       string `json:"token_id"`
	Token         string `json:"token"`
	CreateTime    int64  `json:"create_time"`
	ExpiresAt     *int64 `json:"expires_at"`
	HasFullAccess int    `json:"has_full_access"`
}

// TokenInfo is a live token as list shows it.
type TokenInfo struct {
	Name          string   `json:"name"`
	TokenID       string   `json:"token_id"`
	CreateTime    int64    `json:"create_time"`
	ExpiresAt     *int64   `json:"expires_at"`
	HasFullAccess int      `json:"has_full_access"`
	Status        string   `json:"status"`
	LastUsed      *int64   `json:"last_used"`
	LastIP        string   `json:"last_ip,omitempty"`
	AllowedIPs    []string `json:"allowed_ips,omitempty"`
}

// ValidateReply is always sent, valid or not.
type ValidateReply struct {
	Valid     bool   `json:"valid"`
	Reason    string `json:"reason,omitempty"`
	Account   string `json:"account,omitempty"`
	TokenID   string `json:"token_id,omitempty"`
	Name      string `json:"name,omitempty"`
	ExpiresAt *int64 `json:"expires_at,omitempty"`
	Status    string `json:"status,omitempty"`
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
	return TokenInfo{Name: r.Name, TokenID: r.TokenID, CreateTime: r.Created.Unix(), ExpiresAt: r.ExpiresAt,
		HasFullAccess: 1, Status: r.Status, LastUsed: r.LastUsed, LastIP: r.LastIP, AllowedIPs: r.AllowedIPs}
}

func validateReply(r projections.Result) ValidateReply {
	if !r.Valid {
		return ValidateReply{Reason: r.Reason}
	}
	return ValidateReply{Valid: true, Account: r.Account, TokenID: r.TokenID, Name: r.Name, ExpiresAt: r.ExpiresAt, Status: r.Status}
}

// NewTokenOf is the wire form of a created token.
func NewTokenOf(c commands.Created) NewToken {
	d := c.Event.Data.(events.TokenCreated)
	return NewToken{Name: d.Name, TokenID: c.Event.TokenID, Token: c.Secret, CreateTime: c.Event.At.Unix(),
		ExpiresAt: d.ExpiresAt, HasFullAccess: 1}
}

// parseFlatRequest reads b, a whole JSON object with no white space around it, when it is the plain form of
// a ValidateRequest: members "token", "account" and "ip" at most once each, whose
// values are strings without escapes. It says !simple for anything else
// (other members, escapes, other values, trailing bytes), which the caller
// leaves to encoding/json.
func parseFlatRequest(b []byte) (v ValidateRequest, simple bool) {
	if len(b) == 0 || b[0] != '{' {
		return v, false
	}
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
			case c == '"':
				i = j + 1
				return string(b[start:j]), true
			case c == '\\' || c < 0x20 || c >= 0x80:
				return "", false
			}
		}
		return "", false
	}
	var haveToken, haveAccount, haveIP bool
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
		val, ok := str()
		if !ok {
			return v, false
		}
		switch {
		case key == "token" && !haveToken:
			v.Token, haveToken = val, true
		case key == "account" && !haveAccount:
			v.Account, haveAccount = val, true
		case key == "ip" && !haveIP:
			v.IP, haveIP = val, true
		default:
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

// appendValidateReply appends r as json.Marshal would write it, without
// reflection: the reply is on the validation's one-at-a-time path.
func appendValidateReply(b []byte, r ValidateReply) []byte {
	b = append(b, `{"valid":`...)
	b = strconv.AppendBool(b, r.Valid)
	member := func(name, value string) {
		if value != "" {
			b = append(b, `,"`...)
			b = append(b, name...)
			b = append(b, `":`...)
			b = appendString(b, value)
		}
	}
	member("reason", r.Reason)
	member("account", r.Account)
	member("token_id", r.TokenID)
	member("name", r.Name)
	if r.ExpiresAt != nil {
		b = append(b, `,"expires_at":`...)
		b = strconv.AppendInt(b, *r.ExpiresAt, 10)
	}
	member("status", r.Status)
	return append(b, '}')
}

// appendString quotes s as JSON: directly when no byte of it needs escaping
// (the rules of accounts, names and ids keep them so), else by encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
