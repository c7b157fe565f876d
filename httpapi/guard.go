package httpapi

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Guessing passwords and tokens is made slow and visible: failed credentials
// are counted per source address for /metrics, and password logins of an
// account are refused for a while after repeated failures. Neither sleeps: a
// refused attempt is answered at once with how long to wait, so guessers hold
// no server goroutine.
const (
	// lockAfter failed logins of one account, with no pause of lockReset
	// between them, lock it for lockFirst; each further failure doubles the
	// lock, up to lockMax. A success ends it all.
	lockAfter = 5
	lockReset = 15 * time.Minute
	lockFirst = 5 * time.Second
	lockMax   = 15 * time.Minute

	// maxLocked bounds the accounts whose failures are remembered.
	maxLocked = 10000
	// maxSources bounds the sources whose failures are counted; when full,
	// the source with the fewest failures (the oldest among equals) makes
	// room, so persistent guessers stay counted.
	maxSources = 1000
	// topSources is how many sources /metrics shows, the busiest first.
	topSources = 20
)

// Kinds of failed credentials, as /metrics labels them.
const (
	failPassword   = "password"   // a panel login or HTTP Basic
	failToken      = "token"      // "Authorization: cpanel ACCOUNT:TOKEN"
	failValidation = "validation" // a refused tokens.validate over NATS
)

// Guard counts failed credentials by source and locks the password logins of
// an account after repeated failures. The node builds one and shares it with
// the NATS service, so that /metrics shows guessing on either transport.
type Guard struct {
	mu       sync.Mutex
	accounts map[string]*failures
	sources  map[string]*sourceCount
	seq      uint64            // orders sources by their last failure
	total    map[string]uint64 // failures by kind
	refused  uint64            // login attempts refused while locked
}

type failures struct {
	n     int
	last  time.Time
	until time.Time // locked until
}

type sourceCount struct {
	n    uint64
	last uint64 // seq of its last failure
}

// NewGuard returns an empty guard.
func NewGuard() *Guard {
	return &Guard{accounts: make(map[string]*failures), sources: make(map[string]*sourceCount), total: make(map[string]uint64)}
}

// locked says how long account must wait before its password is checked
// again; zero when it need not. A refusal counts as nothing else: it neither
// checks the password nor lengthens the lock.
func (g *Guard) locked(account string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.accounts[account]
	if f == nil || !now.Before(f.until) {
		return 0
	}
	g.refused++
	return f.until.Sub(now)
}

// loginFailed notes a wrong password for account at now.
func (g *Guard) loginFailed(account string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.accounts[account]
	if f == nil {
		if len(g.accounts) >= maxLocked {
			g.forgetAccounts(now)
		}
		f = &failures{}
		g.accounts[account] = f
	}
	if now.Sub(f.last) > lockReset && !now.Before(f.until) {
		f.n = 0
	}
	f.n++
	f.last = now
	if f.n >= lockAfter {
		f.until = now.Add(lockFor(f.n))
	}
}

// lockFor is the lock after n failures (n >= lockAfter).
func lockFor(n int) time.Duration {
	d := lockFirst
	for i := lockAfter; i < n && d < lockMax; i++ {
		d *= 2
	}
	return min(d, lockMax)
}

// loginSucceeded forgets account's failures.
func (g *Guard) loginSucceeded(account string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.accounts, account)
}

// forgetAccounts makes room: first the accounts whose failures no longer
// matter, then, if need be, the one that failed longest ago.
func (g *Guard) forgetAccounts(now time.Time) {
	for a, f := range g.accounts {
		if now.Sub(f.last) > lockReset && !now.Before(f.until) {
			delete(g.accounts, a)
		}
	}
	if len(g.accounts) < maxLocked {
		return
	}
	var oldest string
	var at time.Time
	for a, f := range g.accounts {
		if oldest == "" || f.last.Before(at) {
			oldest, at = a, f.last
		}
	}
	delete(g.accounts, oldest)
}

// ValidationFailed counts a validation over NATS that was refused for a
// reason a guesser meets (unknown, revoked, wrong account, expired,
// ip_denied), from ip when the request named one.
func (g *Guard) ValidationFailed(ip netip.Addr) { g.failed(failValidation, ip) }

// failed counts a failed credential of kind from the source ip.
func (g *Guard) failed(kind string, ip netip.Addr) {
	src := source(ip)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total[kind]++
	g.seq++
	if s := g.sources[src]; s != nil {
		s.n++
		s.last = g.seq
		return
	}
	if len(g.sources) >= maxSources {
		var least string
		var ls *sourceCount
		for k, s := range g.sources {
			if ls == nil || s.n < ls.n || s.n == ls.n && s.last < ls.last {
				least, ls = k, s
			}
		}
		delete(g.sources, least)
	}
	g.sources[src] = &sourceCount{n: 1, last: g.seq}
}

// source names where a failure came from: an IPv4 address, or the /64 of an
// IPv6 one, since a single host commonly holds a whole /64.
func source(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "unknown"
	case ip.Is4():
		return ip.String()
	}
	p, _ := ip.WithZone("").Prefix(64)
	return p.String()
}

// sourceFailures is one line of /metrics.
type sourceFailures struct {
	source string
	n      uint64
}

// snapshot returns the failure totals by kind, the busiest sources, and the
// count of refused logins.
func (g *Guard) snapshot() (map[string]uint64, []sourceFailures, uint64) {
	g.mu.Lock()
	total := map[string]uint64{failPassword: g.total[failPassword], failToken: g.total[failToken], failValidation: g.total[failValidation]}
	top := make([]sourceFailures, 0, len(g.sources))
	for k, s := range g.sources {
		top = append(top, sourceFailures{k, s.n})
	}
	refused := g.refused
	g.mu.Unlock()
	slices.SortFunc(top, func(a, b sourceFailures) int {
		return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.source, b.source))
	})
	return total, top[:min(len(top), topSources)], refused
}
