package projections

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"tokenledger/events"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// fixture builds events with predictable ids and chains them per account.
type fixture struct {
	n     int
	heads map[string]events.Hash
}

// apply links e to its account's chain and applies it.
func (f *fixture) apply(t *testing.T, tab *Table, seq uint64, e events.Event) {
	t.Helper()
	if f.heads == nil {
		f.heads = make(map[string]events.Hash)
	}
	if h := f.heads[e.Account]; h != (events.Hash{}) {
		e.Prev = h.String()
	}
	raw, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.Apply(seq, e, events.Digest(raw)); err != nil {
		t.Fatalf("apply %d: %v", seq, err)
	}
	f.heads[e.Account] = events.Digest(raw)
}

// mustRoundTrip is tab encoded as a snapshot and decoded again.
func mustRoundTrip(t *testing.T, tab *Table) *Table {
	t.Helper()
	var buf bytes.Buffer
	if _, err := tab.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	restored, err := DecodeTable(&buf, int64(buf.Len()), DefaultWarn)
	if err != nil {
		t.Fatal(err)
	}
	return restored
}

func (f *fixture) id() string { f.n++; return fmt.Sprintf("01JD%022d", f.n) }

// tokenID is a fresh token id, from the same counter as id.
func (f *fixture) tokenID() events.TokenID {
	id, err := events.ParseTokenID(f.id())
	if err != nil {
		panic(err)
	}
	return id
}

func (f *fixture) create(account, name, secret string, expires *time.Time) events.Event {
	d := events.TokenCreated{Name: name, TokenHash: events.HashSecret(secret), FullAccess: true}
	if expires != nil {
		x := expires.Unix()
		d.ExpiresAt = &x
	}
	return events.Event{ID: f.id(), At: t0, Account: account, TokenID: f.tokenID(), Data: d}
}

func secret(c byte) string {
	b := make([]byte, events.SecretLen)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

func TestStatusIsDerivedWhenRead(t *testing.T) {
	tab := NewTable(7 * 24 * time.Hour)
	var f fixture
	exp := t0.Add(10 * 24 * time.Hour)
	f.apply(t, tab, 1, f.create("bob", "a", secret('A'), &exp))
	for _, tt := range []struct {
		name string
		at   time.Time
		want string
	}{
		{"well before", t0, Active},
		{"just outside the window", exp.Add(-7*24*time.Hour - time.Second), Active},
		{"at the window's start", exp.Add(-7 * 24 * time.Hour), Expiring},
		{"one second before expiry", exp.Add(-time.Second), Expiring},
		{"at expiry", exp, Expired},
		{"long after", exp.Add(365 * 24 * time.Hour), Expired},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rows := tab.List("bob", tt.at)
			if len(rows) != 1 || rows[0].Status != tt.want {
				t.Fatalf("at %v: %+v, want %s", tt.at, rows, tt.want)
			}
		})
	}
	// An expired token stays listed until revoked, and does not validate.
	if r := tab.Validate(secret('A'), "bob", exp); r.Valid || r.Reason != ReasonExpired {
		t.Fatalf("validate at expiry: %+v", r)
	}
	if r := tab.Validate(secret('A'), "bob", exp.Add(-time.Second)); !r.Valid || r.Status != Expiring {
		t.Fatalf("validate a second before: %+v", r)
	}
}

func TestListIsOldestFirstPerAccount(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	evs := []events.Event{
		f.create("bob", "z", secret('A'), nil),
		f.create("carol", "c1", secret('B'), nil),
		f.create("bob", "a", secret('C'), nil),
		f.create("bob", "m", secret('D'), nil),
	}
	for i, e := range evs {
		f.apply(t, tab, uint64(i+1), e)
	}
	f.apply(t, tab, 5, events.Event{ID: f.id(), At: t0, Account: "bob", TokenID: evs[0].TokenID, Data: events.TokenRenamed{OldName: "z", NewName: "zz"}})
	f.apply(t, tab, 6, events.Event{ID: f.id(), At: t0, Account: "bob", TokenID: evs[3].TokenID, Data: events.TokenRevoked{Name: "m"}})
	var have []string
	for _, r := range tab.List("bob", t0) {
		have = append(have, r.Name)
	}
	if fmt.Sprint(have) != "[zz a]" {
		t.Fatalf("bob's list %v, want [zz a]", have)
	}
	if rows := tab.List("carol", t0); len(rows) != 1 || rows[0].Name != "c1" {
		t.Fatalf("carol's list %+v", rows)
	}
	if rows := tab.List("nobody", t0); len(rows) != 0 {
		t.Fatalf("unknown account: %+v", rows)
	}
	if fmt.Sprint(tab.Accounts()) != "[bob carol]" {
		t.Fatalf("accounts %v", tab.Accounts())
	}
	if tab.Applied() != 6 {
		t.Fatalf("applied %d", tab.Applied())
	}
}

func TestApplyIgnoresWhatDoesNotFit(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	c := f.create("bob", "a", secret('A'), nil)
	f.apply(t, tab, 1, c)
	// A copy of the creation under another id with the same hash, a rename
	// with the wrong old name, and a revoke of a token of another account
	// change nothing.
	dup := f.create("bob", "b", secret('A'), nil)
	f.apply(t, tab, 2, dup)
	f.apply(t, tab, 3, events.Event{ID: f.id(), Account: "bob", TokenID: c.TokenID, Data: events.TokenRenamed{OldName: "x", NewName: "y"}})
	f.apply(t, tab, 4, events.Event{ID: f.id(), Account: "carol", TokenID: c.TokenID, Data: events.TokenRevoked{Name: "a"}})
	rows := tab.List("bob", t0)
	if len(rows) != 1 || rows[0].Name != "a" || rows[0].TokenID != c.TokenID {
		t.Fatalf("table %+v", rows)
	}
	if r := tab.Validate(secret('A'), "", t0); !r.Valid || r.TokenID != c.TokenID {
		t.Fatalf("validate %+v", r)
	}
}

func TestWaitApplied(t *testing.T) {
	tab := NewTable(DefaultWarn)
	done := make(chan error)
	go func() { done <- tab.WaitApplied(context.Background(), 2) }()
	var f fixture
	f.apply(t, tab, 1, f.create("bob", "a", secret('A'), nil))
	tab.Skip(2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tab.WaitApplied(ctx, 3); err == nil {
		t.Fatal("WaitApplied on a cancelled context returned nil")
	}
	if err := tab.WaitApplied(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
}

func TestApplyKeepsEachAccountsChain(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	first := f.create("bob", "a", secret('A'), nil)
	f.apply(t, tab, 1, first)
	// A second "first" event of bob (no prev) is a replay or a forgery.
	again := f.create("bob", "b", secret('B'), nil)
	raw, _ := events.Encode(again)
	if err := tab.Apply(2, again, events.Digest(raw)); events.ErrorCode(err) != events.Invalid {
		t.Fatalf("unchained event: %v", err)
	}
	// Carol's chain is her own.
	f.apply(t, tab, 3, f.create("carol", "c", secret('C'), nil))
	if r := tab.Validate(secret('B'), "", t0); r.Valid {
		t.Fatal("an event off the chain made a token valid")
	}
	if tab.Applied() != 3 {
		t.Fatalf("applied %d, want 3: a refused event still moves the sequence", tab.Applied())
	}
	f.apply(t, tab, 4, f.create("bob", "d", secret('D'), nil))
	if rows := tab.List("bob", t0); len(rows) != 2 {
		t.Fatalf("bob: %+v", rows)
	}
}

// TestValidateChecksTheAccount: a validation that names an account passes
// only for the token's own account, however close another name comes.
func TestValidateChecksTheAccount(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	f.apply(t, tab, 1, f.create("bob", "a", secret('A'), nil))
	f.apply(t, tab, 2, f.create("abcdefghijklmnop", "a", secret('B'), nil))
	for _, tt := range []struct {
		secret, account, want string
	}{
		{secret('A'), "bob", ""},
		{secret('A'), "", ""},
		{secret('A'), "bo", ReasonWrongAccount},
		{secret('A'), "bobb", ReasonWrongAccount},
		{secret('A'), "bob\x00", ReasonWrongAccount},
		{secret('A'), "\x00bob", ReasonWrongAccount},
		{secret('B'), "abcdefghijklmnop", ""},
		{secret('B'), "abcdefghijklmnopq", ReasonWrongAccount},
		{secret('B'), "abcdefghijklmno", ReasonWrongAccount},
		{secret('C'), "bob\x00", ReasonUnknown},
	} {
		r := tab.Validate(tt.secret, tt.account, t0)
		if r.Reason != tt.want || r.Valid != (tt.want == "") {
			t.Errorf("validate %c… for %q: %+v, want reason %q", tt.secret[0], tt.account, r, tt.want)
		}
		if r.Valid && r.Account != map[byte]string{'A': "bob", 'B': "abcdefghijklmnop"}[tt.secret[0]] {
			t.Errorf("validate %c… for %q: account %q", tt.secret[0], tt.account, r.Account)
		}
	}
}

// TestApplyOwn: a node's own event applied ahead of the stream counts once,
// is refused when the table lacks the account's earlier events, and
// survives a snapshot taken before the event came back.
func TestApplyOwn(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	f.apply(t, tab, 1, f.create("bob", "a", secret('A'), nil))

	// bob's event at 3 while 2 (carol's) is not applied yet: it continues
	// bob's chain, so it is applied at once.
	own := f.create("bob", "b", secret('B'), nil)
	own.Prev = f.heads["bob"].String()
	raw, _ := events.Encode(own)
	digest := events.Digest(raw)
	if !tab.ApplyOwn(3, own, digest) {
		t.Fatal("an event that continues its chain was not applied ahead")
	}
	if r := tab.Validate(secret('B'), "bob", t0); !r.Valid {
		t.Fatalf("own event not visible: %+v", r)
	}
	if tab.Applied() != 1 {
		t.Fatalf("applied %d, want 1: the sequence moves only with the stream", tab.Applied())
	}
	// A snapshot now, restored, must not apply the event again.
	restored := mustRoundTrip(t, tab)
	for _, tb := range []*Table{tab, restored} {
		f2 := fixture{n: f.n, heads: map[string]events.Hash{}}
		f2.apply(t, tb, 2, f2.create("carol", "c", secret('C'), nil))
		if err := tb.Apply(3, own, digest); err != nil {
			t.Fatalf("the own event coming back: %v", err)
		}
		if rows := tb.List("bob", t0); len(rows) != 2 || tb.Applied() != 3 || len(tb.ahead) != 0 {
			t.Fatalf("after the own event came back: %d rows, applied %d, %d ahead", len(rows), tb.Applied(), len(tb.ahead))
		}
	}
	f.heads["bob"] = digest

	// An event whose account's previous event the table has not applied.
	f.n += 10
	late := f.create("bob", "d", secret('D'), nil)
	late.Prev = events.HashSecret("an event not applied yet").String()
	if tab.ApplyOwn(9, late, events.HashSecret("late")) {
		t.Fatal("an event that does not continue the table's chain was applied ahead")
	}
	if r := tab.Validate(secret('D'), "", t0); r.Valid {
		t.Fatalf("refused event visible: %+v", r)
	}
	// Once the stream has passed it, ApplyOwn says it is there.
	if !tab.ApplyOwn(2, f.create("carol", "x", secret('X'), nil), events.Hash{}) {
		t.Fatal("an event the table has passed is not reported applied")
	}
}

// TestIndexOverManyTokens holds the hash index to what validation promises
// through its growths, rotations (which leave slots behind), a reset account
// and a snapshot's round trip.
func TestIndexOverManyTokens(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	type issued struct {
		account, secret, old string
	}
	var all []issued
	seq := uint64(0)
	for i := range 3000 { // the index starts at 16 slots and grows eight times
		account := fmt.Sprintf("acct%d", i%3)
		s := events.NewSecret()
		seq++
		e := f.create(account, fmt.Sprintf("t%d", i), s, nil)
		f.apply(t, tab, seq, e)
		it := issued{account: account, secret: s}
		if i%7 == 0 {
			it.old, it.secret = s, events.NewSecret()
			seq++
			f.apply(t, tab, seq, events.Event{ID: f.id(), At: t0, Account: account, TokenID: e.TokenID,
				Data: events.TokenRotated{Name: fmt.Sprintf("t%d", i), TokenHash: events.HashSecret(it.secret), OldTokenHash: events.HashSecret(s)}})
		}
		all = append(all, it)
	}
	check := func(tab *Table, gone string) {
		t.Helper()
		for _, it := range all {
			want, wantOld := "", ReasonRevoked
			if it.account == gone {
				want, wantOld = ReasonUnknown, ReasonUnknown
			}
			if r := tab.Validate(it.secret, it.account, t0); r.Reason != want || r.Valid != (want == "") {
				t.Fatalf("%s's token: %+v, want reason %q", it.account, r, want)
			}
			if it.old != "" {
				if r := tab.Validate(it.old, "", t0); r.Reason != wantOld {
					t.Fatalf("%s's rotated secret: %+v, want %q", it.account, r, wantOld)
				}
			}
		}
		if r := tab.Validate(events.NewSecret(), "", t0); r.Reason != ReasonUnknown {
			t.Fatalf("a secret never issued: %+v", r)
		}
	}
	check(tab, "")

	tab.resetAccount("acct1")
	check(tab, "acct1")
	if rows := tab.List("acct0", t0); len(rows) != 1000 {
		t.Fatalf("acct0 lists %d tokens after acct1's reset, want 1000", len(rows))
	}
	check(mustRoundTrip(t, tab), "acct1")
}

func TestIndexRebuildFindsTwins(t *testing.T) {
	var s slab
	x := newHashIndex()
	for _, c := range []byte{'a', 'b', 'a'} {
		_, tok := s.add()
		tok.hash = events.HashSecret(secret(c))
	}
	if x.rebuild(&s) {
		t.Fatal("two tokens with one hash were indexed as unique")
	}
	s.at(3).hash = events.HashSecret(secret('c'))
	if !x.rebuild(&s) || x.find(&s, events.HashSecret(secret('c'))) != 3 || x.find(&s, events.HashSecret(secret('d'))) != 0 {
		t.Fatal("rebuild of distinct hashes")
	}
}

// TestIndexRebuildFindsEveryToken: a rebuild over many stretches of the
// index (see indexBuild) finds every token in an account, by its hash, and
// none of those in no account.
func TestIndexRebuildFindsEveryToken(t *testing.T) {
	var s slab
	const n = 3*chunkSize + 100 // more than one chunk, and four stretches of slots
	for i := range n {
		_, tok := s.add()
		tok.hash = events.HashSecret(fmt.Sprint(i))
		if i%7 == 3 {
			tok.account = dropped
		}
	}
	x := newHashIndex()
	if !x.rebuild(&s) {
		t.Fatal("distinct hashes were found twins")
	}
	if len(x.slots)/stretchSlots < 2 {
		t.Fatalf("%d slots: one stretch, the test tests nothing of the order", len(x.slots))
	}
	indexed := 0
	for r := ref(1); int(r) <= s.n; r++ {
		want := r
		if s.at(r).account == dropped {
			want = 0
		} else {
			indexed++
		}
		if got := x.find(&s, s.at(r).hash); got != want {
			t.Fatalf("token %d found as %d, want %d", r, got, want)
		}
	}
	if x.used != indexed {
		t.Errorf("%d slots used, want %d", x.used, indexed)
	}
}

func TestApplyRefusesNamesTooLong(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	long := strings.Repeat("n", events.MaxNameLen+1)
	f.apply(t, tab, 1, f.create("bob", long, secret('a'), nil))
	if rows := tab.List("bob", t0); len(rows) != 0 {
		t.Fatalf("a name of %d bytes was applied: %+v", len(long), rows)
	}
	e := f.create("bob", "fits", secret('b'), nil)
	f.apply(t, tab, 2, e)
	f.apply(t, tab, 3, events.Event{ID: f.id(), At: t0, Account: "bob", TokenID: e.TokenID, Data: events.TokenRenamed{OldName: "fits", NewName: long}})
	if rows := tab.List("bob", t0); len(rows) != 1 || rows[0].Name != "fits" {
		t.Fatalf("after a rename to a name too long: %+v", rows)
	}
}

// TestValidateWhileTheIndexGrows validates one token over and over while
// thousands more are applied, so that the index grows (and is swapped)
// under the validations; run it with -race.
func TestValidateWhileTheIndexGrows(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	first := events.NewSecret()
	f.apply(t, tab, 1, f.create("bob", "first", first, nil))
	done := make(chan struct{})
	failed := make(chan Result, 1)
	go func() {
		defer close(failed)
		for {
			select {
			case <-done:
				return
			default:
			}
			if r := tab.Validate(first, "bob", t0); !r.Valid {
				failed <- r
				return
			}
		}
	}()
	for i := range 5000 {
		f.apply(t, tab, uint64(i+2), f.create("bob", fmt.Sprintf("t%d", i), events.NewSecret(), nil))
	}
	close(done)
	if r, bad := <-failed; bad {
		t.Fatalf("while the index grew: %+v", r)
	}
}

// applyEach links e to its account's chain, as apply does, and applies it
// to every table given: tables that hold the same events stay level.
func (f *fixture) applyEach(t *testing.T, tabs []*Table, seq uint64, e events.Event) {
	t.Helper()
	if f.heads == nil {
		f.heads = make(map[string]events.Hash)
	}
	if h := f.heads[e.Account]; h != (events.Hash{}) {
		e.Prev = h.String()
	}
	raw, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, tab := range tabs {
		if err := tab.Apply(seq, e, events.Digest(raw)); err != nil {
			t.Fatalf("apply %d: %v", seq, err)
		}
	}
	f.heads[e.Account] = events.Digest(raw)
}

// TestRotationEndsEarlierSecrets: a rotation without grace ends every
// earlier secret of its token at once; one with grace keeps only the secret
// it replaces working, to its grace's end, and never extends an older one.
// A table restored from a snapshot taken before the last rotation, with that
// rotation applied after, answers the same.
func TestRotationEndsEarlierSecrets(t *testing.T) {
	at := func(d time.Duration) *int64 { x := t0.Add(d).Unix(); return &x }
	for _, tt := range []struct {
		name   string
		graces []*int64 // each rotation's grace_until, in order
		when   time.Time
		works  []bool // the creation's secret, then each rotation's
	}{
		{"grace, then none", []*int64{at(time.Hour), nil}, t0, []bool{false, false, true}},
		{"grace, then grace", []*int64{at(time.Hour), at(time.Hour)}, t0, []bool{false, true, true}},
		{"grace, then a longer grace", []*int64{at(time.Hour), at(3 * time.Hour)}, t0.Add(2 * time.Hour), []bool{false, true, true}},
		{"longer grace, then a shorter one", []*int64{at(3 * time.Hour), at(time.Hour)}, t0.Add(2 * time.Hour), []bool{false, false, true}},
		{"none, then grace", []*int64{nil, at(time.Hour)}, t0, []bool{false, true, true}},
		{"grace, grace, then none", []*int64{at(time.Hour), at(time.Hour), nil}, t0, []bool{false, false, false, true}},
		{"a grace that ended before it began", []*int64{at(-time.Hour)}, t0, []bool{false, true}},
		{"a negative grace", []*int64{func() *int64 { x := int64(-1); return &x }()}, t0, []bool{false, true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var f fixture
			tab := NewTable(DefaultWarn)
			c := f.create("bob", "a", secret('A'), nil)
			f.apply(t, tab, 1, c)
			secrets := []string{secret('A')}
			var restored *Table
			for i, g := range tt.graces {
				s := secret(byte('B' + i))
				tabs := []*Table{tab}
				if i == len(tt.graces)-1 {
					restored = mustRoundTrip(t, tab) // as a node that starts from a snapshot
					tabs = append(tabs, restored)
				}
				f.applyEach(t, tabs, uint64(2+i), events.Event{ID: f.id(), At: t0, Account: "bob", TokenID: c.TokenID,
					Data: events.TokenRotated{Name: "a", TokenHash: events.HashSecret(s),
						OldTokenHash: events.HashSecret(secrets[len(secrets)-1]), GraceUntil: g}})
				secrets = append(secrets, s)
			}
			for _, view := range []struct {
				name  string
				table *Table
			}{{"applied", tab}, {"restored, then applied", restored}, {"snapshot of the applied", mustRoundTrip(t, tab)}} {
				for j, s := range secrets {
					r := view.table.Validate(s, "bob", tt.when)
					if r.Valid != tt.works[j] || (!r.Valid && r.Reason != ReasonRevoked) {
						t.Errorf("%s: secret %d of %d: %+v, want valid=%v (else revoked)", view.name, j, len(secrets)-1, r, tt.works[j])
					}
				}
			}
		})
	}
}
