package commands

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"tokenledger/events"
)

var (
	now   = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	actor = events.Actor{Kind: events.ActorOperator, Name: "test"}
)

// ids returns deterministic ULID-shaped ids for pure decisions.
func ids() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("01JD%022d", n) }
}

// stateOf folds events into a fresh state, as the ledger does.
func stateOf(evs ...events.Event) *State {
	s := &State{}
	for _, e := range evs {
		s.Evolve(e)
	}
	return s
}

// prefixes is an allow-list as a transport parses it.
func prefixes(tb testing.TB, list ...string) []events.Prefix {
	tb.Helper()
	ps, err := events.ParsePrefixes(list)
	if err != nil {
		tb.Fatal(err)
	}
	return ps
}

// tid is the token id labelled label (T1, T2 and so on): a test's way to
// name a token, which reads back from its String as a token id does.
func tid(label string) events.TokenID {
	var id events.TokenID
	copy(id[:], label)
	return id
}

func created(id, name string) events.Event {
	return events.Event{ID: "e" + id, Account: "bob", TokenID: tid(id), Data: events.TokenCreated{Name: name, TokenHash: events.HashSecret(id)}}
}

func TestDecideCreate(t *testing.T) {
	s := stateOf(created("T1", "deploy"), created("T2", "old"),
		events.Event{Account: "bob", TokenID: tid("T2"), Data: events.TokenRevoked{Name: "old"}})
	for _, tt := range []struct {
		name string
		have string
		want string // error code, "" for success
	}{
		{"free name", "ci", ""},
		{"live name", "deploy", events.Duplicate},
		{"revoked name may be used again", "old", ""},
		{"names are compared exactly as written", "Deploy", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := decideCreate(s, Create{Account: "bob", Name: tt.have, Actor: actor}, events.HashSecret("S"), tid("T9"), now, ids())
			if have := events.ErrorCode(err); have != tt.want {
				t.Fatalf("code %q, want %q (%v)", have, tt.want, err)
			}
			if err == nil {
				d := evs[0].Data.(events.TokenCreated)
				if len(evs) != 1 || d.Name != tt.have || !d.FullAccess || d.TokenHash != events.HashSecret("S") || evs[0].TokenID != tid("T9") {
					t.Fatalf("events %+v", evs)
				}
			}
		})
	}
}

func TestDecideRename(t *testing.T) {
	s := stateOf(created("T1", "a"), created("T2", "b"), created("T3", "c"),
		events.Event{Account: "bob", TokenID: tid("T3"), Data: events.TokenRevoked{Name: "c"}})
	for _, tt := range []struct {
		name     string
		old, new string
		want     string
	}{
		{"to a free name", "a", "z", ""},
		{"to a live name", "a", "b", events.Duplicate},
		{"unknown token", "nope", "z", events.NotFound},
		{"revoked token", "c", "z", events.NotFound},
		{"to a revoked token's name", "a", "c", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := decideRename(s, Rename{Account: "bob", Name: tt.old, NewName: tt.new, Actor: actor}, now, ids())
			if have := events.ErrorCode(err); have != tt.want {
				t.Fatalf("code %q, want %q (%v)", have, tt.want, err)
			}
			if err == nil && (evs[0].TokenID != tid("T1") || evs[0].Data != (events.TokenRenamed{OldName: tt.old, NewName: tt.new})) {
				t.Fatalf("events %+v", evs)
			}
		})
	}
}

func TestDecideRevokeIsAllOrNothing(t *testing.T) {
	s := stateOf(created("T1", "a"), created("T2", "b"))
	evs, err := decideRevoke(s, Revoke{Account: "bob", Names: []string{"a", "nope", "b"}, Actor: actor}, now, ids())
	if events.ErrorCode(err) != events.NotFound || evs != nil {
		t.Fatalf("with one unknown name: %v, %v; want not_found and no events", evs, err)
	}
	if !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("the error should name the unknown token: %v", err)
	}
	evs, err = decideRevoke(s, Revoke{Account: "bob", Names: []string{"b", "a", "b"}, Actor: actor}, now, ids())
	if err != nil || len(evs) != 2 || evs[0].TokenID != tid("T2") || evs[1].TokenID != tid("T1") {
		t.Fatalf("revoke b, a, b: %+v, %v", evs, err)
	}
}

func TestEvolveRenameThenRevoke(t *testing.T) {
	s := stateOf(created("T1", "a"),
		events.Event{Account: "bob", TokenID: tid("T1"), Data: events.TokenRenamed{OldName: "a", NewName: "b"}})
	if _, ok := s.live["a"]; ok {
		t.Fatal("old name still live")
	}
	s.Evolve(events.Event{Account: "bob", TokenID: tid("T1"), Data: events.TokenRevoked{Name: "b"}})
	if len(s.live) != 0 {
		t.Fatalf("live after revoke: %v", s.live)
	}
}

func TestChecks(t *testing.T) {
	past, present, future := now.Unix()-1, now.Unix(), now.Unix()+1
	endOf9999, after9999, maxInt64 := int64(events.MaxExpiresAt), int64(events.MaxExpiresAt)+1, int64(math.MaxInt64)
	long := strings.Repeat("x", 51)
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"create", Create{Account: "bob", Name: "a", Actor: actor}.Check(now), true},
		{"create in the future", Create{Account: "bob", Name: "a", ExpiresAt: &future, Actor: actor}.Check(now), true},
		{"create expiring now", Create{Account: "bob", Name: "a", ExpiresAt: &present, Actor: actor}.Check(now), false},
		{"create in the past", Create{Account: "bob", Name: "a", ExpiresAt: &past, Actor: actor}.Check(now), false},
		{"create with a bad account", Create{Account: "bob.*", Name: "a", Actor: actor}.Check(now), false},
		{"create with a long name", Create{Account: "bob", Name: long, Actor: actor}.Check(now), false},
		{"create with no actor", Create{Account: "bob", Name: "a"}.Check(now), false},
		{"rename", Rename{Account: "bob", Name: "a", NewName: "b", Actor: actor}.Check(), true},
		{"rename to the same name", Rename{Account: "bob", Name: "a", NewName: "a", Actor: actor}.Check(), false},
		{"rename to a bad name", Rename{Account: "bob", Name: "a", NewName: "a b", Actor: actor}.Check(), false},
		{"revoke", Revoke{Account: "bob", Names: []string{"a", "b"}, Actor: actor}.Check(), true},
		{"revoke nothing", Revoke{Account: "bob", Actor: actor}.Check(), false},
		{"revoke a bad name", Revoke{Account: "bob", Names: []string{"a", ">"}, Actor: actor}.Check(), false},
		{"create expiring at the end of 9999", Create{Account: "bob", Name: "a", ExpiresAt: &endOf9999, Actor: actor}.Check(now), true},
		{"create expiring after 9999", Create{Account: "bob", Name: "a", ExpiresAt: &after9999, Actor: actor}.Check(now), false},
		{"create expiring at the largest int64", Create{Account: "bob", Name: "a", ExpiresAt: &maxInt64, Actor: actor}.Check(now), false},
		{"rotate", Rotate{Account: "bob", Name: "a", Grace: time.Hour, Actor: actor}.Check(), true},
		{"set-allowed-ips", SetAllowedIPs{Account: "bob", Name: "a", AllowedIPs: prefixes(t, "192.0.2.0/24"), Actor: actor}.Check(), true},
		{"set-allowed-ips over the limit", SetAllowedIPs{Account: "bob", Name: "a", AllowedIPs: make([]events.Prefix, events.MaxAllowedIPs+1), Actor: actor}.Check(), false},
		{"create with too many allowed addresses", Create{Account: "bob", Name: "a", AllowedIPs: make([]events.Prefix, events.MaxAllowedIPs+1), Actor: actor}.Check(now), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if have := tt.err == nil; have != tt.want {
				t.Fatalf("ok=%v, want %v (%v)", have, tt.want, tt.err)
			}
			var e *events.Error
			if tt.err != nil && (!errors.As(tt.err, &e) || e.Code != events.Invalid) {
				t.Fatalf("want an invalid error, have %v", tt.err)
			}
		})
	}
}

// TestEveryCommandChecksItsActor: an actor the history could not show as it
// is (here, a name with control characters) is refused by every command as
// invalid, and the actors the transports make are accepted.
func TestEveryCommandChecksItsActor(t *testing.T) {
	id := "01JD0000000000000000000001"
	checks := map[string]func(events.Actor) error{
		"create":          func(a events.Actor) error { return Create{Account: "bob", Name: "a", Actor: a}.Check(now) },
		"rename":          func(a events.Actor) error { return Rename{Account: "bob", Name: "a", NewName: "b", Actor: a}.Check() },
		"revoke":          func(a events.Actor) error { return Revoke{Account: "bob", Names: []string{"a"}, Actor: a}.Check() },
		"rotate":          func(a events.Actor) error { return Rotate{Account: "bob", Name: "a", Actor: a}.Check() },
		"set-allowed-ips": func(a events.Actor) error { return SetAllowedIPs{Account: "bob", Name: "a", Actor: a}.Check() },
	}
	for _, tt := range []struct {
		name  string
		actor events.Actor
		want  bool
	}{
		{"cli operator", events.Actor{Kind: events.ActorOperator, Name: "alice"}, true},
		{"nats operator", events.Actor{Kind: events.ActorOperator, Name: "alice", Via: "nats:operator"}, true},
		{"http account", events.Actor{Kind: events.ActorAccount, Name: "bob", Remote: "127.0.0.1"}, true},
		{"http token", events.Actor{Kind: events.ActorToken, Name: "bob", TokenID: id, Remote: "::1"}, true},
		{"newline in the name", events.Actor{Kind: events.ActorOperator, Name: "alice\nforged line"}, false},
		{"terminal escape in the name", events.Actor{Kind: events.ActorOperator, Name: "\x1b]0;pwned\x07"}, false},
		{"remote not an address", events.Actor{Kind: events.ActorAccount, Name: "bob", Remote: "evil\r\n"}, false},
		{"via not nats:<user>", events.Actor{Kind: events.ActorOperator, Name: "alice", Via: "root"}, false},
	} {
		for command, check := range checks {
			t.Run(tt.name+"/"+command, func(t *testing.T) {
				err := check(tt.actor)
				if have := err == nil; have != tt.want {
					t.Fatalf("ok=%v, want %v (%v)", have, tt.want, err)
				}
				if err != nil && events.ErrorCode(err) != events.Invalid {
					t.Fatalf("code %q, want invalid", events.ErrorCode(err))
				}
			})
		}
	}
}
