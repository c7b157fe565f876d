package natsapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/natsapi"
)

// command sends body to subject as another program would, and returns the
// reply's code ("" when ok) and the reply as JSON members.
func command(tb testing.TB, n *served, subject, body string) (string, map[string]json.RawMessage) {
	tb.Helper()
	msg, err := n.Client.Request(subject, []byte(body), 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	var r map[string]json.RawMessage
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		tb.Fatalf("reply %q: %v", msg.Data, err)
	}
	if string(r["ok"]) == "true" {
		return "", r
	}
	var code string
	json.Unmarshal(r["code"], &code)
	return code, r
}

// members reads a JSON object's members, for asserting what a reply holds
// and what it leaves out.
func members(tb testing.TB, raw []byte) map[string]json.RawMessage {
	tb.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatalf("%s: %v", raw, err)
	}
	return m
}

// TestLimitedAndReadOnlyTokens: tokens created over NATS with features, and
// read-only, show them in the create reply and in list rows, and validate
// for a feature and for a write as the contract says.
func TestLimitedAndReadOnlyTokens(t *testing.T) {
	n := MustServe(t, natstest.MustServer(t), nil)
	ctx := context.Background()
	create := func(name string, features []string, readOnly bool) natsapi.NewToken {
		t.Helper()
		tok, err := n.API.Create(ctx, natsapi.CreateRequest{Account: "bob", Name: name, Features: features, ReadOnly: readOnly})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return tok
	}
	full := create("full", nil, false)
	mail := create("mail", []string{"ftp", "email", "ftp"}, false)
	reader := create("reader", nil, true)
	mailReader := create("mail-reader", []string{"email"}, true)

	// The create replies, as they travel.
	for _, tt := range []struct {
		tok  natsapi.NewToken
		want string // has_full_access, features, readonly
	}{
		{full, `1 [] <nil>`},
		{mail, `0 ["email","ftp"] <nil>`},
		{reader, `1 [] 1`},
		{mailReader, `0 ["email"] 1`},
	} {
		b, _ := json.Marshal(tt.tok)
		m := members(t, b)
		ro := "<nil>"
		if v, ok := m["readonly"]; ok {
			ro = string(v)
		}
		if have := fmt.Sprintf("%s %s %s", m["has_full_access"], m["features"], ro); have != tt.want {
			t.Errorf("create %s: %s, want %s", tt.tok.Name, have, tt.want)
		}
	}

	// The list rows, as they travel.
	_, rep := command(t, n, "tokens.cmd.list", `{"account":"bob"}`)
	var rows []map[string]json.RawMessage
	if err := json.Unmarshal(rep["tokens"], &rows); err != nil {
		t.Fatal(err)
	}
	want := []string{`"full" 1 [] <nil>`, `"mail" 0 ["email","ftp"] <nil>`, `"reader" 1 [] 1`, `"mail-reader" 0 ["email"] 1`}
	for i, row := range rows {
		ro := "<nil>"
		if v, ok := row["readonly"]; ok {
			ro = string(v)
		}
		if have := fmt.Sprintf("%s %s %s %s", row["name"], row["has_full_access"], row["features"], ro); have != want[i] {
			t.Errorf("row %d: %s, want %s", i, have, want[i])
		}
	}

	// Validations, each as raw JSON.
	body := func(secret, rest string) []byte { return []byte(`{"token":"` + secret + `"` + rest + `}`) }
	for _, tt := range []struct {
		name string
		body []byte
		want string // the reason, or the valid reply's features and readonly
	}{
		{"full access, no feature named", body(full.Token, ``), `[] false`},
		{"full access has any feature", body(full.Token, `,"feature":"email"`), `[] false`},
		{"full access may write", body(full.Token, `,"features":["dns","ssl"],"write":true`), `[] false`},
		{"limited, no feature named", body(mail.Token, ``), `[email ftp] false`},
		{"limited, a feature it has", body(mail.Token, `,"feature":"email"`), `[email ftp] false`},
		{"limited, features it has", body(mail.Token, `,"features":["ftp","email"],"write":true`), `[email ftp] false`},
		{"limited, feature and features", body(mail.Token, `,"feature":"ftp","features":["email"]`), `[email ftp] false`},
		{"limited, a feature it lacks", body(mail.Token, `,"feature":"dns"`), "feature_denied"},
		{"limited, one of features it lacks", body(mail.Token, `,"features":["email","dns"]`), "feature_denied"},
		{"limited, feature lacking beside features", body(mail.Token, `,"feature":"dns","features":["email"]`), "feature_denied"},
		{"limited, spaced and out of order", []byte(` { "write" : false , "features" : [ "email" ] , "token" : "` + mail.Token + `" } `), `[email ftp] false`},
		{"read-only reads", body(reader.Token, `,"feature":"email"`), `[] true`},
		{"read-only, write false", body(reader.Token, `,"write":false`), `[] true`},
		{"read-only writes", body(reader.Token, `,"write":true`), "read_only"},
		{"limited read-only reads", body(mailReader.Token, `,"feature":"email","account":"bob"`), `[email] true`},
		{"limited read-only writes", body(mailReader.Token, `,"feature":"email","write":true`), "read_only"},
		{"wrong account first", body(mailReader.Token, `,"account":"carol","feature":"dns","write":true`), "wrong_account"},

		{"an empty feature", body(mail.Token, `,"feature":""`), "malformed"},
		{"a feature that cannot be one", body(mail.Token, `,"feature":"Email"`), "malformed"},
		{"features with one that cannot be", body(mail.Token, `,"features":["email","a b"]`), "malformed"},
		{"features not a list", body(mail.Token, `,"features":"email"`), "malformed"},
		{"feature not a string", body(mail.Token, `,"feature":["email"]`), "malformed"},
		{"write not a boolean", body(mail.Token, `,"write":"yes"`), "malformed"},
		{"write as 1", body(full.Token, `,"write":1`), "malformed"},
		{"65 features", body(full.Token, `,"features":["a"`+strings.Repeat(`,"a"`, events.MaxFeatures)+`]`), "malformed"},
		{"an unknown member", body(full.Token, `,"scope":"email"`), "malformed"},
		{"a misspelt member", body(mail.Token, `,"feautre":"dns"`), "malformed"},
		{"readonly is not a request's", body(full.Token, `,"readonly":true`), "malformed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := ask(t, n.Client, tt.body)
			have := rep.Reason
			if rep.Valid {
				have = fmt.Sprint(rep.Features, " ", rep.ReadOnly)
			}
			if have != tt.want {
				t.Fatalf("%s: %s, want %s", tt.body, have, tt.want)
			}
		})
	}

	// The client asks the same.
	rep2, err := n.API.ValidateFrom(ctx, natsapi.ValidateRequest{Token: mail.Token, Feature: "dns"})
	if err != nil || rep2.Valid || rep2.Reason != "feature_denied" {
		t.Fatalf("client, feature it lacks: %+v, %v", rep2, err)
	}
	rep2, err = n.API.ValidateFrom(ctx, natsapi.ValidateRequest{Token: mailReader.Token, Features: []string{"email"}})
	if err != nil || !rep2.Valid || !reflect.DeepEqual(rep2.Features, []string{"email"}) || !rep2.ReadOnly {
		t.Fatalf("client, limited read-only: %+v, %v", rep2, err)
	}
}

// TestSetFeaturesOverNATS: tokens.cmd.set-features narrows and widens a
// token, and [] gives it full access again; what it refuses, it refuses
// whole.
func TestSetFeaturesOverNATS(t *testing.T) {
	n := MustServe(t, natstest.MustServer(t), nil)
	ctx := context.Background()
	tok, err := n.API.Create(ctx, natsapi.CreateRequest{Account: "bob", Name: "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	validate := func(feature string) string {
		rep, err := n.API.ValidateFrom(ctx, natsapi.ValidateRequest{Token: tok.Token, Feature: feature})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Valid {
			return rep.Reason
		}
		return fmt.Sprint(rep.Features)
	}
	row := func() string {
		toks, err := n.API.List(ctx, "bob")
		if err != nil || len(toks) != 1 {
			t.Fatalf("list: %+v, %v", toks, err)
		}
		return fmt.Sprint(toks[0].HasFullAccess, toks[0].Features)
	}
	for _, tt := range []struct {
		name     string
		features []string
		email    string // validate for email
		row      string
	}{
		{"narrowed", []string{"ftp"}, "feature_denied", "0 [ftp]"},
		{"widened", []string{"ftp", "email"}, "[email ftp]", "0 [email ftp]"},
		{"full access again", nil, "[]", "1 []"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := n.API.SetFeatures(ctx, natsapi.SetFeaturesRequest{Account: "bob", Name: "deploy", Features: tt.features}); err != nil {
				t.Fatal(err)
			}
			if have := validate("email"); have != tt.email {
				t.Errorf("validate for email: %s, want %s", have, tt.email)
			}
			if have := row(); have != tt.row {
				t.Errorf("row: %s, want %s", have, tt.row)
			}
		})
	}

	for _, tt := range []struct {
		name, body, code string
	}{
		{"features as []", `{"account":"bob","name":"deploy","features":[]}`, ""},
		{"features left out", `{"account":"bob","name":"deploy"}`, events.Invalid},
		{"features null", `{"account":"bob","name":"deploy","features":null}`, events.Invalid},
		{"features not a list", `{"account":"bob","name":"deploy","features":"email"}`, events.Invalid},
		{"a bad feature", `{"account":"bob","name":"deploy","features":["email","FTP"]}`, events.Invalid},
		{"an empty feature", `{"account":"bob","name":"deploy","features":[""]}`, events.Invalid},
		{"65 features", `{"account":"bob","name":"deploy","features":["a"` + strings.Repeat(`,"a"`, events.MaxFeatures) + `]}`, events.Invalid},
		{"a misspelt member", `{"account":"bob","name":"deploy","feature":["email"],"features":[]}`, events.Invalid},
		{"a bad account", `{"account":"bob.>","name":"deploy","features":[]}`, events.Invalid},
		{"an unknown token", `{"account":"bob","name":"nope","features":["email"]}`, events.NotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if code, rep := command(t, n, "tokens.cmd.set-features", tt.body); code != tt.code {
				t.Fatalf("code %q, want %q: %s", code, tt.code, rep["error"])
			}
			if have := validate("email"); have != "[]" {
				t.Fatalf("after a refused change, validate for email: %s", have)
			}
		})
	}
}

// TestCreateRefusesWhatWouldBeIgnored: a create whose limits are misspelt,
// of the wrong type or not feature names is refused, and makes no token.
func TestCreateRefusesWhatWouldBeIgnored(t *testing.T) {
	n := MustServe(t, natstest.MustServer(t), nil)
	for _, tt := range []struct {
		name, rest string
	}{
		{"feature, singular", `,"feature":"email"`},
		{"read_only", `,"read_only":true`},
		{"Read-only, spelt otherwise", `,"read-only":true`},
		{"readonly as 1", `,"readonly":1`},
		{"readonly as a string", `,"readonly":"true"`},
		{"features as a string", `,"features":"email"`},
		{"a bad feature", `,"features":["email","Web Disk"]`},
		{"an empty feature", `,"features":[""]`},
		{"65 features", `,"features":["a"` + strings.Repeat(`,"a"`, events.MaxFeatures) + `]`},
		{"acl, WHM's word", `,"acls":["list-accts"]`},
		{"data after the object", `}{`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"account":"bob","name":"x"` + tt.rest
			if !strings.HasSuffix(body, "{") {
				body += "}"
			}
			if code, rep := command(t, n, "tokens.cmd.create", body); code != events.Invalid {
				t.Fatalf("code %q, want invalid: %s", code, rep)
			}
		})
	}
	toks, err := n.API.List(context.Background(), "bob")
	if err != nil || len(toks) != 0 {
		t.Fatalf("tokens after refused creates: %+v, %v", toks, err)
	}
	// What is spelt right is taken, in any order, null as not given.
	if code, rep := command(t, n, "tokens.cmd.create", `{"readonly":true,"features":["email"],"name":"x","account":"bob","expires_at":null}`); code != "" {
		t.Fatalf("create: %s", rep["error"])
	}
	if code, rep := command(t, n, "tokens.cmd.create", `{"account":"bob","name":"y","features":null,"readonly":null}`); code != "" {
		t.Fatalf("create with nulls: %s", rep["error"])
	}
	toks, _ = n.API.List(context.Background(), "bob")
	if len(toks) != 2 || toks[0].ReadOnly != 1 || fmt.Sprint(toks[0].Features) != "[email]" || toks[1].HasFullAccess != 1 || toks[1].ReadOnly != 0 {
		t.Fatalf("tokens %+v", toks)
	}
}

// TestRotateKeepsFeatures: a rotation's reply shows the token's id, name,
// creation, expiry, features and read-only flag, which the new secret keeps.
func TestRotateKeepsFeatures(t *testing.T) {
	n := MustServe(t, natstest.MustServer(t), nil)
	ctx := context.Background()
	expires := time.Now().Add(time.Hour).Unix()
	made, err := n.API.Create(ctx, natsapi.CreateRequest{Account: "bob", Name: "mail", ExpiresAt: &expires, Features: []string{"email"}, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := n.API.Rotate(ctx, natsapi.RotateRequest{Account: "bob", Name: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.HasFullAccess != 0 || fmt.Sprint(tok.Features) != "[email]" || tok.ReadOnly != 1 || tok.Token == made.Token ||
		tok.Name != "mail" || tok.TokenID != made.TokenID || tok.CreateTime != made.CreateTime || tok.ExpiresAt == nil || *tok.ExpiresAt != expires {
		t.Fatalf("rotated %+v, created %+v", tok, made)
	}
	rep, err := n.API.ValidateFrom(ctx, natsapi.ValidateRequest{Token: tok.Token, Feature: "ftp"})
	if err != nil || rep.Reason != "feature_denied" {
		t.Fatalf("the new secret for ftp: %+v, %v", rep, err)
	}
}
