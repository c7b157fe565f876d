package events

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEncodeDecode(t *testing.T) {
	exp := int64(1795564799)
	at := time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC)
	for _, tt := range []struct {
		name string
		have Event
	}{
		{"created", Event{ID: NewID(), At: at, Account: "bob", TokenID: NewTokenID(),
			Actor: Actor{Kind: ActorOperator, Name: "root"},
			Data:  TokenCreated{Name: "deploy", TokenHash: HashSecret("X"), ExpiresAt: &exp, FullAccess: true}}},
		{"created without expiry", Event{ID: NewID(), At: at, Account: "bob", TokenID: NewTokenID(),
			Actor: Actor{Kind: ActorToken, Name: "bob", TokenID: NewID(), Remote: "192.0.2.1"},
			Data:  TokenCreated{Name: "deploy", TokenHash: HashSecret("X"), FullAccess: true}}},
		{"renamed", Event{ID: NewID(), At: at, Account: "bob", TokenID: NewTokenID(), Actor: Actor{Kind: ActorAccount, Name: "bob"},
			Data: TokenRenamed{OldName: "a", NewName: "b"}}},
		{"revoked", Event{ID: NewID(), At: at, Account: "bob", TokenID: NewTokenID(), Actor: Actor{Kind: ActorAccount, Name: "bob"},
			Data: TokenRevoked{Name: "a"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Encode(tt.have)
			if err != nil {
				t.Fatal(err)
			}
			want, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if !reflect.DeepEqual(want, tt.have) {
				t.Fatalf("round trip:\nhave %+v\nwant %+v", want, tt.have)
			}
		})
	}
}

// TestEnvelope checks the wire form against the contract's example.
func TestEnvelope(t *testing.T) {
	exp := int64(1795564799)
	e := Event{ID: "01JD0000000000000000000000", At: time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC), Account: "bob",
		TokenID: tokenID("01JD0000000000000000000001"), Actor: Actor{Kind: "account", Name: "bob"},
		Data: TokenCreated{Name: "deploy", TokenHash: mustHash(t, "sha256:"+strings.Repeat("ab", 32)), ExpiresAt: &exp, FullAccess: true}}
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"id":"01JD0000000000000000000000","type":"token.created","at":"2026-11-23T10:00:00.123Z","account":"bob","token_id":"01JD0000000000000000000001","actor":{"kind":"account","name":"bob"},"data":{"name":"deploy","token_hash":"sha256:` + strings.Repeat("ab", 32) + `","expires_at":1795564799,"full_access":true}}`
	if string(b) != want {
		t.Fatalf("have %s\nwant %s", b, want)
	}
	e.Data = TokenCreated{Name: "deploy", TokenHash: mustHash(t, "sha256:"+strings.Repeat("ab", 32)), FullAccess: true}
	b, _ = Encode(e)
	if !strings.Contains(string(b), `"expires_at":null`) {
		t.Fatalf("no expiry must be written as null: %s", b)
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := func() map[string]any {
		return map[string]any{"v": 1, "id": NewID(), "type": "token.revoked", "at": "2026-11-23T10:00:00.123Z",
			"account": "bob", "token_id": NewID(), "actor": map[string]any{"kind": "account", "name": "bob"},
			"data": map[string]any{"name": "deploy"}}
	}
	for _, tt := range []struct {
		name   string
		change func(map[string]any)
	}{
		{"version 2", func(m map[string]any) { m["v"] = 2 }},
		{"unknown type", func(m map[string]any) { m["type"] = "token.used.by.aliens" }},
		{"account with dot", func(m map[string]any) { m["account"] = "bob.x" }},
		{"bad event id", func(m map[string]any) { m["id"] = "nope" }},
		{"bad token id", func(m map[string]any) { m["token_id"] = "" }},
		{"bad time", func(m map[string]any) { m["at"] = "yesterday" }},
		{"no data", func(m map[string]any) { delete(m, "data") }},
		{"bad name", func(m map[string]any) { m["data"] = map[string]any{"name": "a b"} }},
		{"created with bad hash", func(m map[string]any) {
			m["type"] = "token.created"
			m["data"] = map[string]any{"name": "x", "token_hash": "plaintext", "expires_at": nil}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := good()
			tt.change(m)
			b, _ := json.Marshal(m)
			if _, err := Decode(b); ErrorCode(err) != Invalid {
				t.Fatalf("Decode(%s) = %v, want invalid", b, err)
			}
		})
	}
	b, _ := json.Marshal(good())
	if _, err := Decode(b); err != nil {
		t.Fatalf("the good event does not decode: %v", err)
	}
	for _, junk := range []string{"", "{", "null", "[]", strings.Repeat("x", MaxEventSize+1)} {
		if _, err := Decode([]byte(junk)); err == nil {
			t.Errorf("Decode(%.20q) accepted", junk)
		}
	}
}
