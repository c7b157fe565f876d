package events

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// canonical is one event as a node stores it.
type canonical struct {
	name string
	raw  []byte
}

// canonicalEvents are the events Encode and Signer.Sign write: every type and
// each of its optional parts, unsigned, signed as an account's first event and
// signed after another, by actors whose names encoding/json has to escape.
func canonicalEvents(tb testing.TB) []canonical {
	tb.Helper()
	exp, grace, early := int64(1795564799), int64(1795000000), int64(-62135596800)
	hash, old := HashSecret("new"), HashSecret("old")
	data := []struct {
		name string
		data Data
	}{
		{"created", TokenCreated{Name: "deploy", TokenHash: hash, ExpiresAt: &exp, FullAccess: true}},
		{"created never expires", TokenCreated{Name: "deploy", TokenHash: hash}},
		{"created before 1970", TokenCreated{Name: "deploy", TokenHash: hash, ExpiresAt: &early, FullAccess: true}},
		{"created with allowed ips", TokenCreated{Name: "deploy", TokenHash: hash, FullAccess: true,
			AllowedIPs: allowList(tb, "192.0.2.0/24", "2001:db8::/32", "198.51.100.7")}},
		{"renamed", TokenRenamed{OldName: "deploy", NewName: "ci-main_2"}},
		{"revoked", TokenRevoked{Name: "deploy"}},
		{"rotated", TokenRotated{Name: "deploy", TokenHash: hash, OldTokenHash: old}},
		{"rotated with grace", TokenRotated{Name: "deploy", TokenHash: hash, OldTokenHash: old, GraceUntil: &grace}},
		{"allowed ips set", AllowedIPsSet{Name: "deploy", AllowedIPs: allowList(tb, "10.0.0.0/8")}},
		{"allowed ips set empty", AllowedIPsSet{Name: "deploy", AllowedIPs: allowList(tb)}},
		{"allowed ips set nil", AllowedIPsSet{Name: "deploy"}},
		{"created limited", TokenCreated{Name: "deploy", TokenHash: hash, ExpiresAt: &exp, Features: []string{"email", "ftp:read"}}},
		{"created read-only", TokenCreated{Name: "deploy", TokenHash: hash, FullAccess: true, ReadOnly: true}},
		{"created limited, read-only, allowed ips", TokenCreated{Name: "deploy", TokenHash: hash,
			AllowedIPs: allowList(tb, "10.0.0.0/8"), Features: []string{"dns.zone-edit_2"}, ReadOnly: true}},
		{"features set", FeaturesSet{Name: "deploy", Features: []string{"a", "b"}}},
		{"features set empty", FeaturesSet{Name: "deploy", Features: []string{}}},
		{"features set nil", FeaturesSet{Name: "deploy"}},
		{"used", TokenUsed{IP: "2001:db8::1"}},
		{"used without ip", TokenUsed{}},
	}
	actors := []struct {
		name  string
		actor Actor
	}{
		{"operator", Actor{Kind: ActorOperator, Name: "root"}},
		{"token", Actor{Kind: ActorToken, Name: "bob", TokenID: "01JD0000000000000000000002", Remote: "192.0.2.1"}},
		{"escaped", Actor{Kind: "<kind>", Name: "a<b>&c\"d\\e\nf\tg\x01h\x7fé\u2028😀", Remote: "[fe80::1%eth0]:80"}},
	}
	signer := newTestSigner(tb)
	var out []canonical
	for _, d := range data {
		for _, a := range actors {
			e := Event{ID: "01JD0000000000000000000000", At: time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC),
				Account: "bob", TokenID: tokenID("01JD0000000000000000000001"), Actor: a.actor, Data: d.data}
			name := d.name + "/" + a.name
			out = append(out, canonical{name + "/unsigned", mustEncode(tb, e)})
			for _, prev := range []struct {
				name string
				hash Hash
			}{{"first", Hash{}}, {"chained", HashSecret("previous")}} {
				if _, err := signer.Sign(&e, prev.hash); err != nil {
					tb.Fatal(err)
				}
				out = append(out, canonical{name + "/signed " + prev.name, mustEncode(tb, e)})
			}
		}
	}
	return out
}

func newTestSigner(tb testing.TB) *Signer {
	tb.Helper()
	return mustSigner(tb)
}

func mustEncode(tb testing.TB, e Event) []byte {
	tb.Helper()
	b, err := Encode(e)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestCanonicalTakesFastPath: every event a node writes is read by hand, and
// read exactly as encoding/json reads it.
func TestCanonicalTakesFastPath(t *testing.T) {
	for _, tt := range canonicalEvents(t) {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, ok := scanCanonical(tt.raw, true); !ok {
				t.Fatalf("not read by the fast path:\n%s", tt.raw)
			}
			have, err := Decode(tt.raw)
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.raw, err)
			}
			want, err := unmarshalEvent(tt.raw)
			if err != nil {
				t.Fatalf("encoding/json refuses %s: %v", tt.raw, err)
			}
			if !reflect.DeepEqual(have, want) {
				t.Fatalf("fast and encoding/json differ:\nhave %#v\nwant %#v", have, want)
			}
		})
	}
}

// TestCanonicalCoversEveryType: canonicalEvents holds an event of every
// registered type, so that a new type's hand-written reader is tested.
func TestCanonicalCoversEveryType(t *testing.T) {
	untried := make(map[string]bool)
	for _, typ := range Types() {
		untried[typ] = true
	}
	for _, c := range canonicalEvents(t) {
		if e, err := Decode(c.raw); err == nil {
			delete(untried, e.Type())
		}
	}
	if len(untried) > 0 {
		t.Fatalf("canonicalEvents has no event of %v", untried)
	}
}

// TestEncodeDecodeFastIdentical: what the fast path reads is the event that
// was encoded, time and location included.
func TestEncodeDecodeFastIdentical(t *testing.T) {
	exp := int64(1795564799)
	have := Event{ID: NewID(), At: time.Date(2026, 2, 28, 23, 59, 59, 999e6, time.UTC), Account: "bob", TokenID: NewTokenID(),
		Actor: Actor{Kind: ActorAccount, Name: "bob"},
		Data:  TokenCreated{Name: "deploy", TokenHash: HashSecret("X"), ExpiresAt: &exp, AllowedIPs: allowList(t, "::1/128")}}
	want, err, ok := scanCanonical(mustEncode(t, have), true)
	if !ok || err != nil || !reflect.DeepEqual(have, want) {
		t.Fatalf("ok %v\nhave %#v\nwant %#v", ok, have, want)
	}
	if want.At.Location() != time.UTC {
		t.Fatalf("location %v, want UTC", want.At.Location())
	}
}

// TestDecodeAgreesWithJSON: anything but Encode's layout is left to
// encoding/json, which then decides exactly as it always did; what the fast
// path does read (escapes, an empty prev, data its check refuses) it reads as
// encoding/json would.
func TestDecodeAgreesWithJSON(t *testing.T) {
	good := string(canonicalEvents(t)[1].raw) // created, signed as the account's first event
	if !strings.Contains(good, `"full_access":true`) || !strings.Contains(good, `"signer"`) || strings.Contains(good, `"prev"`) {
		t.Fatalf("not the event the cases edit: %s", good)
	}
	for _, tt := range []struct {
		name string
		fast bool // read by hand rather than by encoding/json
		have string
	}{
		{"space after brace", false, strings.Replace(good, `{"v"`, `{ "v"`, 1)},
		{"trailing newline", false, good + "\n"},
		{"key in upper case", false, strings.Replace(good, `"account"`, `"Account"`, 1)},
		{"escaped key", false, strings.Replace(good, `"account"`, `"\u0061ccount"`, 1)},
		{"keys reordered", false, strings.Replace(good, `{"v":1,"id":"01JD0000000000000000000000"`, `{"id":"01JD0000000000000000000000","v":1`, 1)},
		{"duplicate key", false, strings.Replace(good, `"account":"bob"`, `"account":"bob","account":"eve"`, 1)},
		{"unknown key", false, strings.Replace(good, `"account":"bob"`, `"account":"bob","x":1`, 1)},
		{"unknown data key", false, strings.Replace(good, `"full_access":true`, `"full_access":true,"x":1`, 1)},
		{"version 2", false, strings.Replace(good, `"v":1`, `"v":2`, 1)},
		{"version 1.0", false, strings.Replace(good, `"v":1`, `"v":1.0`, 1)},
		{"unknown type", false, strings.Replace(good, `token.created`, `token.eaten`, 1)},
		{"time with offset", false, strings.Replace(good, `.123Z`, `.123+00:00`, 1)},
		{"time in nanoseconds", false, strings.Replace(good, `.123Z`, `.123456789Z`, 1)},
		{"time without fraction", false, strings.Replace(good, `.123Z`, `Z`, 1)},
		{"30 February", false, strings.Replace(good, `2026-11-23`, `2026-02-30`, 1)},
		{"29 February 2028", true, strings.Replace(good, `2026-11-23`, `2028-02-29`, 1)},
		{"hour 24", false, strings.Replace(good, `T10:`, `T24:`, 1)},
		{"expiry fraction", false, strings.Replace(good, `1795564799`, `1795564799.0`, 1)},
		{"expiry exponent", false, strings.Replace(good, `1795564799`, `1e9`, 1)},
		{"expiry leading zero", false, strings.Replace(good, `1795564799`, `01795564799`, 1)},
		{"expiry 19 digits", false, strings.Replace(good, `1795564799`, `9223372036854775807`, 1)},
		{"expiry overflows", false, strings.Replace(good, `1795564799`, `9223372036854775808`, 1)},
		{"expiry minus zero", true, strings.Replace(good, `1795564799`, `-0`, 1)},
		{"expiry as string", false, strings.Replace(good, `1795564799`, `"1795564799"`, 1)},
		{"full access null", false, strings.Replace(good, `"full_access":true`, `"full_access":null`, 1)},
		{"name null", false, strings.Replace(good, `"name":"deploy"`, `"name":null`, 1)},
		{"data null", false, `{"v":1,"id":"01JD0000000000000000000000","type":"token.used","at":"2026-11-23T10:00:00.123Z","account":"bob","token_id":"01JD0000000000000000000001","actor":{"kind":"operator","name":"root"},"data":null}`},
		{"escaped name", true, strings.Replace(good, `"name":"deploy"`, `"name":"d\u0065ploy"`, 1)},
		{"escaped solidus", true, strings.Replace(good, `"name":"root"`, `"name":"r\/t"`, 1)},
		{"unpaired surrogate", false, strings.Replace(good, `"name":"root"`, `"name":"\ud800"`, 1)},
		{"surrogate pair", false, strings.Replace(good, `"name":"root"`, `"name":"\ud83d\ude00"`, 1)},
		{"invalid UTF-8", false, strings.Replace(good, `"name":"root"`, "\"name\":\"r\xffot\"", 1)},
		{"raw control byte", false, strings.Replace(good, `"name":"root"`, "\"name\":\"r\x01ot\"", 1)},
		{"bad escape", false, strings.Replace(good, `"name":"root"`, `"name":"r\qot"`, 1)},
		{"short unicode escape", false, strings.Replace(good, `"name":"root"`, `"name":"r\u00"`, 1)},
		{"empty prev", true, strings.Replace(good, `,"signer"`, `,"prev":"","signer"`, 1)},
		{"truncated", false, good[:len(good)-1]},
		{"bad account", true, strings.Replace(good, `"account":"bob"`, `"account":"B\u003cb"`, 1)},
		{"id not a ULID", false, strings.Replace(good, `"id":"01JD0000000000000000000000"`, `"id":"01JD000000000000000000000U"`, 1)},
		{"features", true, strings.Replace(good, `"full_access":true`, `"full_access":false,"features":["a","b"]`, 1)},
		{"features with full access", true, strings.Replace(good, `"full_access":true`, `"full_access":true,"features":["a"]`, 1)},
		{"features null", true, strings.Replace(good, `"full_access":true`, `"full_access":true,"features":null`, 1)},
		{"features empty", true, strings.Replace(good, `"full_access":true`, `"full_access":true,"features":[]`, 1)},
		{"features bad name", true, strings.Replace(good, `"full_access":true`, `"full_access":false,"features":["A"]`, 1)},
		{"features a number", false, strings.Replace(good, `"full_access":true`, `"full_access":false,"features":[1]`, 1)},
		{"features a string", false, strings.Replace(good, `"full_access":true`, `"full_access":false,"features":"a"`, 1)},
		{"features escaped", true, strings.Replace(good, `"full_access":true`, `"full_access":false,"features":["\u0061"]`, 1)},
		{"features before allowed ips", false, strings.Replace(good, `"full_access":true`, `"full_access":false,"features":["a"],"allowed_ips":[]`, 1)},
		{"readonly", true, strings.Replace(good, `"full_access":true`, `"full_access":true,"readonly":true`, 1)},
		{"readonly false", true, strings.Replace(good, `"full_access":true`, `"full_access":true,"readonly":false`, 1)},
		{"readonly 1", false, strings.Replace(good, `"full_access":true`, `"full_access":true,"readonly":1`, 1)},
		{"readonly before features", false, strings.Replace(good, `"full_access":true`, `"full_access":false,"readonly":true,"features":["a"]`, 1)},
		{"readonly in capitals", false, strings.Replace(good, `"full_access":true`, `"full_access":true,"READONLY":true`, 1)},
		{"escaped id", false, strings.Replace(good, `"id":"01JD0000000000000000000000"`, `"id":"01JD000000000000000000000\u0030"`, 1)},
		{"bad account, bad id", false, strings.Replace(strings.Replace(good, `"account":"bob"`, `"account":"B"`, 1), `"id":"01JD0000000000000000000000"`, `"id":"x"`, 1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.have == good {
				t.Fatal("the case does not change the event")
			}
			if _, _, ok := scanCanonical([]byte(tt.have), true); ok != tt.fast {
				t.Errorf("read by hand: %v, want %v", ok, tt.fast)
			}
			assertSameAsJSON(t, []byte(tt.have))
		})
	}
}

// assertSameAsJSON fails unless Decode reads b exactly as encoding/json does,
// and unless whatever the fast path accepts is JSON that encoding/json reads
// to the same values.
func assertSameAsJSON(t *testing.T, b []byte) {
	t.Helper()
	have, haveErr := Decode(b)
	want, wantErr := unmarshalEvent(b)
	if !reflect.DeepEqual(have, want) || errorText(haveErr) != errorText(wantErr) {
		t.Fatalf("Decode and encoding/json differ on %q:\nhave %#v, %v\nwant %#v, %v", b, have, haveErr, want, wantErr)
	}
	lean, leanErr := DecodeForTable(b)
	if haveErr == nil {
		have.ID, have.Actor, have.Signer, have.Sig = "", Actor{}, "", ""
	}
	if !reflect.DeepEqual(lean, have) || errorText(leanErr) != errorText(haveErr) {
		t.Fatalf("DecodeForTable is not Decode without id and provenance on %q:\nhave %#v, %v\nwant %#v, %v", b, lean, leanErr, have, haveErr)
	}
	fast, dataErr, ok := scanCanonical(b, true)
	if !ok {
		return
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("the fast path read what encoding/json refuses: %v\n%q", err, b)
	}
	at, err := time.Parse(time.RFC3339Nano, env.At)
	id, idErr := ParseTokenID(env.TokenID)
	raw := Event{ID: env.ID, At: at, Account: env.Account, TokenID: id, Actor: env.Actor,
		Prev: env.Prev, Signer: env.Signer, Sig: env.Sig}
	if err != nil || idErr != nil || env.V != Version || env.Type != fast.Type() {
		t.Fatalf("the fast path read a time, token id, version or type encoding/json does not: %v %v %d %q\n%q", err, idErr, env.V, env.Type, b)
	}
	raw.Data, err = dataTypes[env.Type].unmarshal(env.Data)
	if errorText(err) != errorText(dataErr) {
		t.Fatalf("the fast path and encoding/json check the data of %q differently: %v, %v", b, dataErr, err)
	}
	if err == nil && !reflect.DeepEqual(fast, raw) {
		t.Fatalf("fast and encoding/json read %q differently:\nhave %#v\nwant %#v", b, fast, raw)
	}
}

func errorText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestParseAt(t *testing.T) {
	for _, s := range []string{
		"2026-11-23T10:00:00.123Z", "0000-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z", "2024-02-29T12:00:00.000Z",
		"2026-02-29T12:00:00.000Z", "2026-04-31T12:00:00.000Z", "2026-00-01T00:00:00.000Z", "2026-13-01T00:00:00.000Z",
		"2026-01-00T00:00:00.000Z", "2026-01-32T00:00:00.000Z", "2026-01-01T24:00:00.000Z", "2026-01-01T00:60:00.000Z",
		"2026-01-01T00:00:60.000Z", "2026-01-01t00:00:00.000Z", "2026-01-01T00:00:00.000z", "2026-01-01T00:00:00,000Z",
		"2026-1-01T00:00:00.0000Z", "+026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.00Z", "",
	} {
		have, ok := parseAt([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if ok && (err != nil || !reflect.DeepEqual(have, want)) {
			t.Errorf("parseAt(%q) = %#v, time.Parse gives %#v, %v", s, have, want, err)
		}
		if !ok && err == nil && len(s) == len(atLayout)-5 && strings.HasSuffix(s, "Z") && s[19] == '.' {
			t.Errorf("parseAt(%q) declines what time.Parse reads", s)
		}
	}
}

// BenchmarkDecode compares the hand-written path (Decode on canonical input,
// and DecodeForTable) with encoding/json's (unmarshalEvent), checks included:
//
//	go test -run '^$' -bench BenchmarkDecode -benchmem ./events
func BenchmarkDecode(b *testing.B) {
	all := canonicalEvents(b)
	for _, name := range []string{"created/operator/signed chained", "created with allowed ips/token/signed chained",
		"renamed/operator/signed chained", "used/token/signed chained"} {
		i := 0
		for i < len(all) && all[i].name != name {
			i++
		}
		raw := all[i].raw
		for _, path := range []struct {
			name   string
			decode func([]byte) (Event, error)
		}{{"fast", Decode}, {"table", DecodeForTable}, {"json", unmarshalEvent}} {
			b.Run(strings.ReplaceAll(name, " ", "_")+"/"+path.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(raw)))
				for b.Loop() {
					if _, err := path.decode(raw); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestPlainWord holds the word-at-a-time test to the byte table: every byte
// value at every place in a word of plain bytes, and pairs of values.
func TestPlainWord(t *testing.T) {
	for c := range 256 {
		for at := range 8 {
			w := []byte("abcdefgh")
			w[at] = byte(c)
			if have, want := plainWord(binary.LittleEndian.Uint64(w)), plain[c]; have != want {
				t.Fatalf("byte %#x at %d: plainWord %v, the table %v", c, at, have, want)
			}
		}
		for d := range 256 {
			w := []byte{byte(c), byte(d), 'x', 'x', 'x', 'x', byte(d), byte(c)}
			if have, want := plainWord(binary.LittleEndian.Uint64(w)), plain[c] && plain[d]; have != want {
				t.Fatalf("bytes %#x and %#x: plainWord %v, the table %v", c, d, have, want)
			}
		}
	}
}
