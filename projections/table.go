package projections

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

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
	// A limited token lacks a feature the use needs (Need.Features).
	ReasonFeatureDenied = "feature_denied"
	// A read-only token was presented for a use that changes something (Need.Write).
	ReasonReadOnly = "read_only"
)

// DefaultWarn is the default warning window before expiry.
const DefaultWarn = 7 * 24 * time.Hour

// Table is the current token table of every account, with an index from each
// secret's hash to its token so that a validation is one lookup. It is laid
// out to stay small and out of the garbage collector's way (see slab.go): a
// live token costs about 216 bytes of heap.
type Table struct {
	warn time.Duration

	// changing is held by whatever changes the index, the accounts or the
	// applied sequence (Apply, Skip, resetAccount), beside mu, and alone by
	// Encode: a snapshot then reads a still table while validations, which
	// take only mu's read lock, go on.
	changing sync.Mutex
	mu       sync.RWMutex
	tokens   slab                        // every token ever created, revoked ones too
	byHash   hashIndex                   // a secret's hash -> its token in tokens
	rotated  map[events.Hash]retired     // secrets replaced by a rotation
	graced   map[ref][]events.Hash       // of rotated, each token's that may still work; see endRetired
	accounts map[string]*account         // by name
	numbered []*account                  // by number (token.account); nil once reset
	extras   []extra                     // rarer attributes, token.ext-1
	features featureSets                 // the sets of features tokens have, by token.features
	vouched  map[events.Hash]struct{}    // digests of events this node signed, not yet seen
	ahead    map[uint64]string           // sequence -> account of events ApplyOwn applied before applied reached them
	early    map[events.TokenID]earlyUse // last uses of tokens not created here yet; see NoteUse
	applied  uint64                      // last stream sequence folded in
	waiting  int                         // callers blocked in WaitApplied
	notify   chan struct{}               // closed when applied moves and someone waits
}

type account struct {
	name string
	key  accountKey
	num  uint32      // its place in Table.numbered
	head events.Hash // digest of the account's last applied event
	live map[events.TokenID]ref
}

// accountKey is an account's name in place: a token holds its account's, so
// that a validation that names its account compares it without a second trip
// to memory (account names are at most 16 bytes, none of them zero).
type accountKey [16]byte

// keyOf is name's accountKey; ok is false for a name no account can have.
func keyOf(name string) (k accountKey, ok bool) {
	if len(name) > len(k) || strings.IndexByte(name, 0) >= 0 {
		return k, false
	}
	copy(k[:], name)
	return k, true
}

// newAccount adds an account, with no tokens yet.
func (t *Table) newAccount(name string) *account {
	k, _ := keyOf(name)
	a := &account{name: name, key: k, num: uint32(len(t.numbered)), live: make(map[events.TokenID]ref)}
	t.numbered = append(t.numbered, a)
	t.accounts[name] = a
	return a
}

// dropped is the account of a token whose account was reset: it is in no
// index, and nothing finds it.
const dropped = ^uint32(0)

// token is one token, without a pointer: see slab.go. The fields a
// validation reads come first.
type token struct {
	hash      events.Hash // its secret's current hash: the index's key
	key       accountKey  // its account's name
	id        events.TokenID
	expiresAt int64  // Unix seconds; 0 for never
	account   uint32 // its account's number, or dropped
	ext       uint32 // its rarer attributes are Table.extras[ext-1]; 0 for none
	flags     uint8  // flagRevoked, flagReadOnly
	nameLen   uint8
	name      [events.MaxNameLen]byte
	features  uint32 // its features are Table.features.sets[features]; 0 for full access
	seq       uint64 // stream sequence of its creation: the table's order
	created   int64  // Unix milliseconds
}

// A token's flags.
const (
	flagRevoked  uint8 = 1 << iota
	flagReadOnly       // it may only do what changes nothing
)

func (tok *token) revoked() bool  { return tok.flags&flagRevoked != 0 }
func (tok *token) readOnly() bool { return tok.flags&flagReadOnly != 0 }

func (tok *token) nameString() string { return string(tok.name[:tok.nameLen]) }

func (tok *token) named(name string) bool { return string(tok.name[:tok.nameLen]) == name }

// setName names the token; false for a name longer than any token's (which
// Decode refuses before).
func (tok *token) setName(name string) bool {
	if len(name) > len(tok.name) {
		return false
	}
	tok.nameLen = uint8(copy(tok.name[:], name))
	return true
}

// extra holds a token's rarer attributes, out of line to keep tokens small.
type extra struct {
	lastUsed int64 // Unix seconds; 0 for never
	lastIP   string
	allowed  []events.Prefix // addresses it may be used from; none: any
}

// retired is a secret that a rotation replaced: it works until until (Unix
// seconds), then is refused as revoked; 0 when it ended at a rotation.
type retired struct {
	tok   ref
	until int64
}

// extraOf is tok's rarer attributes, made when first needed. The pointer is
// good until the next call.
func (t *Table) extraOf(tok *token) *extra {
	if tok.ext == 0 {
		t.extras = append(t.extras, extra{})
		tok.ext = uint32(len(t.extras))
	}
	return &t.extras[tok.ext-1]
}

// NewTable returns an empty table whose tokens turn "expiring" warn before
// they expire.
func NewTable(warn time.Duration) *Table {
	return &Table{
		warn:     warn,
		byHash:   newHashIndex(),
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
	t.lockToApply()
	defer t.unlockApplied()
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
	t.lockToApply()
	defer t.unlockApplied()
	if seq <= t.applied {
		return true // it came back first
	}
	if t.apply(seq, e, digest) != nil {
		return false // apply changes nothing when the chain does not continue
	}
	t.ahead[seq] = e.Account
	return true
}

// lockToApply takes both locks for apply, with room in the hash index for
// the one token an event may add; unlockApplied releases them.
//
// Growing the index means indexing every token again (about 0.1 s at a
// million), so the larger index is built holding only changing, while
// validations go on with the one in place, and put in place under mu.
func (t *Table) lockToApply() {
	t.changing.Lock()
	if t.byHash.full() {
		bigger := hashIndex{seed: t.byHash.seed}
		bigger.rebuild(&t.tokens)
		t.mu.Lock()
		t.byHash = bigger
		t.mu.Unlock()
	}
	t.mu.Lock()
}

func (t *Table) unlockApplied() {
	t.mu.Unlock()
	t.changing.Unlock()
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
		a = t.newAccount(e.Account)
	}
	a.head = digest
	id := e.TokenID
	d, ok := e.Data.(events.TokenCreated)
	if !ok {
		r := a.live[id]
		if r == 0 {
			return nil // every other event is of a live token
		}
		t.change(r, a, e)
		return nil
	}
	h := d.TokenHash
	if len(d.Name) > events.MaxNameLen || t.byHash.find(&t.tokens, h) != 0 || a.live[id] != 0 {
		return nil
	}
	r, tok := t.tokens.add()
	*tok = token{hash: h, key: a.key, id: id, account: a.num, seq: seq, created: e.At.UnixMilli()}
	tok.setName(d.Name)
	if d.ExpiresAt != nil {
		tok.expiresAt = *d.ExpiresAt
	}
	if len(d.AllowedIPs) > 0 {
		t.extraOf(tok).allowed = d.AllowedIPs
	}
	if len(d.Features) > 0 { // old events have none: full access
		tok.features = t.features.intern(d.Features)
	}
	if d.ReadOnly {
		tok.flags |= flagReadOnly
	}
	t.byHash.put(&t.tokens, r) // find said no token has h
	a.live[id] = r
	if u, ok := t.early[id]; ok {
		delete(t.early, id)
		if u.account == a.name {
			t.used(tok, u.at, u.ip)
		}
	}
	return nil
}

// change applies an event other than a creation to its live token, at r in
// account a.
func (t *Table) change(r ref, a *account, e events.Event) {
	tok := t.tokens.at(r)
	switch d := e.Data.(type) {
	case events.TokenRotated:
		old, h := d.OldTokenHash, d.TokenHash
		if !tok.named(d.Name) || tok.hash != old || t.byHash.find(&t.tokens, h) != 0 {
			return
		}
		tok.hash = h
		t.byHash.put(&t.tokens, r) // find said no token has h; the old hash's slot is passed over from now on
		// A rotation leaves at most the secret it replaces working, and only
		// with a grace period. Every secret retired before ends now, even one
		// still in its own grace: a rotation without grace is how an operator
		// cuts off every earlier secret, and one with grace keeps the
		// immediately previous secret alone, never extending an older one.
		t.endRetired(r)
		retire := retired{tok: r}
		if d.GraceUntil != nil && *d.GraceUntil > 0 {
			retire.until = *d.GraceUntil
			t.graced[r] = append(t.graced[r], old)
		}
		t.rotated[old] = retire
	case events.AllowedIPsSet:
		if tok.named(d.Name) {
			ps := d.AllowedIPs
			if len(ps) == 0 {
				ps = nil
			}
			if ps != nil || tok.ext != 0 {
				t.extraOf(tok).allowed = ps
			}
		}
	case events.FeaturesSet:
		if tok.named(d.Name) {
			tok.features = t.features.intern(d.Features)
		}
	case events.TokenUsed: // written before last uses moved to their own bucket
		t.used(tok, e.At.Unix(), d.IP)
	case events.TokenRenamed:
		if tok.named(d.OldName) {
			tok.setName(d.NewName)
		}
	case events.TokenRevoked:
		if tok.named(d.Name) {
			tok.flags |= flagRevoked
			delete(a.live, tok.id)
		}
	}
}

// maxEarly bounds the last uses kept for tokens the table does not hold.
const maxEarly = 4096

// earlyUse is a last use of a token whose creation the table has not applied.
type earlyUse struct {
	account string
	at      int64 // Unix seconds
	ip      string
}

// NoteUse applies a last use kept outside the stream (jetstream.Used) to its
// live token. The table keeps the latest use of each token, whichever way it
// came: an old token.used event, a snapshot, or the bucket.
//
// A node records a use once its own table holds the token, which may be
// before this table does: with wait, a use of a token the table does not hold
// is kept until the token's creation is applied. Without it (the uses stored
// before this node began to watch, all of tokens created before it caught up)
// such a use is of a revoked token, and dropped.
func (t *Table) NoteUse(u events.LastUse, wait bool) {
	id, err := events.ParseTokenID(u.TokenID)
	if err != nil {
		return
	}
	t.changing.Lock()
	defer t.changing.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if a := t.accounts[u.Account]; a != nil {
		if r := a.live[id]; r != 0 {
			t.used(t.tokens.at(r), u.At.Unix(), u.IP)
			return
		}
	}
	if !wait {
		return
	}
	if t.early == nil || len(t.early) >= maxEarly {
		// Full only of uses of tokens revoked meanwhile: a token being
		// created arrives within moments. A use dropped here is shown
		// after the token's next recorded use.
		t.early = make(map[events.TokenID]earlyUse)
	}
	if e, ok := t.early[id]; !ok || e.at <= u.At.Unix() {
		t.early[id] = earlyUse{account: u.Account, at: u.At.Unix(), ip: u.IP}
	}
}

// used records a use of tok at (Unix seconds) from ip, unless the table
// knows of a later one. The caller holds both locks.
func (t *Table) used(tok *token, at int64, ip string) {
	if tok.ext != 0 && t.extras[tok.ext-1].lastUsed > at {
		return
	}
	x := t.extraOf(tok)
	x.lastUsed, x.lastIP = at, ip
}

// endRetired ends every secret of the token at r that an earlier rotation
// left working. graced holds those secrets, so that a rotation need not walk
// every secret ever retired; it is derived from rotated (the entries whose
// until is not 0) and, since a snapshot does not carry it, built from there
// when first needed after a table is decoded or an account reset.
func (t *Table) endRetired(r ref) {
	if t.graced == nil {
		t.graced = make(map[ref][]events.Hash)
		for h, x := range t.rotated {
			if x.until != 0 {
				t.graced[x.tok] = append(t.graced[x.tok], h)
			}
		}
	}
	for _, h := range t.graced[r] {
		if x, ok := t.rotated[h]; ok && x.tok == r {
			x.until = 0
			t.rotated[h] = x
		}
	}
	delete(t.graced, r)
}

// resetAccount forgets an account and every token it had, so that it can be
// built again from its events. It walks every token: it is for the rare
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
	for r := ref(1); int(r) <= t.tokens.n; r++ {
		if tok := t.tokens.at(r); tok.account == a.num {
			tok.account = dropped
		}
	}
	t.byHash.rebuild(&t.tokens)
	for h, r := range t.rotated {
		if t.tokens.at(r.tok).account == dropped {
			delete(t.rotated, h)
		}
	}
	t.graced = nil // built again from rotated when next needed
	for seq, account := range t.ahead {
		if account == name {
			delete(t.ahead, seq) // to be applied again when it comes
		}
	}
	delete(t.accounts, name)
	t.numbered[a.num] = nil
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
	TokenID    events.TokenID
	Created    time.Time
	ExpiresAt  *int64
	FullAccess bool     // it has no features, and may do anything
	Features   []string // what a limited token may do, sorted; nil for full access
	ReadOnly   bool     // it may only do what changes nothing
	Status     string
	LastUsed   *int64   // Unix seconds of the last recorded use
	LastIP     string   // where it was last used from, when known
	AllowedIPs []string // CIDRs it may be used from; none: any
}

// List returns the account's live tokens, oldest first, with statuses as of now.
func (t *Table) List(account string, now time.Time) []Row {
	type listed struct {
		tok      token
		ext      extra
		features []string
	}
	t.mu.RLock()
	a := t.accounts[account]
	var toks []listed
	if a != nil {
		toks = make([]listed, 0, len(a.live))
		for _, r := range a.live {
			l := listed{tok: *t.tokens.at(r)}
			if l.tok.ext != 0 {
				l.ext = t.extras[l.tok.ext-1]
			}
			l.features = t.features.of(l.tok.features)
			toks = append(toks, l)
		}
	}
	t.mu.RUnlock()
	slices.SortFunc(toks, func(a, b listed) int { return cmp.Compare(a.tok.seq, b.tok.seq) })
	rows := make([]Row, len(toks))
	for i, l := range toks {
		tok, x := &l.tok, &l.ext
		rows[i] = Row{Name: tok.nameString(), TokenID: tok.id, Created: time.UnixMilli(tok.created), ExpiresAt: tok.expiry(),
			FullAccess: len(l.features) == 0, Features: slices.Clone(l.features), ReadOnly: tok.readOnly(),
			Status: t.status(tok.expiresAt, now), LastIP: x.lastIP}
		if x.lastUsed != 0 {
			used := x.lastUsed
			rows[i].LastUsed = &used
		}
		if len(x.allowed) > 0 {
			rows[i].AllowedIPs = events.PrefixStrings(x.allowed)
		}
	}
	return rows
}

func (tok *token) expiry() *int64 {
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
	TokenID   events.TokenID
	ExpiresAt *int64
	Status    string
	// Features are what a limited token may do, sorted; nil for full access.
	// The table shares them with every token that has the same set: read
	// them, never change them.
	Features []string
	ReadOnly bool // the token may only do what changes nothing

	// The token's name, as the table keeps it: a string of it would be an
	// allocation on every validation, which a reply only copies out.
	name    [events.MaxNameLen]byte
	nameLen uint8
}

// Name is the valid token's name.
func (r *Result) Name() string { return string(r.NameBytes()) }

// NameBytes is the valid token's name, good as long as r.
func (r *Result) NameBytes() []byte { return r.name[:r.nameLen] }

// SetName names the token of a Result made outside the table (a transport's
// test); false, and the name cut, when longer than a token's may be.
func (r *Result) SetName(name string) bool {
	r.nameLen = uint8(copy(r.name[:], name))
	return len(name) <= len(r.name)
}

// Need is what a use of a token asks of it beyond being valid.
type Need struct {
	// Features must each be among a limited token's features; a token with
	// full access has them all.
	Features []string
	// Write says that the use changes something, which a read-only token
	// may not do.
	Write bool
}

// Validate judges a presented secret at now: one hash and one lookup.
// When account is not empty the token must belong to it.
func (t *Table) Validate(secret, account string, now time.Time) Result {
	return t.ValidateFor(secret, account, netip.Addr{}, Need{}, func() time.Time { return now })
}

// ValidateFrom is Validate for a request from ip (the zero Addr when not
// known): a token with an allow-list refuses any other address, and an
// unknown one.
func (t *Table) ValidateFrom(secret, account string, ip netip.Addr, now time.Time) Result {
	return t.ValidateFor(secret, account, ip, Need{}, func() time.Time { return now })
}

// ValidateFor is ValidateFrom for a use that needs more than a valid token:
// a token without one of need's features is refused as feature_denied, and
// a read-only token for a write as read_only, once it is otherwise valid
// (so that a revoked or expired token says so first). It reads the clock,
// now, only for a token whose answer depends on the time (one that expires,
// or a secret a rotation replaced): a clock reading is a tenth of a
// validation's own work, and most tokens never expire.
func (t *Table) ValidateFor(secret, account string, ip netip.Addr, need Need, now func() time.Time) Result {
	if !events.IsSecretShaped(secret) {
		return Result{Reason: ReasonMalformed}
	}
	h := events.HashSecret(secret)
	key, possible := keyOf(account)
	var (
		c         token
		allowed   []events.Prefix
		features  []string
		ownerName string
	)
	t.mu.RLock()
	r := t.byHash.find(&t.tokens, h)
	var (
		replaced bool  // h is a secret a rotation replaced
		until    int64 // when it stops working
	)
	if r == 0 {
		if old, ok := t.rotated[h]; ok {
			r, replaced, until = old.tok, true, old.until
		}
	}
	if r != 0 {
		c = *t.tokens.at(r)
		if c.ext != 0 {
			allowed = t.extras[c.ext-1].allowed
		}
		features = t.features.of(c.features)
		if account == "" {
			ownerName = t.numbered[c.account].name
		}
	}
	t.mu.RUnlock()
	switch {
	case r == 0:
		return Result{Reason: ReasonUnknown}
	case account != "" && (!possible || key != c.key):
		return Result{Reason: ReasonWrongAccount}
	case c.revoked(), replaced && now().Unix() >= until:
		return Result{Reason: ReasonRevoked}
	case len(allowed) > 0 && !allows(allowed, ip):
		return Result{Reason: ReasonIPDenied}
	}
	status := Active
	if c.expiresAt != 0 {
		status = t.status(c.expiresAt, now())
	}
	if status == Expired {
		return Result{Reason: ReasonExpired}
	}
	if need.Write && c.readOnly() {
		return Result{Reason: ReasonReadOnly}
	}
	if features != nil && !hasAll(features, need.Features) {
		return Result{Reason: ReasonFeatureDenied}
	}
	if account == "" {
		account = ownerName
	}
	return Result{Valid: true, Account: account, TokenID: c.id, ExpiresAt: c.expiry(), Status: status,
		Features: features, ReadOnly: c.readOnly(), name: c.name, nameLen: c.nameLen}
}

// hasAll says whether the sorted set holds every one of need.
func hasAll(set, need []string) bool {
	for _, f := range need {
		if _, ok := slices.BinarySearch(set, f); !ok {
			return false
		}
	}
	return true
}

func allows(list []events.Prefix, ip netip.Addr) bool {
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// LastUsed is when the live token was last recorded as used; zero if never.
func (t *Table) LastUsed(account string, id events.TokenID) time.Time {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if a := t.accounts[account]; a != nil {
		if r := a.live[id]; r != 0 {
			if tok := t.tokens.at(r); tok.ext != 0 && t.extras[tok.ext-1].lastUsed != 0 {
				return time.Unix(t.extras[tok.ext-1].lastUsed, 0)
			}
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
	Account   string         `json:"account"`
	Name      string         `json:"name"`
	TokenID   events.TokenID `json:"token_id"`
	ExpiresAt int64          `json:"expires_at"`
	Status    string         `json:"status"`
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
			out = append(out, Notice{Account: a.name, Name: tok.nameString(), TokenID: tok.id, ExpiresAt: tok.expiresAt, Status: st})
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
		for _, r := range a.live {
			fn(a, t.tokens.at(r))
		}
		t.mu.RUnlock()
	}
}
