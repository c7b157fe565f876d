package httpapi

import (
	"net/http"
	"strings"

	"tokenledger/events"
)

// principal is who a request acts as: an account, and the actor its changes
// record.
type principal struct {
	account string
	actor   events.Actor
}

// authenticate accepts cPanel's "Authorization: cpanel ACCOUNT:TOKEN" with a
// valid, unexpired token of that account, or HTTP Basic with the account's
// password. Nothing says why a credential failed.
func (h *handler) authenticate(r *http.Request) (principal, bool) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case strings.EqualFold(scheme, "cpanel"):
		account, secret, ok := strings.Cut(strings.TrimSpace(cred), ":")
		if !ok || events.CheckAccount(account) != nil {
			return principal{}, false
		}
		res := h.cfg.Table.Validate(strings.TrimSpace(secret), account, h.cfg.Now())
		if !res.Valid {
			return principal{}, false
		}
		return principal{account: account, actor: events.Actor{
			Kind: events.ActorToken, Name: account, TokenID: res.TokenID, Remote: clientIP(r)}}, true
	case strings.EqualFold(scheme, "basic"):
		account, password, ok := r.BasicAuth()
		if !ok || !h.checkPassword(account, password) {
			return principal{}, false
		}
		return accountPrincipal(account, r), true
	}
	return principal{}, false
}

func (h *handler) checkPassword(account, password string) bool {
	return h.cfg.Accounts != nil && events.CheckAccount(account) == nil && h.cfg.Accounts.Check(account, password)
}

func accountPrincipal(account string, r *http.Request) principal {
	return principal{account: account, actor: events.Actor{Kind: events.ActorAccount, Name: account, Remote: clientIP(r)}}
}
