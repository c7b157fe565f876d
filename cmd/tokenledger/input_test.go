package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"tokenledger/internal/natstest"
	"tokenledger/natsapi"
)

// runIn runs the program in-process, as main does, with env as its whole
// environment and stdin as its input; it returns stdout, the exit status
// and the error that main would print.
func runIn(t *testing.T, env map[string]string, stdin string, args ...string) (string, int, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), exitCode(err), err
}

// TestBadInputNeedsNoNode: input the contract calls bad is refused with
// exit status 2 and a one-line reason before any connection is tried; the
// NATS given here is unreachable, so a command that tried would exit 3.
func TestBadInputNeedsNoNode(t *testing.T) {
	env := map[string]string{"TOKENLEDGER_NATS": "nats://127.0.0.1:1", "TOKENLEDGER_DATA_DIR": t.TempDir()}
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		want  string // in the reason
	}{
		{"expiry at the largest int64", "", []string{"create", "--account", "bob", "--name", "x", "--expires-at", "9223372036854775807"}, "too far"},
		{"expiry a second after 9999", "", []string{"create", "--account", "bob", "--name", "x", "--expires-at", "253402300800"}, "too far"},
		{"expiry in the past", "", []string{"create", "--account", "bob", "--name", "x", "--expires-at", "1"}, "not in the future"},
		{"validate - with nothing on stdin", "", []string{"validate", "-"}, "no token on stdin"},
		{"validate - with a blank line", " \t\r\n", []string{"validate", "-"}, "no token on stdin"},
		{"validate - reads one line only", "\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", []string{"validate", "--account", "bob", "-"}, "no token on stdin"},
		{"validate with no token", "", []string{"validate"}, "or - to read it from stdin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, code, err := runIn(t, env, tt.stdin, tt.args...)
			if code != 2 {
				t.Fatalf("exit %d (%v), want 2", code, err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, tt.want) {
				t.Fatalf("reason %q: want one line that says %q", msg, tt.want)
			}
		})
	}
}

// TestValidateReadsTheTokenFromStdin: `validate -` sends the line on stdin,
// trimmed, as the token, so that it need never be in argv. A responder on a
// real NATS stands in for the service and says whether it got the token.
func TestValidateReadsTheTokenFromStdin(t *testing.T) {
	const secret = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	s := natstest.MustServer(t)
	nc := natstest.MustConnect(t, s)
	sub, err := nc.Subscribe("tokens.validate", func(m *nats.Msg) {
		var r natsapi.ValidateRequest
		rep := natsapi.ValidateReply{Reason: "unknown"}
		if json.Unmarshal(m.Data, &r) == nil && r.Token == secret && r.Account == "bob" {
			rep = natsapi.ValidateReply{Valid: true, Account: "bob", Name: "deploy", Status: "active"}
		}
		b, _ := json.Marshal(rep)
		m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOKENLEDGER_NATS": s.ClientURL(), "TOKENLEDGER_DATA_DIR": t.TempDir()}
	for _, tt := range []struct {
		name  string
		stdin string
		want  int
	}{
		{"a line", secret + "\n", 0},
		{"with spaces and a CRLF", "  " + secret + " \r\n", 0},
		{"without a newline", secret, 0},
		{"only the first line", secret + "\nsomething else\n", 0},
		{"another token", strings.ToLower(secret) + "\n", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, code, err := runIn(t, env, tt.stdin, "validate", "--account", "bob", "-")
			if code != tt.want {
				t.Fatalf("exit %d (%v), want %d; stdout %s", code, err, tt.want, out)
			}
			if want := `"valid":` + map[bool]string{true: "true", false: "false"}[tt.want == 0]; !strings.Contains(out, want) {
				t.Fatalf("stdout %q lacks %s", out, want)
			}
		})
	}
}
