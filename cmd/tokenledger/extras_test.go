package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"tokenledger/access"
	"tokenledger/internal/natstest"
)

// TestCLIBeyondCPanel: allow-lists, rotation, last use and the lifetime
// policy, as a user drives them from the command line.
func TestCLIBeyondCPanel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	node := cliServe(t, t.TempDir(), "--max-lifetime", "8760h", "--used-every", "1s")
	url := node.natsURL
	expires := time.Now().AddDate(0, 1, 0).Format(time.DateOnly)

	if _, errOut, code := runCLI(t, url, "create", "--account", "bob", "--name", "forever"); code != 2 || !strings.Contains(errOut, "must expire within") {
		t.Fatalf("create without expiry under --max-lifetime: exit %d, %s", code, errOut)
	}
	if _, _, code := runCLI(t, url, "create", "--account", "bob", "--name", "x", "--expires", expires, "--allow-ip", "not-an-ip"); code != 2 {
		t.Fatalf("bad --allow-ip: exit %d, want 2", code)
	}
	secret := strings.TrimSpace(mustCLI(t, url, "create", "--account", "bob", "--name", "ci", "--expires", expires,
		"--allow-ip", "192.0.2.0/24", "--allow-ip", "2001:db8::1"))
	for _, tt := range []struct {
		ip   string
		want int
	}{{"192.0.2.50", 0}, {"2001:db8::1", 0}, {"198.51.100.1", 1}, {"", 1}} {
		args := []string{"validate", secret}
		if tt.ip != "" {
			args = []string{"validate", "--ip", tt.ip, secret}
		}
		out, _, code := runCLI(t, url, args...)
		if code != tt.want || (tt.want == 1 && !strings.Contains(out, "ip_denied")) {
			t.Fatalf("validate from %q: exit %d, %s", tt.ip, code, out)
		}
	}
	mustCLI(t, url, "set-allowed-ips", "--account", "bob", "--name", "ci")
	mustCLI(t, url, "validate", secret) // any address now

	// The validation above is recorded as the token's last use, off the hot path.
	natstest.Eventually(t, "last_used in list --json", func() bool {
		l := listJSON(t, url, "bob")
		return len(l) == 1 && l[0].LastUsed != nil
	})

	var rotated struct {
		Token   string `json:"token"`
		TokenID string `json:"token_id"`
		Name    string `json:"name"`
	}
	out := mustCLI(t, url, "rotate", "--account", "bob", "--name", "ci", "--grace", "1h", "--json")
	if err := json.Unmarshal([]byte(out), &rotated); err != nil || rotated.Name != "ci" || rotated.Token == secret {
		t.Fatalf("rotate: %s %v", out, err)
	}
	mustCLI(t, url, "validate", rotated.Token)
	mustCLI(t, url, "validate", secret) // within the grace period
	third := strings.TrimSpace(mustCLI(t, url, "rotate", "--account", "bob", "--name", "ci"))
	if out, _, code := runCLI(t, url, "validate", rotated.Token); code != 1 || !strings.Contains(out, "revoked") {
		t.Fatalf("secret rotated away without grace: exit %d, %s", code, out)
	}
	mustCLI(t, url, "validate", third)
	if l := listJSON(t, url, "bob"); len(l) != 1 || l[0].TokenID != rotated.TokenID {
		t.Fatalf("list after rotations: %+v", l)
	}
	history := mustCLI(t, url, "history", "--account", "bob")
	// Every event names its token in the NAME column.
	for _, line := range strings.Split(strings.TrimSpace(history), "\n")[1:] {
		if f := strings.Fields(line); len(f) < 5 || f[3] == "" || strings.HasPrefix(f[3], "operator:") {
			t.Fatalf("a history row without its token's name: %q\n%s", line, history)
		}
	}
	// Uses are kept beside the stream, not in it (TOKENS_USED): history has none.
	for _, want := range []string{"token.allowed_ips_set", "token.rotated"} {
		if !strings.Contains(history, want) {
			t.Fatalf("history lacks %s:\n%s", want, history)
		}
	}
	if strings.Contains(history, "token.used") {
		t.Fatalf("a use went into the stream:\n%s", history)
	}
	if out := mustCLI(t, url, "verify"); !strings.Contains(out, " 0 bad") {
		t.Fatalf("verify: %s", out)
	}
	// Refused validations over NATS count as failed credentials, by source.
	resp, err := http.Get(node.httpURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`tokenledger_auth_failures_total{kind="validation"} 3`, `source="198.51.100.1"} 1`,
		"tokenledger_staleness_seconds ", "tokenledger_max_staleness_seconds 5\n"} {
		if !strings.Contains(string(metrics), want) {
			t.Fatalf("/metrics lacks %s:\n%s", want, metrics)
		}
	}
}

// TestNoticesOverNATS: a token inside the warning window gets one notice.
func TestNoticesOverNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	node := cliServe(t, t.TempDir(), "--notice-every", "1s")
	nc := node.connect(t, access.Operator)
	notes, err := nc.SubscribeSync("tokens.notices.expiring.bob")
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	mustCLI(t, node.natsURL, "create", "--account", "bob", "--name", "soon", "--expires", time.Now().AddDate(0, 0, 2).Format(time.DateOnly))
	m, err := notes.NextMsg(60 * time.Second)
	if err != nil {
		t.Fatalf("no expiring notice: %v", err)
	}
	if !strings.Contains(string(m.Data), `"name":"soon"`) || !strings.Contains(string(m.Data), `"status":"expiring"`) {
		t.Fatalf("notice %s", m.Data)
	}
}
