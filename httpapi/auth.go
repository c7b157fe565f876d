package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"tokenledger/accounts"
	"tokenledger/events"
	"tokenledger/projections"
)

// principal is who a request acts as: an account, and the actor its changes
// record.
type principal struct {
	account string
	actor   events.Actor
}

// authenticate accepts cPanel's "Authorization: cpanel ACCOUNT:TOKEN" with a
// valid, unexpired token of that account that the client's address may use,
// or HTTP Basic with the account's password. Nothing says why a credential
// failed, except that an account locked after repeated failed logins must
// wait (wait > 0).
func (h *handler) authenticate(r *http.Request) (who principal, wait time.Duration, ok bool) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case strings.EqualFold(scheme, "cpanel"):
		ip := clientAddr(r)
		account, secret, ok := tokenCredential(cred)
		if !ok {
			h.guard.Failed(accounts.Token, ip)
			return principal{}, 0, false
		}
		res := h.cfg.Table.ValidateFor(secret, account, ip, projections.Need{}, h.cfg.Now)
		if !res.Valid {
			h.guard.Failed(accounts.Token, ip)
			return principal{}, 0, false
		}
		if h.cfg.Uses != nil {
			h.cfg.Uses.Seen(account, res.TokenID, clientIP(r))
		}
		return principal{account: account, actor: events.Actor{
			Kind: events.ActorToken, Name: account, TokenID: res.TokenID.String(), Remote: clientIP(r)}}, 0, true
	case strings.EqualFold(scheme, "basic"):
		account, password, ok := r.BasicAuth()
		if !ok {
			h.guard.Failed(accounts.Password, clientAddr(r))
			return principal{}, 0, false
		}
		if _, ok, wait := h.passwordLogin(r, account, password); !ok {
			return principal{}, wait, false
		}
		return accountPrincipal(account, r), 0, true
	}
	return principal{}, 0, false
}

// tokenCredential reads the ACCOUNT:TOKEN of "Authorization: cpanel …".
func tokenCredential(cred string) (account, secret string, ok bool) {
	account, secret, ok = strings.Cut(strings.TrimSpace(cred), ":")
	return account, strings.TrimSpace(secret), ok && events.CheckAccount(account) == nil
}

// authorize says whether who, authenticated, may call fn: the account's
// password may do anything; a token must have TokensFeature, and a
// read-only one may call only functions that change nothing. The table
// judges the token again, for what fn needs, so that what a token may do
// is decided in one place. The answer is 0 when the call may go ahead, 403
// with a message when the right is missing, and 401 when the token has
// stopped being valid since it authenticated.
func (h *handler) authorize(r *http.Request, who principal, fn string) (int, string) {
	if who.actor.Kind != events.ActorToken {
		return 0, ""
	}
	_, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	_, secret, _ := tokenCredential(cred)
	res := h.cfg.Table.ValidateFor(secret, who.account, clientAddr(r), need(fn), h.cfg.Now)
	switch {
	case res.Valid:
		return 0, ""
	case res.Reason == projections.ReasonFeatureDenied:
		return http.StatusForbidden, fmt.Sprintf("This API token has limited access without the feature “%s”, which Tokens::%s needs.", TokensFeature, fn)
	case res.Reason == projections.ReasonReadOnly:
		return http.StatusForbidden, fmt.Sprintf("This API token is read-only: it may call Tokens::list, not Tokens::%s.", fn)
	}
	return http.StatusUnauthorized, ""
}

// passwordLogin checks account's password, and returns the stamp of the
// password that matched, unless the account is locked after repeated
// failures: then it says how long to wait, and checks nothing.
func (h *handler) passwordLogin(r *http.Request, account, password string) (stamp accounts.Stamp, ok bool, wait time.Duration) {
	now := h.cfg.Now()
	if wait := h.guard.Locked(account, now); wait > 0 {
		return accounts.Stamp{}, false, wait
	}
	if stamp, ok := h.checkPassword(account, password); ok {
		h.guard.LoginSucceeded(account)
		return stamp, true, 0
	}
	h.guard.Failed(accounts.Password, clientAddr(r))
	if events.CheckAccount(account) == nil {
		h.guard.LoginFailed(account, now)
	}
	return accounts.Stamp{}, false, 0
}

// checkPassword runs bcrypt whatever the account, so that the time taken
// does not tell which accounts exist.
func (h *handler) checkPassword(account, password string) (accounts.Stamp, bool) {
	if h.cfg.Accounts == nil {
		return accounts.Stamp{}, false
	}
	stamp, ok := h.cfg.Accounts.Check(account, password)
	return stamp, ok && events.CheckAccount(account) == nil
}

// waitMessage says how long a locked account waits, in whole seconds.
func waitMessage(wait time.Duration) string {
	n, unit := waitSeconds(wait), "seconds"
	if n == 1 {
		unit = "second"
	}
	return fmt.Sprintf("Too many failed logins for this account: try again in %d %s.", n, unit)
}

func waitSeconds(wait time.Duration) int64 {
	return int64((wait + time.Second - 1) / time.Second)
}

func accountPrincipal(account string, r *http.Request) principal {
	return principal{account: account, actor: events.Actor{Kind: events.ActorAccount, Name: account, Remote: clientIP(r)}}
}
