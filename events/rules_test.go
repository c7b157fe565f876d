package events

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode"
)

func TestCheckAccount(t *testing.T) {
	for _, tt := range []struct {
		name string
		have string
		want bool
	}{
		{"one letter", "b", true},
		{"letters and digits", "bob42", true},
		{"sixteen", "a123456789012345", true},
		{"seventeen", "a1234567890123456", false},
		{"empty", "", false},
		{"leading digit", "1bob", false},
		{"upper case", "Bob", false},
		{"dot", "bob.x", false},
		{"star", "bob*", false},
		{"greater than", "bob>", false},
		{"space", "bo b", false},
		{"trailing newline", "bob\n", false},
		{"hyphen", "bob-x", false},
		{"non-ASCII", "böb", false},
		{"wildcard alone", "*", false},
		{"full wildcard", ">", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckAccount(tt.have)
			if have := err == nil; have != tt.want {
				t.Fatalf("CheckAccount(%q) = %v, want ok=%v", tt.have, err, tt.want)
			}
			if err != nil && ErrorCode(err) != Invalid {
				t.Fatalf("code %q, want invalid", ErrorCode(err))
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	for _, tt := range []struct {
		name string
		have string
		want bool
	}{
		{"one", "a", true},
		{"all classes", "Deploy-key_2", true},
		{"fifty", strings.Repeat("n", 50), true},
		{"fifty-one", strings.Repeat("n", 51), false},
		{"empty", "", false},
		{"dot", "a.b", false},
		{"star", "a*", false},
		{"greater than", "a>", false},
		{"space", "a b", false},
		{"non-ASCII", "tökén", false},
		{"fifty non-ASCII bytes", strings.Repeat("é", 25), false},
		{"slash", "a/b", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if have := CheckName(tt.have) == nil; have != tt.want {
				t.Fatalf("CheckName(%q) ok=%v, want %v", tt.have, have, tt.want)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	seen := make(map[string]bool)
	counts := make(map[rune]int)
	for range 2000 {
		s := NewSecret()
		if !IsSecretShaped(s) {
			t.Fatalf("secret %q is not 32 characters of A-Z0-9", s)
		}
		if seen[s] {
			t.Fatalf("secret %q drawn twice", s)
		}
		seen[s] = true
		for _, c := range s {
			counts[c]++
		}
	}
	// 64,000 symbols over 36: each should appear about 1,778 times; a biased
	// or missing symbol would stand far outside these bounds.
	if len(counts) != 36 {
		t.Fatalf("%d distinct symbols, want 36", len(counts))
	}
	for c, n := range counts {
		if n < 1400 || n > 2200 {
			t.Errorf("symbol %c appears %d times in 64000, want about 1778", c, n)
		}
	}
}

func TestHash(t *testing.T) {
	h := HashSecret("ABC")
	s := h.String()
	if !strings.HasPrefix(s, "sha256:") || len(s) != 7+64 || strings.ToLower(s) != s {
		t.Fatalf("hash %q is not sha256:<64 lower-case hex>", s)
	}
	if s != "sha256:b5d4045c3f466fa91fe2cc6abe79232a1a57cdf104f7a26e716e0a1e2789df78" {
		t.Fatalf("hash of ABC = %s", s)
	}
	back, err := ParseHash(s)
	if err != nil || back != h {
		t.Fatalf("ParseHash(%q) = %v, %v", s, back, err)
	}
	for _, bad := range []string{"", "sha256:", "md5:" + s[7:], strings.ToUpper(s), "sha256:" + strings.ToUpper(s[7:]), s[:70] + "F", s[:70] + "g", s + "0", "sha256:" + strings.Repeat("z", 64)} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted", bad)
		}
	}
}

func TestParseDate(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	have, err := ParseDate("2026-12-31", berlin)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 31, 23, 59, 59, 0, berlin); !have.Equal(want) {
		t.Fatalf("ParseDate = %v, want %v", have, want)
	}
	if have.Unix() != 1798757999 {
		t.Fatalf("Unix %d, want 1798757999 (22:59:59 UTC)", have.Unix())
	}
	for _, bad := range []string{"", "2026-13-01", "2026-02-30", "31.12.2026", "2026-12-31T00:00:00Z"} {
		if _, err := ParseDate(bad, berlin); ErrorCode(err) != Invalid {
			t.Errorf("ParseDate(%q) = %v, want invalid", bad, err)
		}
	}
}

func TestParsePrefixes(t *testing.T) {
	have, err := ParsePrefixes([]string{"192.0.2.7", "198.51.100.77/24", "2001:db8::1", "2001:db8:1::/48", "::ffff:203.0.113.9", "::ffff:203.0.113.0/120", "192.0.2.7/32"})
	if err != nil {
		t.Fatal(err)
	}
	want := "[192.0.2.7/32 198.51.100.0/24 2001:db8::1/128 2001:db8:1::/48 203.0.113.9/32 203.0.113.0/24]"
	if fmt.Sprint(have) != want {
		t.Fatalf("have %v\nwant %s", have, want)
	}
	for _, bad := range [][]string{{"300.1.1.1"}, {"1.2.3.4/33"}, {"fe80::1%eth0"}, {"host.example"}, {""}, make([]string, 101)} {
		if _, err := ParsePrefixes(bad); ErrorCode(err) != Invalid {
			t.Errorf("ParsePrefixes(%q) = %v, want invalid", bad, err)
		}
	}
}

func TestCheckExpiry(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		have int64
		want bool
	}{
		{"a second from now", now.Unix() + 1, true},
		{"now", now.Unix(), false},
		{"the past", now.Unix() - 1, false},
		{"the last second of 9999", 253402300799, true},
		{"the first second of 10000", 253402300800, false},
		{"the largest int64", math.MaxInt64, false},
		{"the smallest int64", math.MinInt64, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckExpiry(tt.have, now)
			if have := err == nil; have != tt.want {
				t.Fatalf("CheckExpiry(%d) = %v, want ok=%v", tt.have, err, tt.want)
			}
			if err != nil && (ErrorCode(err) != Invalid || strings.Contains(err.Error(), "\n")) {
				t.Fatalf("want a one-line invalid error, have %q", err)
			}
		})
	}
	if MaxExpiresAt != time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix() {
		t.Fatalf("MaxExpiresAt %d is not the end of year 9999 UTC", int64(MaxExpiresAt))
	}
}

func TestCheckActor(t *testing.T) {
	id := "01JD0000000000000000000001"
	for _, tt := range []struct {
		name string
		have Actor
		want bool
	}{
		// What the transports make.
		{"cli operator", Actor{Kind: ActorOperator, Name: "alice"}, true},
		{"operator named with a space and accents", Actor{Kind: ActorOperator, Name: "Zoë Dupré"}, true},
		{"nats operator", Actor{Kind: ActorOperator, Name: "operator", Via: "nats:UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"}, true},
		{"http account", Actor{Kind: ActorAccount, Name: "bob", Remote: "127.0.0.1"}, true},
		{"http token", Actor{Kind: ActorToken, Name: "bob", TokenID: id, Remote: "2001:db8::1"}, true},
		{"token use without address", Actor{Kind: ActorToken, Name: "deploy", TokenID: id}, true},
		{"64 characters", Actor{Kind: ActorOperator, Name: strings.Repeat("é", 64)}, true},

		{"no kind", Actor{Name: "alice"}, false},
		{"unknown kind", Actor{Kind: "root", Name: "alice"}, false},
		{"no name", Actor{Kind: ActorOperator}, false},
		{"65 characters", Actor{Kind: ActorOperator, Name: strings.Repeat("a", 65)}, false},
		{"newline", Actor{Kind: ActorOperator, Name: "alice\nbob"}, false},
		{"escape sequence", Actor{Kind: ActorOperator, Name: "alice\x1b[2J"}, false},
		{"NUL", Actor{Kind: ActorOperator, Name: "alice\x00"}, false},
		{"DEL", Actor{Kind: ActorOperator, Name: "alice\x7f"}, false},
		{"C1 control", Actor{Kind: ActorOperator, Name: "alice\u0085"}, false},
		{"right-to-left override", Actor{Kind: ActorOperator, Name: "alice\u202egpj"}, false},
		{"line separator", Actor{Kind: ActorOperator, Name: "alice\u2028"}, false},
		{"not UTF-8", Actor{Kind: ActorOperator, Name: "alice\xff"}, false},
		{"token id not a ULID", Actor{Kind: ActorToken, Name: "bob", TokenID: "T1"}, false},
		{"remote not an address", Actor{Kind: ActorAccount, Name: "bob", Remote: "example.com"}, false},
		{"remote with a port", Actor{Kind: ActorAccount, Name: "bob", Remote: "127.0.0.1:80"}, false},
		{"remote with a newline", Actor{Kind: ActorAccount, Name: "bob", Remote: "127.0.0.1\n"}, false},
		{"via without nats:", Actor{Kind: ActorOperator, Name: "alice", Via: "alice"}, false},
		{"via with no user", Actor{Kind: ActorOperator, Name: "alice", Via: "nats:"}, false},
		{"via with a dot", Actor{Kind: ActorOperator, Name: "alice", Via: "nats:a.b"}, false},
		{"via with a control character", Actor{Kind: ActorOperator, Name: "alice", Via: "nats:a\r"}, false},
		{"via of 65", Actor{Kind: ActorOperator, Name: "alice", Via: "nats:" + strings.Repeat("u", 65)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckActor(tt.have)
			if have := err == nil; have != tt.want {
				t.Fatalf("CheckActor(%+v) = %v, want ok=%v", tt.have, err, tt.want)
			}
			if err == nil {
				return
			}
			if ErrorCode(err) != Invalid {
				t.Fatalf("code %q, want invalid", ErrorCode(err))
			}
			for _, r := range err.Error() {
				if r != ' ' && !unicode.IsPrint(r) {
					t.Fatalf("the refusal carries %U to whoever reads it: %q", r, err)
				}
			}
		})
	}
}

// TestActorViaTravels: an actor's via is written after the other actor
// fields, read back by both decoders alike, and covered by the signature;
// an event without it keeps its bytes.
func TestActorViaTravels(t *testing.T) {
	signer := mustSigner(t)
	trust := mustTrust(t, signer)
	base := Event{ID: "01JD0000000000000000000000", At: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		Account: "bob", TokenID: tokenID("01JD0000000000000000000001"), Data: TokenRevoked{Name: "deploy"}}
	for _, tt := range []struct {
		name  string
		actor Actor
		want  string
	}{
		{"without via", Actor{Kind: ActorOperator, Name: "alice"},
			`"actor":{"kind":"operator","name":"alice"},"data":`},
		{"with via", Actor{Kind: ActorOperator, Name: "alice", Via: "nats:operator"},
			`"actor":{"kind":"operator","name":"alice","via":"nats:operator"},"data":`},
		{"every field", Actor{Kind: ActorToken, Name: "bob", TokenID: "01JD0000000000000000000002", Remote: "192.0.2.1", Via: "nats:node-1"},
			`"actor":{"kind":"token","name":"bob","token_id":"01JD0000000000000000000002","remote":"192.0.2.1","via":"nats:node-1"},"data":`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := base
			e.Actor = tt.actor
			if _, err := signer.Sign(&e, Hash{}); err != nil {
				t.Fatal(err)
			}
			raw, err := Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(raw), tt.want) {
				t.Fatalf("encoded:\n%s\nwant it to hold %s", raw, tt.want)
			}
			assertSameAsJSON(t, raw)
			back, err := Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if back.Actor != tt.actor {
				t.Fatalf("actor %+v, want %+v", back.Actor, tt.actor)
			}
			if err := trust.Verify(raw, back); err != nil {
				t.Fatalf("a signed event does not verify: %v", err)
			}
			forged := strings.Replace(string(raw), tt.want, `"actor":{"kind":"operator","name":"alice","via":"nats:mallory"},"data":`, 1)
			if forged == string(raw) {
				return
			}
			fe, err := Decode([]byte(forged))
			if err != nil {
				t.Fatal(err)
			}
			if trust.Verify([]byte(forged), fe) == nil {
				t.Fatal("an event whose via was changed still verifies")
			}
		})
	}
}
