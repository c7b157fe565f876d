package projections

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"tokenledger/events"
)

// Statuses, derived when read.
const (
	Active   = "active"
	Expiring = "expiring"
	Expired  = "expired"
)

// Reasons a validation fails.
const (
	ReasonUnknown      = "unknown"
	ReasonExpired      = "expired"
	ReasonRevoked      = "revoked"
	ReasonWrongAccount = "wrong_account"
	ReasonMalformed    = "malformed"
	ReasonIPDenied     = "ip_denied"
)

// DefaultWarn is the default warning window before expiry.
const DefaultWarn = 7 * 24 * time.Hour

// Table is the current token table of every account, with an index from each
// secret's hash to its token so that a validation is one map lookup. It is
// laid out to stay small: a live token costs about 200 bytes of heap.
type Table struct {
	warn time.Duration

	// changing is held by whatever changes the index, the accounts or the
	// applied sequence (Apply, Skip, resetAccount), beside mu, and alone by
	// Encode: a snapshot then reads a still table while validations, which
	// take only mu's read lock, go on.
	changing sync.Mutex
	mu       sync.RWMutex
	byHash   map[events.Hash]*token  // every token ever created, revoked ones too
	rotated  map[events.Hash]retired // secrets replaced by a rotation
	accounts map[string]*account
	vouched  map[events.Hash]struct{} // digests of events this node signed, not yet seen
	ahead    map[uint64]string        // sequence -> account of events ApplyOwn applied before applied reached them
	applied  uint64                   // last stream sequence folded in
	waiting  int                      // callers blocked in WaitApplied
	notify   chan struct{}            // closed when applied moves and someone waits
}

type account struct {
	name string
	// key is the name again, in place: a validation that names its account
	// compares it without a second trip to memory (account names are at
	// most 16 bytes, none of them zero).
	key  accountKey
	head events.Hash // digest of the account's last applied event
	live map[ulid.ULID]*token
}

type accountKey [16]byte

// keyOf is name's accountKey; ok is false for a name no account can have.
func keyOf(name string) (k accountKey, ok bool) {
	if len(name) > len(k) || strings.IndexByte(name, 0) >= 0 {
		return k, false
	}
	copy(k[:], name)
	return k, true
}

func newAccount(name string, live int) *account {
	k, _ := keyOf(name)
	return &account{name: name, key: k, live: make(map[ulid.ULID]*token, live)}
}

type token struct {
	id        ulid.ULID
	account   *account
	name      string
	seq       uint64 // stream sequence of its creation: the table's order
	created   int64  // Unix milliseconds
	expiresAt int64  // Unix seconds; 0 for never
	revoked   bool
	ext       *extra // what most tokens lack; nil until needed
}

// extra holds a token's rarer attributes, out of line to keep tokens small.
type extra struct {
	lastUsed int64 // Unix seconds; 0 for never
	lastIP   string
	allowed  []netip.Prefix // addresses it may be used from; none: any
}

// retired is a secret that a rotation replaced: it works until until (Unix
// seconds), then is refused as revoked.
type retired struct {
	tok   *token
	until int64
}

func (tok *token) extra() *extra {
	if tok.ext == nil {
		tok.ext = &extra{}
	}
	return tok.ext
}

// NewTable returns an empty table whose tokens turn "expiring" warn before
// they expire.
func NewTable(warn time.Duration) *Table {
	return &Table{
		warn:     warn,
		byHash:   make(map[events.Hash]*token),
		rotated:  make(map[events.Hash]retired),
		vouched:  make(map[events.Hash]struct{}),
		ahead:    make(map[uint64]string),
		accounts: make(map[string]*account),
		notify:   make(chan struct{}),
	}
}

// Apply folds the event stored at seq, whose stored bytes have the given
// digest, into the table if it continues its account's chain, and says why
// not otherwise. The caller has checked the event's signature. An event that
// does not fit the table (a rename of a token not live, a second creation
// with a known hash) changes nothing but the chain.
func (t *Table) Apply(seq uint64, e events.Event, digest events.Hash) error {
	t.changing.Lock()
	defer t.changing.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	defer t.advance(seq)
	if _, done := t.ahead[seq]; done {
		delete(t.ahead, seq) // ApplyOwn applied it already
		return nil
	}
	return t.apply(seq, e, digest)
}

// ApplyOwn applies, ahead of the stream, an event this node has just stored
// at seq, so that the command that wrote it can answer without waiting for
// the event to come back from the stream. It does so only when the table
// holds every earlier event of the account (the event continues its chain);
// otherwise it says false and the caller waits with WaitApplied. When the
// event does come back, Apply counts it without applying it twice.
func (t *Table) ApplyOwn(seq uint64, e events.Event, digest events.Hash) bool {
	t.changing.Lock()
	defer t.changing.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if seq <= t.applied {
		return true // it came back first
	}
	if t.apply(seq, e, digest) != nil {
		return false // apply changes nothing when the chain does not continue
	}
	t.ahead[seq] = e.Account
	return true
}

// apply is Apply's work, under both locks.
func (t *Table) apply(seq uint64, e events.Event, digest events.Hash) error {
	a := t.accounts[e.Account]
	var head events.Hash
	if a != nil {
		head = a.head
	}
	if err := events.Link(e, head); err != nil {
		return err
	}
	if a == nil {
		a = newAccount(e.Account, 0)
		t.accounts[e.Account] = a
	}
	a.head = digest
	id, err := ulid.ParseStrict(e.TokenID)
	if err != nil {
		return nil // Decode has checked it; nothing to apply
	}
	switch d := e.Data.(type) {
	case events.TokenCreated:
		h, err := events.ParseHash(d.TokenHash)
		if err != nil || t.byHash[h] != nil || a.live[id] != nil {
			return nil
		}
		tok := &token{id: id, account: a, name: d.Name, seq: seq, created: e.At.UnixMilli()}
		if d.ExpiresAt != nil {
			tok.expiresAt = *d.ExpiresAt
		}
		if ps, _ := events.ParsePrefixes(d.AllowedIPs); len(ps) > 0 {
			tok.extra().allowed = ps
		}
		t.byHash[h] = tok
		a.live[id] = tok
	case events.TokenRotated:
		tok := a.live[id]
		old, err1 := events.ParseHash(d.OldTokenHash)
		h, err2 := events.ParseHash(d.TokenHash)
		if tok == nil || tok.name != d.Name || err1 != nil || err2 != nil || t.byHash[old] != tok || t.byHash[h] != nil {
			return nil
		}
		delete(t.byHash, old)
		t.byHash[h] = tok
		r := retired{tok: tok}
		if d.GraceUntil != nil {
			r.until = *d.GraceUntil
		}
		t.rotated[old] = r
	case events.AllowedIPsSet:
		if tok := a.live[id]; tok != nil && tok.name == d.Name {
			ps, _ := events.ParsePrefixes(d.AllowedIPs)
			if len(ps) == 0 {
				ps = nil
			}
			if ps != nil || tok.ext != nil {
				tok.extra().allowed = ps
			}
		}
	case events.TokenUsed:
		if tok := a.live[id]; tok != nil {
			x := tok.extra()
			x.lastUsed, x.lastIP = e.At.Unix(), d.IP
		}
	case events.TokenRenamed:
		if tok := a.live[id]; tok != nil && tok.name == d.OldName {
			tok.name = d.NewName
		}
	case events.TokenRevoked:
		if tok := a.live[id]; tok != nil && tok.name == d.Name {
			tok.revoked = true
			delete(a.live, id)
		}
	}
	return nil
}

// resetAccount forgets an account and every token it had, so that it can be
// built again from its events. It walks the whole index: it is for the rare
// account whose history does not verify.
func (t *Table) resetAccount(name string) {
	t.changing.Lock()
	defer t.changing.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.accounts[name]
	if a == nil {
		return
	}
	for h, tok := range t.byHash {
		if tok.account == a {
			delete(t.byHash, h)
		}
	}
	for h, r := range t.rotated {
		if r.tok.account == a {
			delete(t.rotated, h)
		}
	}
	for seq, account := range t.ahead {
		if account == name {
			delete(t.ahead, seq) // to be applied again when it comes
		}
	}
	delete(t.accounts, name)
}

// maxVouched bounds the digests kept for events whose append failed.
const maxVouched = 4096

// Vouch records that the message with this digest holds an event this node
// signed: the bytes are the node's own, so their signature need not be
// checked again when they come back from the stream.
func (t *Table) Vouch(digest events.Hash) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.vouched) >= maxVouched {
		clear(t.vouched) // appends that failed; checking costs only time
	}
	t.vouched[digest] = struct{}{}
}

// vouchedFor says, once, whether digest was vouched for.
func (t *Table) vouchedFor(digest events.Hash) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.vouched[digest]
	delete(t.vouched, digest)
	return ok
}

// Skip records that the message at seq was read and not applied (it did not
// decode), so that waiting on later sequences still works.
func (t *Table) Skip(seq uint64) {
	t.changing.Lock()
	defer t.changing.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.ahead, seq)
	t.advance(seq)
}

func (t *Table) advance(seq uint64) {
	if seq > t.applied {
		t.applied = seq
	}
	if t.waiting > 0 {
		close(t.notify)
		t.notify = make(chan struct{})
	}
}

// Applied is the last stream sequence folded into the table.
func (t *Table) Applied() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.applied
}

// WaitApplied blocks until the table has folded in the event at seq, so that
// whoever appended it reads their own write.
func (t *Table) WaitApplied(ctx context.Context, seq uint64) error {
	t.mu.Lock()
	for t.applied < seq {
		ch := t.notify
		t.waiting++
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			t.mu.Lock()
			t.waiting--
			t.mu.Unlock()
			return ctx.Err()
		}
		t.mu.Lock()
		t.waiting--
	}
	t.mu.Unlock()
	return nil
}

// Row is one live token as list shows it.
type Row struct {
	Name       string
	TokenID    string
	Created    time.Time
	ExpiresAt  *int64
	FullAccess bool
	Status     string
	LastUsed   *int64   // Unix seconds of the last recorded use
	LastIP     string   // where it was last used from, when known
	AllowedIPs []string // CIDRs it may be used from; none: any
}

// List returns the account's live tokens, oldest first, with statuses as of now.
func (t *Table) List(account string, now time.Time) []Row {
	t.mu.RLock()
	a := t.accounts[account]
	var toks []token
	if a != nil {
		toks = make([]token, 0, len(a.live))
		for _, tok := range a.live {
			c := *tok
			if tok.ext != nil {
				x := *tok.ext
				c.ext = &x
			}
			toks = append(toks, c)
		}
	}
	t.mu.RUnlock()
	slices.SortFunc(toks, func(a, b token) int { return cmp.Compare(a.seq, b.seq) })
	rows := make([]Row, len(toks))
	for i, tok := range toks {
		rows[i] = Row{Name: tok.name, TokenID: tok.id.String(), Created: time.UnixMilli(tok.created), ExpiresAt: tok.expiry(),
			FullAccess: true, Status: t.status(tok.expiresAt, now)}
		if x := tok.ext; x != nil {
			if x.lastUsed != 0 {
				used := x.lastUsed
				rows[i].LastUsed = &used
			}
			rows[i].LastIP = x.lastIP
			if len(x.allowed) > 0 {
				rows[i].AllowedIPs = events.PrefixStrings(x.allowed)
			}
		}
	}
	return rows
}

func (tok token) expiry() *int64 {
	if tok.expiresAt == 0 {
		return nil
	}
	x := tok.expiresAt
	return &x
}

// status derives a token's status from its expiry and the reader's clock.
func (t *Table) status(expiresAt int64, now time.Time) string {
	switch {
	case expiresAt == 0:
		return Active
	case !now.Before(time.Unix(expiresAt, 0)):
		return Expired
	case time.Unix(expiresAt, 0).Sub(now) <= t.warn:
		return Expiring
	}
	return Active
}

// Result is a validation's answer.
type Result struct {
	Valid     bool
	Reason    string // when not valid
	Account   string
	TokenID   string
	Name      string
	ExpiresAt *int64
	Status    string
}

// Validate judges a presented secret at now: one hash and one map lookup.
// When account is not empty the token must belong to it.
func (t *Table) Validate(secret, account string, now time.Time) Result {
	return t.ValidateFrom(secret, account, netip.Addr{}, now)
}

// ValidateFrom is Validate for a request from ip (the zero Addr when not
// known): a token with an allow-list refuses any other address, and an
// unknown one.
func (t *Table) ValidateFrom(secret, account string, ip netip.Addr, now time.Time) Result {
	if !events.IsSecretShaped(secret) {
		return Result{Reason: ReasonMalformed}
	}
	h := events.HashSecret(secret)
	key, possible := keyOf(account)
	var (
		c       token
		allowed []netip.Prefix
	)
	t.mu.RLock()
	tok, found := t.byHash[h]
	retiredAt := int64(-1)
	if !found {
		var r retired
		if r, found = t.rotated[h]; found {
			tok, retiredAt = r.tok, r.until
		}
	}
	if found {
		c = *tok
		if tok.ext != nil {
			allowed = tok.ext.allowed
		}
	}
	t.mu.RUnlock()
	switch {
	case !found:
		return Result{Reason: ReasonUnknown}
	case account != "" && (!possible || key != c.account.key):
		return Result{Reason: ReasonWrongAccount}
	case c.revoked, retiredAt >= 0 && now.Unix() >= retiredAt:
		return Result{Reason: ReasonRevoked}
	case len(allowed) > 0 && !allows(allowed, ip):
		return Result{Reason: ReasonIPDenied}
	}
	status := t.status(c.expiresAt, now)
	if status == Expired {
		return Result{Reason: ReasonExpired}
	}
	if account == "" {
		account = c.account.name
	}
	return Result{Valid: true, Account: account, TokenID: c.id.String(), Name: c.name, ExpiresAt: c.expiry(), Status: status}
}

func allows(list []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// LastUsed is when the live token was last recorded as used; zero if never.
func (t *Table) LastUsed(account, tokenID string) time.Time {
	id, err := ulid.ParseStrict(tokenID)
	if err != nil {
		return time.Time{}
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if a := t.accounts[account]; a != nil {
		if tok := a.live[id]; tok != nil && tok.ext != nil && tok.ext.lastUsed != 0 {
			return time.Unix(tok.ext.lastUsed, 0)
		}
	}
	return time.Time{}
}

// Accounts lists the accounts that have live tokens, in name order.
func (t *Table) Accounts() []string {
	t.mu.RLock()
	names := make([]string, 0, len(t.accounts))
	for name, a := range t.accounts {
		if len(a.live) > 0 {
			names = append(names, name)
		}
	}
	t.mu.RUnlock()
	slices.Sort(names)
	return names
}

// Notice is a live token whose expiry deserves a word: it entered the
// warning window (Status expiring) or passed (Status expired).
type Notice struct {
	Account   string `json:"account"`
	Name      string `json:"name"`
	TokenID   string `json:"token_id"`
	ExpiresAt int64  `json:"expires_at"`
	Status    string `json:"status"`
}

// Notices lists the live tokens that are expiring or expired at now. It walks
// every live token, one account at a time, so that validations never wait
// behind a long walk.
func (t *Table) Notices(now time.Time) []Notice {
	var out []Notice
	t.eachLive(func(a *account, tok *token) {
		if tok.expiresAt == 0 {
			return
		}
		if st := t.status(tok.expiresAt, now); st != Active {
			out = append(out, Notice{Account: a.name, Name: tok.name, TokenID: tok.id.String(), ExpiresAt: tok.expiresAt, Status: st})
		}
	})
	return out
}

// CountByStatus counts live tokens by status at now, for metrics.
func (t *Table) CountByStatus(now time.Time) map[string]int {
	counts := map[string]int{Active: 0, Expiring: 0, Expired: 0}
	t.eachLive(func(_ *account, tok *token) { counts[t.status(tok.expiresAt, now)]++ })
	return counts
}

// eachLive calls fn for every live token, holding the read lock for one
// account at a time: a writer waiting for the lock holds up new readers, so
// no reader may hold it for a walk of the whole table.
func (t *Table) eachLive(fn func(*account, *token)) {
	t.mu.RLock()
	accounts := make([]*account, 0, len(t.accounts))
	for _, a := range t.accounts {
		accounts = append(accounts, a)
	}
	t.mu.RUnlock()
	for _, a := range accounts {
		t.mu.RLock()
		for _, tok := range a.live {
			fn(a, tok)
		}
		t.mu.RUnlock()
	}
}
