package events

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCheckFeature(t *testing.T) {
	for _, tt := range []struct {
		have string
		want bool
	}{
		{"email", true},
		{"a", true},
		{"0", true},
		{"ftp:read", true},
		{"dns.zone-edit_2", true},
		{"tokens:create", true},
		{strings.Repeat("a", MaxFeatureLen), true},
		{"", false},
		{strings.Repeat("a", MaxFeatureLen+1), false},
		{"Email", false},
		{"-email", false},
		{"_email", false},
		{".email", false},
		{":email", false},
		{"e mail", false},
		{"e,mail", false},
		{"e*", false},
		{"e>", false},
		{"é", false},
		{"e\x00", false},
		{`e"`, false},
	} {
		t.Run(tt.have, func(t *testing.T) {
			err := CheckFeature(tt.have)
			if have := err == nil; have != tt.want {
				t.Fatalf("CheckFeature(%q) = %v, want ok %v", tt.have, err, tt.want)
			}
			if err != nil && ErrorCode(err) != Invalid {
				t.Fatalf("code %q, want invalid", ErrorCode(err))
			}
		})
	}
}

func TestParseFeatures(t *testing.T) {
	many := make([]string, MaxFeatures+1)
	for i := range many {
		many[i] = "f" + strings.Repeat("x", i%60) + string(rune('a'+i%26))
	}
	for _, tt := range []struct {
		name string
		have []string
		want []string
		ok   bool
	}{
		{"none is full access", nil, nil, true},
		{"empty is full access", []string{}, nil, true},
		{"sorted", []string{"ftp", "email", "dns"}, []string{"dns", "email", "ftp"}, true},
		{"repeats once", []string{"email", "email"}, []string{"email"}, true},
		{"at most 64", many[:MaxFeatures], nil, true},
		{"65 refused", many, nil, false},
		{"one bad name refuses all", []string{"email", "FTP"}, nil, false},
		{"an empty name", []string{""}, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			have, err := ParseFeatures(tt.have)
			if (err == nil) != tt.ok {
				t.Fatalf("err %v, want ok %v", err, tt.ok)
			}
			if tt.ok && tt.want != nil && !reflect.DeepEqual(have, tt.want) {
				t.Fatalf("have %q, want %q", have, tt.want)
			}
			if tt.ok && len(tt.have) == 0 && have != nil {
				t.Fatalf("have %q, want nil (full access)", have)
			}
		})
	}
}

// TestFeaturesOnTheWire: the fields as they travel, and events written
// before them read as full access that may write.
func TestFeaturesOnTheWire(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC)
	e := Event{ID: "01JD0000000000000000000000", At: at, Account: "bob", TokenID: tokenID("01JD0000000000000000000001"),
		Actor: Actor{Kind: ActorOperator, Name: "root"}}
	hash := "sha256:" + strings.Repeat("ab", 32)
	for _, tt := range []struct {
		name string
		data Data
		want string
	}{
		{"full access, as before", TokenCreated{Name: "deploy", TokenHash: mustHash(t, hash), FullAccess: true},
			`{"name":"deploy","token_hash":"` + hash + `","expires_at":null,"full_access":true}`},
		{"limited and read-only", TokenCreated{Name: "deploy", TokenHash: mustHash(t, hash), Features: []string{"email", "ftp"}, ReadOnly: true},
			`{"name":"deploy","token_hash":"` + hash + `","expires_at":null,"full_access":false,"features":["email","ftp"],"readonly":true}`},
		{"features set", FeaturesSet{Name: "deploy", Features: []string{"email"}},
			`{"name":"deploy","features":["email"]}`},
		{"features set to full access", FeaturesSet{Name: "deploy", Features: []string{}},
			`{"name":"deploy","features":[]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.Data = tt.data
			b := mustEncode(t, e)
			if !strings.Contains(string(b), `"data":`+tt.want+`}`) {
				t.Fatalf("have %s\nwant data %s", b, tt.want)
			}
			back, err := Decode(b)
			if err != nil || !reflect.DeepEqual(back.Data, tt.data) {
				t.Fatalf("Decode: %+v, %v; want %+v", back.Data, err, tt.data)
			}
		})
	}
	if TypeFeaturesSet != "token.features_set" || (FeaturesSet{}).eventType() != TypeFeaturesSet {
		t.Fatalf("type %q", TypeFeaturesSet)
	}
	if have := (FeaturesSet{Name: "deploy"}).Label(); have != "deploy" {
		t.Fatalf("label %q", have)
	}

	// An event of a stream older than features: no features, not read-only.
	old := `{"v":1,"id":"01JD0000000000000000000000","type":"token.created","at":"2026-11-23T10:00:00.123Z","account":"bob","token_id":"01JD0000000000000000000001","actor":{"kind":"account","name":"bob"},"data":{"name":"deploy","token_hash":"` + hash + `","expires_at":1795564799,"full_access":true}}`
	have, err := Decode([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if d := have.Data.(TokenCreated); d.Features != nil || d.ReadOnly || !d.FullAccess {
		t.Fatalf("an old event reads as %+v", d)
	}
}

func TestDecodeRefusesBadFeatures(t *testing.T) {
	hash := "sha256:" + strings.Repeat("ab", 32)
	many := make([]any, MaxFeatures+1)
	for i := range many {
		many[i] = "f" + strings.Repeat("x", i)
	}
	for _, tt := range []struct {
		name string
		typ  string
		data map[string]any
	}{
		{"created, bad feature", TypeCreated, map[string]any{"name": "x", "token_hash": hash, "expires_at": nil, "features": []any{"Email"}}},
		{"created, 65 features", TypeCreated, map[string]any{"name": "x", "token_hash": hash, "expires_at": nil, "features": many}},
		{"created, full access and features", TypeCreated, map[string]any{"name": "x", "token_hash": hash, "expires_at": nil, "full_access": true, "features": []any{"email"}}},
		{"created, features not a list", TypeCreated, map[string]any{"name": "x", "token_hash": hash, "expires_at": nil, "features": "email"}},
		{"created, readonly not a boolean", TypeCreated, map[string]any{"name": "x", "token_hash": hash, "expires_at": nil, "readonly": 1}},
		{"features set, bad feature", TypeFeaturesSet, map[string]any{"name": "x", "features": []any{"a b"}}},
		{"features set, bad name", TypeFeaturesSet, map[string]any{"name": "a b", "features": []any{}}},
		{"features set, 65 features", TypeFeaturesSet, map[string]any{"name": "x", "features": many}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(map[string]any{"v": 1, "id": NewID(), "type": tt.typ, "at": "2026-11-23T10:00:00.123Z",
				"account": "bob", "token_id": NewID(), "actor": map[string]any{"kind": "account", "name": "bob"}, "data": tt.data})
			if _, err := Decode(b); ErrorCode(err) != Invalid {
				t.Fatalf("Decode(%s) = %v, want invalid", b, err)
			}
			assertSameAsJSON(t, b)
		})
	}
}
