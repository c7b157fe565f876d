package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runPasswd(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"passwd"}, args...), func(string) string { return "" },
		strings.NewReader(stdin), &stdout, &stderr)
	if err != nil {
		return err.Error(), exitCode(err)
	}
	return stderr.String(), 0
}

func TestPasswd(t *testing.T) {
	file := filepath.Join(t.TempDir(), "accounts")
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{"adds", "first-password\n", []string{"--accounts", file, "bob"}, 0},
		{"adds another", "carol-password", []string{"--accounts", file, "carol"}, 0},
		{"changes", "second-password\r\n", []string{"--accounts", file, "bob"}, 0},
		{"empty password", "\n", []string{"--accounts", file, "bob"}, 2},
		{"too long for bcrypt", strings.Repeat("x", 73) + "\n", []string{"--accounts", file, "bob"}, 2},
		{"too short", "11-chars-pw\n", []string{"--accounts", file, "bob"}, 2},
		{"bad account", "pw\n", []string{"--accounts", file, "Bob"}, 2},
		{"no file", "pw\n", []string{"bob"}, 2},
		{"no account", "pw\n", []string{"--accounts", file}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out, code := runPasswd(t, tc.stdin, tc.args...); code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, out)
			}
		})
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "bob:$2y$") || !strings.HasPrefix(lines[1], "carol:$2y$") {
		t.Fatalf("accounts file:\n%s", b)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("accounts file mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestPasswdTooShort: a password under 12 characters is refused with a
// one-line reason and exit status 2, and the file is left as it was, or not
// made at all.
func TestPasswdTooShort(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "accounts")
	if out, code := runPasswd(t, "a-long-enough-pw\n", "--accounts", file, "bob"); code != 0 {
		t.Fatal(out)
	}
	before, _ := os.ReadFile(file)
	for _, tc := range []struct{ name, path, account string }{
		{"change", file, "bob"},
		{"new account", file, "carol"},
		{"new file", filepath.Join(dir, "new"), "bob"},
	} {
		out, code := runPasswd(t, "short-pw-11\n", "--accounts", tc.path, tc.account)
		if code != 2 || strings.Contains(out, "\n") || !strings.Contains(out, "passwd: the password is shorter than 12 characters") {
			t.Errorf("%s: exit %d: %q", tc.name, code, out)
		}
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(after, before) {
		t.Fatalf("a refused password changed the file:\n%s", after)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Fatalf("a refused password made a file: %v", err)
	}
}

// TestServeAccounts runs the real serve with --accounts: a password opens
// the UAPI, a token made with it opens it too, and a password changed while
// the node runs takes effect at once.
func TestServeAccounts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "accounts")
	if out, code := runPasswd(t, "first-password\n", "--accounts", file, "bob"); code != 0 {
		t.Fatal(out)
	}
	n := cliServe(t, filepath.Join(dir, "data"), "--accounts", file)
	call := func(fn, auth string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("GET", n.httpURL+"/execute/Tokens/"+fn, nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env map[string]any
		json.NewDecoder(resp.Body).Decode(&env)
		return resp.StatusCode, env
	}
	basic := func(pw string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth("bob", pw)
		return r.Header.Get("Authorization")
	}
	code, env := call("create_full_access?name=deploy", basic("first-password"))
	if code != 200 || env["status"] != 1.0 {
		t.Fatalf("create by password: %d %v", code, env)
	}
	secret := env["data"].(map[string]any)["token"].(string)
	if code, env := call("list", "cpanel bob:"+secret); code != 200 || len(env["data"].([]any)) != 1 {
		t.Fatalf("list by token: %d %v", code, env)
	}
	if out, code := runPasswd(t, "second-password\n", "--accounts", file, "bob"); code != 0 {
		t.Fatal(out)
	}
	if code, _ := call("list", basic("first-password")); code != http.StatusUnauthorized {
		t.Fatalf("old password: HTTP %d, want 401", code)
	}
	if code, _ := call("list", basic("second-password")); code != http.StatusOK {
		t.Fatalf("new password: HTTP %d, want 200", code)
	}
}
