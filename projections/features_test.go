package projections

import (
	"bytes"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"
	"unsafe"

	"tokenledger/events"
)

// limited is a creation of a token with features and, maybe, read-only.
func (f *fixture) limited(account, name, secret string, features []string, readOnly bool) events.Event {
	e := f.create(account, name, secret, nil)
	d := e.Data.(events.TokenCreated)
	d.Features, d.ReadOnly, d.FullAccess = features, readOnly, len(features) == 0
	e.Data = d
	return e
}

func TestValidateForFeaturesAndWrites(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	f.apply(t, tab, 1, f.create("bob", "full", secret('A'), nil))
	f.apply(t, tab, 2, f.limited("bob", "mail", secret('B'), []string{"email", "ftp"}, false))
	f.apply(t, tab, 3, f.limited("bob", "reader", secret('C'), nil, true))
	f.apply(t, tab, 4, f.limited("bob", "mail-reader", secret('D'), []string{"email"}, true))
	f.apply(t, tab, 5, f.limited("carol", "mail", secret('E'), []string{"email", "ftp"}, false)) // shares bob's set

	for _, tt := range []struct {
		name     string
		secret   string
		need     Need
		reason   string
		features []string
		readOnly bool
	}{
		{"full access, nothing needed", secret('A'), Need{}, "", nil, false},
		{"full access has every feature", secret('A'), Need{Features: []string{"email", "anything"}, Write: true}, "", nil, false},
		{"limited, nothing needed", secret('B'), Need{}, "", []string{"email", "ftp"}, false},
		{"limited, a feature it has", secret('B'), Need{Features: []string{"ftp"}}, "", []string{"email", "ftp"}, false},
		{"limited, all it has", secret('B'), Need{Features: []string{"ftp", "email"}, Write: true}, "", []string{"email", "ftp"}, false},
		{"limited, a feature it lacks", secret('B'), Need{Features: []string{"dns"}}, ReasonFeatureDenied, nil, false},
		{"limited, one of two lacking", secret('B'), Need{Features: []string{"email", "dns"}}, ReasonFeatureDenied, nil, false},
		{"limited, a name it could never have", secret('B'), Need{Features: []string{"E mail"}}, ReasonFeatureDenied, nil, false},
		{"read-only reads", secret('C'), Need{Features: []string{"email"}}, "", nil, true},
		{"read-only writes", secret('C'), Need{Write: true}, ReasonReadOnly, nil, false},
		{"limited read-only reads", secret('D'), Need{Features: []string{"email"}}, "", []string{"email"}, true},
		{"limited read-only writes", secret('D'), Need{Features: []string{"email"}, Write: true}, ReasonReadOnly, nil, false},
		{"limited read-only, a feature it lacks", secret('D'), Need{Features: []string{"ftp"}}, ReasonFeatureDenied, nil, false},
		{"another account's token with the same set", secret('E'), Need{Features: []string{"ftp"}}, "", []string{"email", "ftp"}, false},
		{"unknown says unknown first", secret('Z'), Need{Features: []string{"dns"}, Write: true}, ReasonUnknown, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := tab.ValidateFor(tt.secret, "", netip.Addr{}, tt.need, func() time.Time { return t0 })
			if r.Reason != tt.reason || r.Valid != (tt.reason == "") {
				t.Fatalf("%+v, want reason %q", r, tt.reason)
			}
			if r.Valid && (!slices.Equal(r.Features, tt.features) || (r.Features == nil) != (tt.features == nil) || r.ReadOnly != tt.readOnly) {
				t.Fatalf("features %q read-only %v, want %q %v", r.Features, r.ReadOnly, tt.features, tt.readOnly)
			}
		})
	}
	if len(tab.features.sets) != 3 { // full access, {email, ftp}, {email}
		t.Fatalf("%d sets interned, want 3: %q", len(tab.features.sets), tab.features.sets)
	}

	// Rows show it, and changing a row's features changes nothing in the table.
	rows := tab.List("bob", t0)
	want := []struct {
		full     bool
		features []string
		readOnly bool
	}{{true, nil, false}, {false, []string{"email", "ftp"}, false}, {true, nil, true}, {false, []string{"email"}, true}}
	for i, w := range want {
		if rows[i].FullAccess != w.full || !reflect.DeepEqual(rows[i].Features, w.features) || rows[i].ReadOnly != w.readOnly {
			t.Fatalf("row %d %+v, want %+v", i, rows[i], w)
		}
	}
	rows[1].Features[0] = "changed"
	if r := tab.Validate(secret('B'), "", t0); r.Features[0] != "email" {
		t.Fatalf("a row's features are the table's: %q", r.Features)
	}
}

func TestFeaturesSetNarrowsAndWidens(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	c := f.create("bob", "deploy", secret('A'), nil)
	f.apply(t, tab, 1, c)
	set := func(seq uint64, name string, features ...string) {
		f.apply(t, tab, seq, events.Event{ID: f.id(), At: t0, Account: "bob", TokenID: c.TokenID,
			Data: events.FeaturesSet{Name: name, Features: append([]string{}, features...)}})
	}
	needs := func(feature string) string {
		return tab.ValidateFor(secret('A'), "bob", netip.Addr{}, Need{Features: []string{feature}}, func() time.Time { return t0 }).Reason
	}
	if needs("email") != "" {
		t.Fatal("full access lacks email")
	}
	set(2, "deploy", "ftp")
	if needs("email") != ReasonFeatureDenied || needs("ftp") != "" || tab.List("bob", t0)[0].FullAccess {
		t.Fatal("narrowed to ftp")
	}
	set(3, "deploy", "email", "ftp") // sorted, as events carry them
	if needs("email") != "" || needs("ftp") != "" || needs("dns") != ReasonFeatureDenied {
		t.Fatal("widened to email and ftp")
	}
	set(4, "other", "dns") // names another token: changes nothing
	if needs("dns") != ReasonFeatureDenied {
		t.Fatal("a change naming another token was applied")
	}
	assertFeaturesRoundTrip(t, tab)
	set(5, "deploy")
	if needs("dns") != "" || !tab.List("bob", t0)[0].FullAccess || tab.List("bob", t0)[0].Features != nil {
		t.Fatal("set back to full access")
	}
	assertFeaturesRoundTrip(t, tab)
}

// TestSnapshotKeepsFeatures: a snapshot carries features and read-only,
// only the sets that tokens still have, and refuses what is not a set.
func TestSnapshotKeepsFeatures(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	f.apply(t, tab, 1, f.create("bob", "full", secret('A'), nil))
	f.apply(t, tab, 2, f.limited("bob", "mail", secret('B'), []string{"email", "ftp"}, false))
	f.apply(t, tab, 3, f.limited("bob", "reader", secret('C'), nil, true))
	gone := f.limited("bob", "gone", secret('D'), []string{"dns"}, true)
	f.apply(t, tab, 4, gone)
	f.apply(t, tab, 5, events.Event{ID: f.id(), At: t0, Account: "bob", TokenID: gone.TokenID, Data: events.FeaturesSet{Name: "gone", Features: []string{"dns", "ssl"}}})
	f.apply(t, tab, 6, f.limited("carol", "mail", secret('E'), []string{"email", "ftp"}, true))
	back := assertFeaturesRoundTrip(t, tab)
	if len(back.features.sets) != 3 { // {dns} is no token's any more
		t.Fatalf("sets after a snapshot: %q", back.features.sets)
	}
	// What the restored table interns next is found, not listed twice.
	f.apply(t, back, 7, f.limited("carol", "again", secret('F'), []string{"dns", "ssl"}, false))
	if len(back.features.sets) != 3 {
		t.Fatalf("sets after a new token with a known set: %q", back.features.sets)
	}

	var buf bytes.Buffer
	if _, err := tab.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	// The sets follow the names block ("fullmailreadergonemailagain"...);
	// find the first set, 2 names: email, ftp.
	at := bytes.Index(good, []byte("\x02\x05email\x03ftp"))
	if at < 0 {
		t.Fatalf("no set in %q", good)
	}
	for _, tt := range []struct {
		name string
		have []byte
	}{
		{"an old version", append([]byte("tokenledger table v3\n"), good[len(snapshotMagic):]...)},
		{"a bad name", bytes.Replace(good, []byte("\x05email"), []byte("\x05Email"), 1)},
		{"unsorted", bytes.Replace(good, []byte("\x05email\x03ftp"), []byte("\x03ftp\x05email"), 1)},
		{"a set of none", bytes.Replace(good, []byte("\x02\x05email\x03ftp"), []byte("\x00\x05email\x03ftp"), 1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Equal(tt.have, good) {
				t.Fatal("the case changes nothing")
			}
			if _, err := DecodeTable(bytes.NewReader(tt.have), int64(len(tt.have)), DefaultWarn); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// assertFeaturesRoundTrip checks that a table's snapshot gives every token
// the same features and read-only flag, and returns the restored table.
func assertFeaturesRoundTrip(t *testing.T, tab *Table) *Table {
	t.Helper()
	var buf bytes.Buffer
	if _, err := tab.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	whole := bytes.Clone(buf.Bytes())
	back, err := DecodeTable(&buf, int64(buf.Len()), tab.warn)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(whole) {
		if _, err := DecodeTable(bytes.NewReader(whole[:n]), int64(n), tab.warn); err == nil {
			t.Fatalf("a snapshot cut to %d of its %d bytes was accepted", n, len(whole))
		}
	}
	for _, a := range tab.Accounts() {
		w, h := tab.List(a, t0), back.List(a, t0)
		if !reflect.DeepEqual(w, h) {
			t.Fatalf("%s after a snapshot:\nhave %+v\nwant %+v", a, h, w)
		}
	}
	return back
}

// TestTokenStaysSmall: features and read-only cost a token no byte (see
// slab.go): the set's number fits where the name left padding, and
// read-only is a bit beside revoked.
func TestTokenStaysSmall(t *testing.T) {
	if size := unsafe.Sizeof(token{}); size != 152 {
		t.Fatalf("a token is %d bytes, was 152", size)
	}
}
