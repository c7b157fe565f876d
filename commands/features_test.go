package commands

import (
	"reflect"
	"strings"
	"testing"

	"tokenledger/events"
)

func createdWith(id, name string, features []string, readOnly bool) events.Event {
	return events.Event{ID: "e" + id, Account: "bob", TokenID: tid(id), Data: events.TokenCreated{Name: name,
		TokenHash: events.HashSecret(id), FullAccess: len(features) == 0, Features: features, ReadOnly: readOnly}}
}

func TestDecideCreateFeatures(t *testing.T) {
	for _, tt := range []struct {
		name     string
		features []string
		readOnly bool
		want     []string
	}{
		{"full access", nil, false, nil},
		{"limited, sorted, once each", []string{"ftp", "email", "ftp"}, false, []string{"email", "ftp"}},
		{"read-only", nil, true, nil},
		{"limited and read-only", []string{"email"}, true, []string{"email"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := decideCreate(stateOf(), Create{Account: "bob", Name: "deploy", Features: tt.features, ReadOnly: tt.readOnly, Actor: actor},
				events.HashSecret("S"), tid("T9"), now, ids())
			if err != nil {
				t.Fatal(err)
			}
			d := evs[0].Data.(events.TokenCreated)
			if !reflect.DeepEqual(d.Features, tt.want) || d.FullAccess != (len(tt.want) == 0) || d.ReadOnly != tt.readOnly {
				t.Fatalf("data %+v", d)
			}
		})
	}
}

func TestCheckRefusesBadFeatures(t *testing.T) {
	many := make([]string, events.MaxFeatures+1)
	for i := range many {
		many[i] = "f" + strings.Repeat("x", i)
	}
	for _, features := range [][]string{{"Email"}, {"email", ""}, {"a b"}, {"tokens>"}, many} {
		if err := (Create{Account: "bob", Name: "a", Features: features, Actor: actor}).Check(now); events.ErrorCode(err) != events.Invalid {
			t.Errorf("create with %.40q: %v, want invalid", features, err)
		}
		if err := (SetFeatures{Account: "bob", Name: "a", Features: features, Actor: actor}).Check(); events.ErrorCode(err) != events.Invalid {
			t.Errorf("set-features with %.40q: %v, want invalid", features, err)
		}
	}
	if err := (SetFeatures{Account: "bob", Name: "a b", Actor: actor}).Check(); events.ErrorCode(err) != events.Invalid {
		t.Errorf("set-features with a bad name: %v", err)
	}
}

func TestDecideSetFeatures(t *testing.T) {
	s := stateOf(createdWith("T1", "deploy", []string{"email"}, false), created("T2", "old"),
		events.Event{Account: "bob", TokenID: tid("T2"), Data: events.TokenRevoked{Name: "old"}})
	for _, tt := range []struct {
		name     string
		token    string
		features []string
		want     []string
		code     string
	}{
		{"widen", "deploy", []string{"ftp", "email"}, []string{"email", "ftp"}, ""},
		{"narrow to another", "deploy", []string{"dns"}, []string{"dns"}, ""},
		{"full access again", "deploy", nil, []string{}, ""},
		{"unknown token", "nope", []string{"dns"}, nil, events.NotFound},
		{"revoked token", "old", []string{"dns"}, nil, events.NotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := decideSetFeatures(s, SetFeatures{Account: "bob", Name: tt.token, Features: tt.features, Actor: actor}, now, ids())
			if have := events.ErrorCode(err); have != tt.code {
				t.Fatalf("code %q, want %q (%v)", have, tt.code, err)
			}
			if err == nil {
				d := evs[0].Data.(events.FeaturesSet)
				if len(evs) != 1 || evs[0].TokenID != tid("T1") || d.Name != tt.token || !reflect.DeepEqual(d.Features, tt.want) {
					t.Fatalf("events %+v", evs)
				}
			}
		})
	}
	// The state follows: a token set back to full access may give anything.
	s.Evolve(events.Event{Account: "bob", TokenID: tid("T1"), Data: events.FeaturesSet{Name: "deploy", Features: []string{}}})
	if s.live["deploy"].features != nil {
		t.Fatalf("features %q after a set to full access", s.live["deploy"].features)
	}
}

// TestTokensGiveNoMoreThanTheyHave: a token acting (over the UAPI) gives at
// most the features it has, a read-only token changes nothing, and a token
// no longer live does nothing; an operator may do anything.
func TestTokensGiveNoMoreThanTheyHave(t *testing.T) {
	s := stateOf(
		created("T1", "full"),
		createdWith("T2", "mail", []string{"email", "ftp"}, false),
		createdWith("T3", "reader", nil, true),
		createdWith("T4", "limited-reader", []string{"email"}, true),
		createdWith("T5", "gone", []string{"email"}, false),
		events.Event{Account: "bob", TokenID: tid("T5"), Data: events.TokenRevoked{Name: "gone"}},
	)
	by := func(id string) events.Actor {
		return events.Actor{Kind: events.ActorToken, Name: "bob", TokenID: tid(id).String()}
	}
	hash := events.HashSecret("S")
	create := func(a events.Actor, features ...string) error {
		_, err := decideCreate(s, Create{Account: "bob", Name: "new", Features: features, Actor: a}, hash, tid("T9"), now, ids())
		return err
	}
	setFeatures := func(a events.Actor, name string, features ...string) error {
		_, err := decideSetFeatures(s, SetFeatures{Account: "bob", Name: name, Features: features, Actor: a}, now, ids())
		return err
	}
	rotate := func(a events.Actor, name string) error {
		_, err := decideRotate(s, Rotate{Account: "bob", Name: name, Actor: a}, hash, now, ids())
		return err
	}
	rename := func(a events.Actor) error {
		_, err := decideRename(s, Rename{Account: "bob", Name: "mail", NewName: "post", Actor: a}, now, ids())
		return err
	}
	revoke := func(a events.Actor) error {
		_, err := decideRevoke(s, Revoke{Account: "bob", Names: []string{"mail"}, Actor: a}, now, ids())
		return err
	}
	allow := func(a events.Actor) error {
		_, err := decideSetAllowedIPs(s, SetAllowedIPs{Account: "bob", Name: "mail", Actor: a}, now, ids())
		return err
	}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"operator creates full access", create(actor), ""},
		{"account creates full access", create(events.Actor{Kind: events.ActorAccount, Name: "bob"}), ""},
		{"full token creates full access", create(by("T1")), ""},
		{"full token creates limited", create(by("T1"), "dns"), ""},
		{"limited token creates a subset", create(by("T2"), "email"), ""},
		{"limited token creates its own set", create(by("T2"), "ftp", "email"), ""},
		{"limited token creates full access", create(by("T2")), events.Unauthorized},
		{"limited token creates a feature it lacks", create(by("T2"), "email", "dns"), events.Unauthorized},
		{"read-only token creates", create(by("T3")), events.Unauthorized},
		{"limited read-only token creates a subset", create(by("T4"), "email"), events.Unauthorized},
		{"revoked token creates", create(by("T5"), "email"), events.Unauthorized},
		{"token of another account creates", create(by("01JD0000000000000000000099"), "email"), events.Unauthorized},

		{"limited token narrows a token", setFeatures(by("T2"), "full", "email"), ""},
		{"limited token widens itself", setFeatures(by("T2"), "mail", "email", "ftp", "dns"), events.Unauthorized},
		{"limited token sets full access", setFeatures(by("T2"), "mail"), events.Unauthorized},
		{"full token sets full access", setFeatures(by("T1"), "mail"), ""},
		{"read-only token sets features", setFeatures(by("T3"), "mail", "email"), events.Unauthorized},

		{"limited token rotates a token within its features", rotate(by("T2"), "limited-reader"), ""},
		{"limited token rotates itself", rotate(by("T2"), "mail"), ""},
		{"limited token rotates a full token", rotate(by("T2"), "full"), events.Unauthorized},
		{"read-only token rotates itself", rotate(by("T3"), "reader"), events.Unauthorized},
		{"read-only token rotates an unknown token", rotate(by("T3"), "nope"), events.Unauthorized},
		{"full token rotates an unknown token", rotate(by("T1"), "nope"), events.NotFound},

		{"limited token renames", rename(by("T2")), ""},
		{"read-only token renames", rename(by("T3")), events.Unauthorized},
		{"read-only token revokes", revoke(by("T3")), events.Unauthorized},
		{"read-only token sets allowed ips", allow(by("T3")), events.Unauthorized},
		{"revoked token revokes", revoke(by("T5")), events.Unauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if have := events.ErrorCode(tt.err); have != tt.want {
				t.Fatalf("code %q, want %q (%v)", have, tt.want, tt.err)
			}
		})
	}
}
