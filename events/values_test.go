package events

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// tokenID is s as a TokenID, for tests that name one.
func tokenID(s string) TokenID {
	id, err := ParseTokenID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// mustHash is s as a Hash, for tests that spell one out.
func mustHash(tb testing.TB, s string) Hash {
	tb.Helper()
	h, err := ParseHash(s)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// allowList is an allow-list as ParsePrefixes reads it.
func allowList(tb testing.TB, list ...string) []Prefix {
	tb.Helper()
	ps, err := ParsePrefixes(list)
	if err != nil {
		tb.Fatal(err)
	}
	return ps
}

// TestTypedDataOnTheWire: an event written with typed values has, byte for
// byte, the data the same event had when its values were strings (these are
// what the string-typed Encode wrote), so that streams written then replay
// unchanged and signatures over them hold.
func TestTypedDataOnTheWire(t *testing.T) {
	exp, grace := int64(1795564799), int64(1795000000)
	hash, old := HashSecret("new"), HashSecret("old")
	for _, tt := range []struct {
		name string
		have Data
		want string
	}{
		{"created", TokenCreated{Name: "deploy", TokenHash: hash, ExpiresAt: &exp, FullAccess: true},
			`{"name":"deploy","token_hash":"sha256:11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437","expires_at":1795564799,"full_access":true}`},
		{"created with everything", TokenCreated{Name: "deploy", TokenHash: hash,
			AllowedIPs: allowList(t, "192.0.2.0/24", "2001:db8::/32", "198.51.100.7"), Features: []string{"dns.zone-edit_2", "email"}, ReadOnly: true},
			`{"name":"deploy","token_hash":"sha256:11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437","expires_at":null,"full_access":false,"allowed_ips":["192.0.2.0/24","2001:db8::/32","198.51.100.7/32"],"features":["dns.zone-edit_2","email"],"readonly":true}`},
		{"renamed", TokenRenamed{OldName: "deploy", NewName: "ci-main_2"}, `{"old_name":"deploy","new_name":"ci-main_2"}`},
		{"revoked", TokenRevoked{Name: "deploy"}, `{"name":"deploy"}`},
		{"rotated", TokenRotated{Name: "deploy", TokenHash: hash, OldTokenHash: old},
			`{"name":"deploy","token_hash":"sha256:11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437","old_token_hash":"sha256:cba06b5736faf67e54b07b561eae94395e774c517a7d910a54369e1263ccfbd4","grace_until":null}`},
		{"rotated with grace", TokenRotated{Name: "deploy", TokenHash: hash, OldTokenHash: old, GraceUntil: &grace},
			`{"name":"deploy","token_hash":"sha256:11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437","old_token_hash":"sha256:cba06b5736faf67e54b07b561eae94395e774c517a7d910a54369e1263ccfbd4","grace_until":1795000000}`},
		{"allowed ips set", AllowedIPsSet{Name: "deploy", AllowedIPs: allowList(t, "10.0.0.0/8", "::1")}, `{"name":"deploy","allowed_ips":["10.0.0.0/8","::1/128"]}`},
		{"allowed ips set empty", AllowedIPsSet{Name: "deploy", AllowedIPs: allowList(t)}, `{"name":"deploy","allowed_ips":[]}`},
		{"features set", FeaturesSet{Name: "deploy", Features: []string{"a", "b"}}, `{"name":"deploy","features":["a","b"]}`},
		{"features set empty", FeaturesSet{Name: "deploy", Features: []string{}}, `{"name":"deploy","features":[]}`},
		{"used", TokenUsed{IP: "2001:db8::1"}, `{"ip":"2001:db8::1"}`},
		{"used without ip", TokenUsed{}, `{}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := Event{ID: "01JD0000000000000000000000", At: time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC), Account: "bob",
				TokenID: tokenID("01JD0000000000000000000001"), Actor: Actor{Kind: ActorToken, Name: "bob", TokenID: "01JD0000000000000000000002",
					Remote: "192.0.2.1", Via: "nats:bob"},
				Data: tt.have, Prev: HashSecret("previous").String(), Signer: "NSIGNER", Sig: "c2ln"}
			want := `{"v":1,"id":"01JD0000000000000000000000","type":"` + e.Type() + `","at":"2026-11-23T10:00:00.123Z","account":"bob",` +
				`"token_id":"01JD0000000000000000000001","actor":{"kind":"token","name":"bob","token_id":"01JD0000000000000000000002","remote":"192.0.2.1","via":"nats:bob"},` +
				`"data":` + tt.want + `,"prev":"sha256:6da0633528deaa0144e7b058315f0b753ec0b945163a72bf96a0d18180f9de0d","signer":"NSIGNER","sig":"c2ln"}`
			if have := string(mustEncode(t, e)); have != want {
				t.Fatalf("have %s\nwant %s", have, want)
			}
			back, err := Decode([]byte(want))
			if err != nil {
				t.Fatal(err)
			}
			if again := string(mustEncode(t, back)); again != want {
				t.Fatalf("decoded and encoded again:\nhave %s\nwant %s", again, want)
			}
		})
	}
}

// TestEveryTypeShows: each registered event type labels its token as
// history's NAME column shows it, and says which names it bears. A new
// type fails here until it has a case.
func TestEveryTypeShows(t *testing.T) {
	hash := HashSecret("x")
	cases := map[string]struct {
		data  Data
		label string
		bears []string
	}{
		TypeCreated:     {TokenCreated{Name: "ci", TokenHash: hash}, "ci", []string{"ci"}},
		TypeRenamed:     {TokenRenamed{OldName: "ci", NewName: "cd"}, "ci->cd", []string{"ci", "cd"}},
		TypeRevoked:     {TokenRevoked{Name: "ci"}, "ci", []string{"ci"}},
		TypeRotated:     {TokenRotated{Name: "ci", TokenHash: hash, OldTokenHash: hash}, "ci", []string{"ci"}},
		TypeAllowedIPs:  {AllowedIPsSet{Name: "ci"}, "ci", []string{"ci"}},
		TypeFeaturesSet: {FeaturesSet{Name: "ci"}, "ci", []string{"ci"}},
		TypeUsed:        {TokenUsed{IP: "192.0.2.1"}, "", nil}, // its data does not name the token
	}
	if len(Types()) != len(cases) {
		t.Errorf("%d types registered, %d cases here", len(Types()), len(cases))
	}
	for _, typ := range Types() {
		tt, ok := cases[typ]
		if !ok {
			t.Errorf("%s has no case here: add one, with its label", typ)
			continue
		}
		if have := tt.data.eventType(); have != typ {
			t.Errorf("%s: the case's data is of type %s", typ, have)
		}
		if have := tt.data.Label(); have != tt.label {
			t.Errorf("%s: label %q, want %q", typ, have, tt.label)
		}
		for _, name := range tt.bears {
			if !tt.data.Bears(name) {
				t.Errorf("%s does not bear %q", typ, name)
			}
		}
		if tt.data.Bears("other") {
			t.Errorf("%s bears a name it does not hold", typ)
		}
	}
}

// TestValuesAsText: each typed value reads what it writes, and only what
// the decoder accepted when it was a string.
func TestValuesAsText(t *testing.T) {
	id := NewTokenID()
	var back TokenID
	if err := json.Unmarshal([]byte(`"`+id.String()+`"`), &back); err != nil || back != id {
		t.Fatalf("token id %s read back as %s, %v", id, back, err)
	}
	if b, err := id.AppendText([]byte(`"`)); err != nil || string(b) != `"`+id.String() {
		t.Fatalf("token id %s appended as %q, %v", id, b, err)
	}
	if n := testing.AllocsPerRun(10, func() {
		var buf [32]byte
		_, _ = id.AppendText(buf[:0])
	}); n != 0 {
		t.Errorf("AppendText into room enough: %v allocations, want 0", n)
	}
	for _, bad := range []string{"", "nope", id.String() + "0", strings.Replace(id.String(), "0", "U", 1)} {
		if _, err := ParseTokenID(bad); ErrorCode(err) != Invalid {
			t.Errorf("ParseTokenID(%q) = %v, want invalid", bad, err)
		}
	}
	h := HashSecret("ABC")
	var hb Hash
	if b, _ := json.Marshal(h); string(b) != `"`+h.String()+`"` || json.Unmarshal(b, &hb) != nil || hb != h {
		t.Fatalf("hash %s as JSON %s, read back as %s", h, b, hb)
	}
	for _, tt := range []struct{ have, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"198.51.100.77/24", "198.51.100.0/24"},
		{"::ffff:203.0.113.0/120", "203.0.113.0/24"},
		{"2001:db8::1", "2001:db8::1/128"},
	} {
		var p Prefix
		if err := p.UnmarshalText([]byte(tt.have)); err != nil || p.String() != tt.want {
			t.Errorf("prefix %q read as %q, %v; want %q", tt.have, p, err, tt.want)
		}
	}
	list := allowList(t, "10.0.0.0/8", "::1")
	list = append(list, list[0])
	if d, err := DistinctPrefixes(list); err != nil || len(d) != 2 || d[1] != list[1] || list[2] != list[0] {
		t.Errorf("DistinctPrefixes(%v) = %v, %v; want the first two, and the list given as it was", list, d, err)
	}
	if _, err := DistinctPrefixes(make([]Prefix, MaxAllowedIPs+1)); ErrorCode(err) != Invalid || CheckPrefixes(make([]Prefix, MaxAllowedIPs+1)) == nil {
		t.Errorf("a list of %d: %v, want invalid", MaxAllowedIPs+1, err)
	}
	if err := CheckPrefixes(append(list, Prefix{})); ErrorCode(err) != Invalid {
		t.Errorf("a list with a zero Prefix: %v, want invalid", err)
	}
	p, _ := ParsePrefix("192.0.2.0/24")
	if !p.Contains(netip.MustParseAddr("::ffff:192.0.2.9")) || p.Contains(netip.MustParseAddr("192.0.3.1")) {
		t.Fatal("a mapped address is not taken as the IPv4 address it is")
	}
}

// TestNullInAllowList: an allow-list entry that is JSON null is refused, as
// it was when entries were strings (null read as "", which is no address);
// a Prefix's UnmarshalText is never called for null, so CheckPrefixes is
// what refuses the zero Prefix left in its place.
func TestNullInAllowList(t *testing.T) {
	for _, d := range []Data{
		TokenCreated{Name: "deploy", TokenHash: HashSecret("s"), FullAccess: true, AllowedIPs: allowList(t, "10.0.0.0/8")},
		AllowedIPsSet{Name: "deploy", AllowedIPs: allowList(t, "10.0.0.0/8")},
	} {
		b, err := Encode(Event{ID: NewID(), Account: "bob", TokenID: NewTokenID(), Actor: Actor{Kind: ActorOperator, Name: "root"}, Data: d})
		if err != nil {
			t.Fatal(err)
		}
		for _, have := range []string{`["10.0.0.0/8",null]`, `[null]`} {
			bad := strings.Replace(string(b), `["10.0.0.0/8"]`, have, 1)
			if e, err := Decode([]byte(bad)); ErrorCode(err) != Invalid {
				t.Errorf("%s with allowed_ips %s: %+v, %v; want invalid", d.eventType(), have, e.Data, err)
			}
			assertSameAsJSON(t, []byte(bad))
		}
	}
}
