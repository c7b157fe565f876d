package natsapi

import (
	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/projections"
)

// Requests and replies as they travel on NATS.

// CreateRequest asks for a token (tokens.cmd.create).
type CreateRequest struct {
	Account   string        `json:"account"`
	Name      string        `json:"name"`
	ExpiresAt *int64        `json:"expires_at"`
	Actor     *events.Actor `json:"actor,omitempty"`
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

// ListRequest asks for an account's live tokens (tokens.cmd.list).
type ListRequest struct {
	Account string `json:"account"`
}

// ValidateRequest asks whether a secret is a valid token (tokens.validate).
// A body that is the bare secret is accepted too.
type ValidateRequest struct {
	Token   string `json:"token"`
	Account string `json:"account,omitempty"`
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
	Name          string `json:"name"`
	TokenID       string `json:"token_id"`
	CreateTime    int64  `json:"create_time"`
	ExpiresAt     *int64 `json:"expires_at"`
	HasFullAccess int    `json:"has_full_access"`
	Status        string `json:"status"`
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

// reply is the envelope of every command reply.
type reply struct {
	OK     bool        `json:"ok"`
	Code   string      `json:"code,omitempty"`
	Error  string      `json:"error,omitempty"`
	Token  *NewToken   `json:"token,omitempty"`
	Tokens []TokenInfo `json:"tokens,omitempty"`
}

// listReply keeps "tokens" present when the list is empty.
type listReply struct {
	OK     bool        `json:"ok"`
	Tokens []TokenInfo `json:"tokens"`
}

// TokenInfos converts table rows to their wire form.
func TokenInfos(rows []projections.Row) []TokenInfo {
	out := make([]TokenInfo, len(rows))
	for i, r := range rows {
		out[i] = TokenInfo{Name: r.Name, TokenID: r.TokenID, CreateTime: r.Created.Unix(), ExpiresAt: r.ExpiresAt,
			HasFullAccess: 1, Status: r.Status}
	}
	return out
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
