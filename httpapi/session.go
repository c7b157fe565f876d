package httpapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"tokenledger/accounts"
)

// Panel sessions live in this node's memory: a restart logs everyone out,
// and behind a load balancer a user stays on one node (or logs in again).
// They age by the wall clock, not the ledger's clock, which tests move. A
// session ends too when its account's password changes in the accounts file.
const (
	sessionCookie = "tokenledger_session"
	loginCookie   = "tokenledger_login" // before a session: the login form's CSRF token is made from it
	sessionIdle   = time.Hour
	sessionMax    = 12 * time.Hour
	maxSessions   = 10000
)

type session struct {
	account string
	stamp   accounts.Stamp // of the password it logged in with
	csrf    string         // sent back with every change the panel makes
	flash   flash          // one message for the next page, then dropped
	secret  *newSecret     // a new secret for the next GET of /secret, then dropped
	size    int            // rows a page in the token table, once chosen
	created time.Time
	seen    time.Time
}

// sessions are kept by the SHA-256 of their cookie, so the map holds no
// usable credential.
type sessions struct {
	mu   sync.Mutex
	byID map[[sha256.Size]byte]*session
}

func newSessions() *sessions { return &sessions{byID: make(map[[sha256.Size]byte]*session)} }

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start makes a session for account, logged in with the password of stamp,
// and returns its cookie value.
func (s *sessions) start(account string, stamp accounts.Stamp) string {
	id, now := randomToken(), time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byID) >= maxSessions {
		s.sweep(now)
	}
	if len(s.byID) >= maxSessions {
		s.dropOldest()
	}
	s.byID[sha256.Sum256([]byte(id))] = &session{account: account, stamp: stamp, csrf: randomToken(), created: now, seen: now}
	return id
}

// get returns a copy of the live session with the cookie value id, without
// its new secret, which only takeSecret gives out.
func (s *sessions) get(id string) (session, bool) {
	now := time.Now()
	key := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byID[key]
	if ss == nil {
		return session{}, false
	}
	if expired(ss, now) {
		delete(s.byID, key)
		return session{}, false
	}
	ss.seen = now
	out := *ss
	out.secret = nil
	return out, true
}

// takeFlash returns the session's message for this page and drops it.
func (s *sessions) takeFlash(id string) flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byID[sha256.Sum256([]byte(id))]
	if ss == nil {
		return flash{}
	}
	msg := ss.flash
	ss.flash = flash{}
	return msg
}

// flash is a message shown once, on the page after a change.
type flash struct {
	Text string
	Bad  bool // an error, not a success
}

func (s *sessions) setFlash(id string, msg flash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.byID[sha256.Sum256([]byte(id))]; ss != nil {
		ss.flash = msg
	}
}

// newSecret is a secret that a change made, waiting to be shown once on the
// page the change redirects to (post/redirect/get): a reload of that page,
// or of the one before, neither changes anything again nor shows the secret
// again. It lives only in this node's memory, in the session.
type newSecret struct {
	token       created
	expiresText string
	rotated     bool   // a rotation's new secret, not a new token's
	grace       string // until when a rotated token's old secret works; "" if it stopped at once
}

// setSecret keeps s for the session's next GET of /secret.
func (s *sessions) setSecret(id string, secret newSecret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.byID[sha256.Sum256([]byte(id))]; ss != nil {
		ss.secret = &secret
	}
}

// takeSecret returns the session's new secret and forgets it.
func (s *sessions) takeSecret(id string) (newSecret, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byID[sha256.Sum256([]byte(id))]
	if ss == nil || ss.secret == nil {
		return newSecret{}, false
	}
	secret := *ss.secret
	ss.secret = nil
	return secret, true
}

// setSize remembers the table's page size for the rest of the session.
func (s *sessions) setSize(id string, size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.byID[sha256.Sum256([]byte(id))]; ss != nil {
		ss.size = size
	}
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, sha256.Sum256([]byte(id)))
}

func expired(ss *session, now time.Time) bool {
	return now.Sub(ss.seen) > sessionIdle || now.Sub(ss.created) > sessionMax
}

func (s *sessions) sweep(now time.Time) {
	for k, ss := range s.byID {
		if expired(ss, now) {
			delete(s.byID, k)
		}
	}
}

func (s *sessions) dropOldest() {
	var oldest [sha256.Size]byte
	var at time.Time
	for k, ss := range s.byID {
		if at.IsZero() || ss.seen.Before(at) {
			oldest, at = k, ss.seen
		}
	}
	delete(s.byID, oldest)
}

func sameToken(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// loginToken is the login form's CSRF token for the pre-session cookie
// value pre: an HMAC under a key this node made at start, so the node keeps
// no state for it. Another site can neither read the cookie nor make the
// token, so it cannot log a browser in as an account of its own choosing
// (login CSRF).
func (h *handler) loginToken(pre string) string {
	m := hmac.New(sha256.New, h.loginKey)
	m.Write([]byte(pre))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// setSessionCookie sets or (with an empty id) clears the session cookie.
func (h *handler) setSessionCookie(w http.ResponseWriter, r *http.Request, id string) {
	h.setCookie(w, r, sessionCookie, id)
}

// setCookie sets or (with an empty value) clears a cookie of the panel's:
// HttpOnly, SameSite=Strict, and Secure under TLS or when told so.
func (h *handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string) {
	c := &http.Cookie{
		Name: name, Value: value, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || h.cfg.SecureCookies,
	}
	if value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}
