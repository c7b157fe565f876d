package accounts

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
	// MaxSources bounds the sources whose failures are counted; when full,
	// the source with the fewest failures (the oldest among equals) makes
	// room, so persistent guessers stay counted.
	MaxSources = 1000
	// TopSources is how many sources Failures gives, the busiest first.
	TopSources = 20
)

// Kind is a kind of failed credential, as /metrics labels it.
type Kind string

// The kinds of failed credentials.
const (
	Password   Kind = "password"   // a panel login or HTTP Basic
	Token      Kind = "token"      // "Authorization: cpanel ACCOUNT:TOKEN"
	Validation Kind = "validation" // a refused tokens.validate over NATS
)

// Guard counts failed credentials by source and locks the password logins of
// an account after repeated failures. The node builds one and shares it with
// the NATS service, so that /metrics shows guessing on either transport.
type Guard struct {
	mu       sync.Mutex
	accounts map[string]*failures
	sources  map[string]*sourceCount
	seq      uint64          // orders sources by their last failure
	total    map[Kind]uint64 // failures by kind
	refused  uint64          // login attempts refused while locked
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
	return &Guard{accounts: make(map[string]*failures), sources: make(map[string]*sourceCount), total: make(map[Kind]uint64)}
}

// Locked says how long account must wait before its password is checked
// again; zero when it need not. A refusal counts as nothing else: it neither
// checks the password nor lengthens the lock.
func (g *Guard) Locked(account string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.accounts[account]
	if f == nil || !now.Before(f.until) {
		return 0
	}
	g.refused++
	return f.until.Sub(now)
}

// LoginFailed notes a wrong password for account at now.
func (g *Guard) LoginFailed(account string, now time.Time) {
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

// LoginSucceeded forgets account's failures.
func (g *Guard) LoginSucceeded(account string) {
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
func (g *Guard) ValidationFailed(ip netip.Addr) { g.Failed(Validation, ip) }

// Failed counts a failed credential of kind from the source ip (the zero
// Addr when it is not known).
func (g *Guard) Failed(kind Kind, ip netip.Addr) {
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
	if len(g.sources) >= MaxSources {
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

// Failures is what a guard has counted, for /metrics.
type Failures struct {
	ByKind  map[Kind]uint64  // every kind, those with none included
	Sources []SourceFailures // the TopSources busiest, the busiest first
	Refused uint64           // password logins refused unchecked while locked
}

// SourceFailures are the failures counted from one source.
type SourceFailures struct {
	Source string // an IPv4 address, an IPv6 /64, or "unknown"
	N      uint64
}

// Failures returns the failure totals by kind, the busiest sources, and the
// count of refused logins.
func (g *Guard) Failures() Failures {
	g.mu.Lock()
	f := Failures{
		ByKind:  map[Kind]uint64{Password: g.total[Password], Token: g.total[Token], Validation: g.total[Validation]},
		Sources: make([]SourceFailures, 0, len(g.sources)),
		Refused: g.refused,
	}
	for k, s := range g.sources {
		f.Sources = append(f.Sources, SourceFailures{k, s.n})
	}
	g.mu.Unlock()
	slices.SortFunc(f.Sources, func(a, b SourceFailures) int {
		return cmp.Or(cmp.Compare(b.N, a.N), cmp.Compare(a.Source, b.Source))
	})
	f.Sources = f.Sources[:min(len(f.Sources), TopSources)]
	return f
}
