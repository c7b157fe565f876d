package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCLIFeaturesAndReadOnly: limited-access and read-only tokens as a user
// of the command line makes and sees them, against a real `serve`.
func TestCLIFeaturesAndReadOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	node := cliServe(t, t.TempDir())
	url := node.natsURL

	full := strings.TrimSpace(mustCLI(t, url, "create", "--account", "bob", "--name", "full"))
	mail := strings.TrimSpace(mustCLI(t, url, "create", "--account", "bob", "--name", "mail", "--feature", "email", "--feature", "ftp"))
	reader := strings.TrimSpace(mustCLI(t, url, "create", "--account", "bob", "--name", "reader", "--readonly"))
	var made map[string]json.RawMessage
	out := mustCLI(t, url, "create", "--account", "bob", "--name", "mail-reader", "--feature", "email", "--readonly", "--json")
	if err := json.Unmarshal([]byte(out), &made); err != nil {
		t.Fatal(err)
	}
	if have := fmt.Sprintf("%s %s %s", made["has_full_access"], made["features"], made["readonly"]); have != `0 ["email"] 1` {
		t.Fatalf("create --json: %s", out)
	}
	mailReader := ""
	json.Unmarshal(made["token"], &mailReader)

	// The table: the contract's four columns first, then FEATURES and READONLY.
	table := mustCLI(t, url, "list", "--account", "bob")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 5 || strings.Join(strings.Fields(lines[0]), " ") != "NAME CREATED EXPIRES STATUS FEATURES READONLY" {
		t.Fatalf("list:\n%s", table)
	}
	for i, want := range []string{"full never active <all> no", "mail never active email,ftp no", "reader never active <all> yes",
		"mail-reader never active email yes"} {
		f := strings.Fields(lines[i+1])
		if have := strings.Join(append(f[:1:1], f[2:]...), " "); have != want {
			t.Errorf("row %d: %q, want %q", i+1, have, want)
		}
	}

	// list --json, as the contract shows a token.
	raw := mustCLI(t, url, "list", "--account", "bob", "--json")
	var rows []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &rows); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{`1 [] <nil>`, `0 ["email","ftp"] <nil>`, `1 [] 1`, `0 ["email"] 1`} {
		ro := "<nil>"
		if v, ok := rows[i]["readonly"]; ok {
			ro = string(v)
		}
		if have := fmt.Sprintf("%s %s %s", rows[i]["has_full_access"], rows[i]["features"], ro); have != want {
			t.Errorf("list --json row %d: %s, want %s", i, have, want)
		}
	}

	// validate, for features and for a write.
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"full access for a feature and a write", []string{"--feature", "dns", "--write", full}, 0, `"features":[]`},
		{"limited, a feature it has", []string{"--feature", "email", mail}, 0, `"features":["email","ftp"]`},
		{"limited, features it has", []string{"--feature", "ftp", "--feature", "email", "--write", mail}, 0, `"features":["email","ftp"]`},
		{"limited, a feature it lacks", []string{"--feature", "dns", mail}, 1, `{"valid":false,"reason":"feature_denied"}`},
		{"read-only reads", []string{reader}, 0, `"readonly":true`},
		{"read-only writes", []string{"--write", reader}, 1, `{"valid":false,"reason":"read_only"}`},
		{"limited read-only writes", []string{"--feature", "email", "--write", mailReader}, 1, `{"valid":false,"reason":"read_only"}`},
		{"a feature that cannot be one", []string{"--feature", "E-mail", mail}, 2, ``},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, url, append([]string{"validate"}, tt.args...)...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, %s %s; want %d and %s", code, out, errOut, tt.code, tt.want)
			}
		})
	}

	// Bad feature names are refused before anything reaches the ledger.
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"create, upper case", []string{"create", "--account", "bob", "--name", "x", "--feature", "Email"}},
		{"create, a space", []string{"create", "--account", "bob", "--name", "x", "--feature", "web disk"}},
		{"create, empty", []string{"create", "--account", "bob", "--name", "x", "--feature", ""}},
		{"create, a wildcard", []string{"create", "--account", "bob", "--name", "x", "--feature", "tokens.>"}},
		{"create, 65 features", append([]string{"create", "--account", "bob", "--name", "x"}, strings.Split(strings.Repeat("--feature f ", 65), " ")[:130]...)},
		{"create, readonly with a value", []string{"create", "--account", "bob", "--name", "x", "--readonly=maybe"}},
		{"set-features, a leading dash", []string{"set-features", "--account", "bob", "--name", "mail", "--feature", "-email"}},
		{"set-features, no name", []string{"set-features", "--account", "bob", "--feature", "email"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, url, tt.args...)
			if code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
				t.Fatalf("exit %d, %q; want 2 and a one-line reason", code, errOut)
			}
		})
	}
	if rows := listJSON(t, url, "bob"); len(rows) != 4 || fmt.Sprint(rows[1].Features) != "[email ftp]" {
		t.Fatalf("refused commands changed the table: %+v", rows)
	}
	if _, errOut, code := runCLI(t, url, "set-features", "--account", "bob", "--name", "nope", "--feature", "email"); code != 1 {
		t.Fatalf("set-features of an unknown token: exit %d, %s", code, errOut)
	}
}

// TestCLISetFeaturesHistoryAndReplay: set-features narrows, widens and
// gives full access again; history shows each change with who made it, and
// replay --as-of shows the features a token had at each instant.
func TestCLISetFeaturesHistoryAndReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	node := cliServe(t, t.TempDir())
	url := node.natsURL
	secret := strings.TrimSpace(mustCLI(t, url, "create", "--account", "bob", "--name", "deploy", "--feature", "email", "--feature", "ftp"))
	instants := []time.Time{time.Now()}
	for _, args := range [][]string{
		{"--feature", "ftp"},                     // narrowed
		{"--feature", "ftp", "--feature", "dns"}, // widened
		{},                                       // full access again
	} {
		mustCLI(t, url, append([]string{"set-features", "--account", "bob", "--name", "deploy"}, args...)...)
		instants = append(instants, time.Now())
	}

	for i, want := range []string{"email,ftp", "ftp", "dns,ftp", "<all>"} {
		out := mustCLI(t, url, "replay", "--account", "bob", "--as-of", instants[i].Format(time.RFC3339Nano))
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || strings.Fields(lines[1])[4] != want {
			t.Errorf("replay --as-of instant %d:\n%s\nwant FEATURES %s", i, out, want)
		}
		var rows []listed
		if err := json.Unmarshal([]byte(mustCLI(t, url, "replay", "--account", "bob", "--json", "--as-of", instants[i].Format(time.RFC3339Nano))), &rows); err != nil {
			t.Fatal(err)
		}
		wantJSON := want
		if want == "<all>" {
			wantJSON = ""
		}
		if have := strings.Join(rows[0].Features, ","); have != wantJSON || (rows[0].HasFullAccess == 1) != (want == "<all>") {
			t.Errorf("replay --json --as-of instant %d: %+v, want %s", i, rows[0], want)
		}
	}

	history := mustCLI(t, url, "history", "--account", "bob", "--name", "deploy")
	lines := strings.Split(strings.TrimSpace(history), "\n")
	if len(lines) != 5 {
		t.Fatalf("history:\n%s", history)
	}
	for i, want := range []string{"token.created", "token.features_set", "token.features_set", "token.features_set"} {
		if f := strings.Fields(lines[i+1]); f[1] != want || f[3] != "deploy" || !strings.HasPrefix(f[4], "operator:") {
			t.Errorf("history row %d: %q, want %s of deploy by an operator", i+1, lines[i+1], want)
		}
	}
	raw := mustCLI(t, url, "history", "--account", "bob", "--json")
	for _, want := range []string{`"features":["email","ftp"]`, `"features":["ftp"]`, `"features":["dns","ftp"]`, `"features":[]`} {
		if !strings.Contains(raw, want) {
			t.Errorf("history --json lacks %s:\n%s", want, raw)
		}
	}
	if out := mustCLI(t, url, "validate", "--feature", "ssl", secret); !strings.Contains(out, `"features":[]`) {
		t.Fatalf("validate after full access again: %s", out)
	}
}
