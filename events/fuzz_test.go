package events

import (
	"strings"
	"testing"
	"time"
)

// FuzzDecode: no input crashes the decoder, and whatever it accepts encodes
// and decodes back to the same event.
func FuzzDecode(f *testing.F) {
	exp := int64(1795564799)
	for _, d := range []Data{
		TokenCreated{Name: "deploy", TokenHash: HashSecret("X"), ExpiresAt: &exp, FullAccess: true},
		TokenRenamed{OldName: "a", NewName: "b"},
		TokenRevoked{Name: "a"},
	} {
		b, _ := Encode(Event{ID: NewID(), At: time.Now(), Account: "bob", TokenID: NewTokenID(), Actor: Actor{Kind: "operator", Name: "x"}, Data: d})
		f.Add(b)
	}
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"type":"token.created","data":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(e)
		if err != nil {
			t.Fatalf("an accepted event does not encode: %v", err)
		}
		back, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v\n%s", err, again)
		}
		if back.ID != e.ID || back.Type() != e.Type() || back.Account != e.Account || !back.At.Equal(e.At) {
			t.Fatalf("round trip changed the event: %+v -> %+v", e, back)
		}
	})
}

// FuzzDecodeFast: on any input, Decode gives what encoding/json's path gives,
// the same event or the same error, and whatever the hand-written reader
// accepts is JSON that encoding/json reads to the same values.
func FuzzDecodeFast(f *testing.F) {
	for _, c := range canonicalEvents(f) {
		f.Add(c.raw)
	}
	escaped := Event{ID: "01JD0000000000000000000000", At: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		Account: "b<&>\\\"", TokenID: tokenID("01JD0000000000000000000001"), Actor: Actor{Kind: ActorOperator, Name: "\u2028\x00é"},
		Data: TokenRenamed{OldName: "<a>", NewName: "b&\u2029\xff"}}
	b, _ := Encode(escaped)
	f.Add(b)
	f.Add([]byte(`{"v":1,"id":"","type":"token.used","at":"","account":"","token_id":"","actor":{"kind":"","name":""},"data":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		assertSameAsJSON(t, b)
	})
}

// FuzzNames: what the rules accept can never break a subject.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"bob", "a1", "deploy-key_2", "bob.x", "*", ">", " ", "", "ü", strings.Repeat("a", 51), "ftp:read", "-a", "a,b", strings.Repeat("a", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckAccount(s) == nil && (len(s) > 16 || strings.ContainsAny(s, ".*> \t\r\n") || strings.ToLower(s) != s) {
			t.Fatalf("account %q accepted", s)
		}
		if CheckName(s) == nil && (len(s) == 0 || len(s) > MaxNameLen || strings.ContainsAny(s, ".*> \t\r\n")) {
			t.Fatalf("name %q accepted", s)
		}
		if CheckFeature(s) == nil && (len(s) == 0 || len(s) > MaxFeatureLen || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789_.:-") != "" ||
			strings.ContainsAny(s[:1], "_.:-")) {
			t.Fatalf("feature %q accepted", s)
		}
	})
}
