package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/jetstream"
)

// The audit commands run in this process against an embedded NATS, with
// events written straight to the stream: what a node signed, and forgeries.

type auditFixture struct {
	t       *testing.T
	url     string
	js      natsjs.JetStream
	dataDir string // the node's: signing.nk and signing.pub
	node    *events.Signer
	heads   map[string]events.Hash
}

func mustAuditFixture(t *testing.T) *auditFixture {
	t.Helper()
	srv := natstest.MustServer(t)
	js, err := natsjs.New(natstest.MustConnect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	mustCreateStream(t, js)
	cfg := serveConfig{clientConfig: clientConfig{DataDir: t.TempDir()}}
	node, _, err := cfg.keys()
	if err != nil {
		t.Fatal(err)
	}
	return &auditFixture{t: t, url: srv.ClientURL(), js: js, dataDir: cfg.DataDir, node: node, heads: make(map[string]events.Hash)}
}

// bobCreated is a token.created event of account bob by actor.
func bobCreated(name string, actor events.Actor) events.Event {
	return events.Event{ID: events.NewID(), At: time.Now(), Account: "bob", TokenID: events.NewTokenID(), Actor: actor,
		Data: events.TokenCreated{Name: name, TokenHash: events.HashSecret(events.NewSecret()), FullAccess: true}}
}

var alice = events.Actor{Kind: events.ActorOperator, Name: "alice", Via: "nats:operator"}

// signed stores e as the node would: signed and chained.
func (f *auditFixture) signed(e events.Event) []byte {
	f.t.Helper()
	var err error
	if f.heads[e.Account], err = f.node.Sign(&e, f.heads[e.Account]); err != nil {
		f.t.Fatal(err)
	}
	return f.publish(e)
}

// forged stores e signed by signer (unsigned when nil), chained to the
// account's head, as anyone with publish rights could.
func (f *auditFixture) forged(e events.Event, signer *events.Signer) []byte {
	f.t.Helper()
	if signer != nil {
		if _, err := signer.Sign(&e, f.heads[e.Account]); err != nil {
			f.t.Fatal(err)
		}
	} else if f.heads[e.Account] != (events.Hash{}) {
		e.Prev = f.heads[e.Account].String()
	}
	return f.publish(e)
}

func (f *auditFixture) publish(e events.Event) []byte {
	f.t.Helper()
	raw, err := events.Encode(e)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.js.Publish(context.Background(), events.DefaultConfig().Subject(e.Account, e.TokenID.String()), raw); err != nil {
		f.t.Fatal(err)
	}
	return raw
}

// run runs the CLI in this process as a client of the fixture's NATS, in a
// data directory (the node's unless given), and returns what a user sees.
func (f *auditFixture) run(dataDir string, args ...string) (stdout, stderr string, code int) {
	f.t.Helper()
	return f.runTo(nil, dataDir, args...)
}

func (f *auditFixture) runTo(w *failingWriter, dataDir string, args ...string) (string, string, int) {
	f.t.Helper()
	if dataDir == "" {
		dataDir = f.dataDir
	}
	env := map[string]string{"TOKENLEDGER_NATS": f.url, "TOKENLEDGER_DATA_DIR": dataDir, "TOKENLEDGER_TZ": "UTC"}
	var out, errOut bytes.Buffer
	var stdout io.Writer = &out
	if w != nil {
		stdout = w
	}
	err := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), stdout, &errOut)
	if err != nil && !errors.Is(err, errSilent) {
		errOut.WriteString("tokenledger: " + oneLine(err.Error()) + "\n")
	}
	return out.String(), errOut.String(), exitCode(err)
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("the reader went away") }

// mustCreateStream makes the stream as a node would.
func mustCreateStream(t *testing.T, js natsjs.JetStream) {
	t.Helper()
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig(events.DefaultConfig())); err != nil {
		t.Fatal(err)
	}
}

func mustOtherSigner(t *testing.T) *events.Signer {
	t.Helper()
	seed, err := access.NewSeed()
	if err != nil {
		t.Fatal(err)
	}
	s, err := access.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustWrite(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestNodeWritesItsPublicKey: at every start a node leaves its public key in
// its data directory, whole, as a file that --trusted-keys reads.
func TestNodeWritesItsPublicKey(t *testing.T) {
	dir := t.TempDir()
	cfg := serveConfig{clientConfig: clientConfig{DataDir: dir}}
	signer, _, err := cfg.keys()
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "signing.pub")
	check := func(want string) {
		t.Helper()
		b, err := os.ReadFile(pub)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "# ") || strings.Count(string(b), "\n") != 2 {
			t.Fatalf("signing.pub is not a comment line and a key:\n%s", b)
		}
		keys, err := access.ReadTrustedKeys(pub)
		if err != nil || len(keys) != 1 || keys[0] != want {
			t.Fatalf("signing.pub reads as %v, %v; want [%s]", keys, err, want)
		}
		if st, _ := os.Stat(pub); st.Mode().Perm() != 0o644 {
			t.Fatalf("signing.pub has mode %v, want 0644", st.Mode().Perm())
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				t.Fatalf("a temporary file is left in the data directory: %s", e.Name())
			}
		}
	}
	check(signer.PublicKey())

	// A damaged file is whole again at the next start.
	os.WriteFile(pub, []byte("junk"), 0o644)
	if _, _, err := cfg.keys(); err != nil {
		t.Fatal(err)
	}
	check(signer.PublicKey())

	// With --signing-key, the file holds that key's public key.
	var seed bytes.Buffer
	if err := run(context.Background(), []string{"keygen"}, noEnv, strings.NewReader(""), &seed, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	cfg.SigningKey = mustWrite(t, "other.nk", seed.String())
	other, _, err := cfg.keys()
	if err != nil {
		t.Fatal(err)
	}
	check(other.PublicKey())
}

// TestKeygenPrintsATrustedKeysFile: what keygen prints on stderr, saved as
// it is, is a trusted-keys file; its seed in that place is refused without
// being repeated.
func TestKeygenPrintsATrustedKeysFile(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"keygen"}, noEnv, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	signer, err := access.NewSigner(stdout.Bytes())
	if err != nil {
		t.Fatalf("keygen's stdout is not a seed: %v", err)
	}
	keys, err := access.ReadTrustedKeys(mustWrite(t, "trusted", stderr.String()))
	if err != nil || len(keys) != 1 || keys[0] != signer.PublicKey() {
		t.Fatalf("keygen's stderr %q reads as %v, %v; want its public key", stderr.String(), keys, err)
	}

	f := mustAuditFixture(t)
	seed := strings.TrimSpace(stdout.String())
	out, errOut, code := f.run("", "verify", "--trusted-keys", mustWrite(t, "seed", stdout.String()))
	if code != 2 || !strings.Contains(errOut, "private seed") || strings.Contains(out+errOut, seed) || strings.Contains(out+errOut, seed[:10]) {
		t.Fatalf("verify with a seed as trusted keys: exit %d\n%s%s", code, out, errOut)
	}
}

// TestVerifyChecksSignersByDefault: verify trusts the node's key in the data
// directory, or the keys given; with neither it does not pass a history it
// could not check, unless asked to check signatures alone.
func TestVerifyChecksSignersByDefault(t *testing.T) {
	f := mustAuditFixture(t)
	f.signed(bobCreated("deploy", alice))
	f.signed(bobCreated("ci", alice))
	empty := t.TempDir()
	otherKeys := mustWrite(t, "other", string(access.FormatTrustedKeys("another node", mustOtherSigner(t).PublicKey())))
	for _, tt := range []struct {
		name    string
		dataDir string
		args    []string
		code    int
		out     []string
		errOut  string
	}{
		{"the node's key in its data directory", "", nil, 0,
			[]string{"checked 2 events in 1 accounts: 0 bad", "signers checked against 1 trusted key from " + filepath.Join(f.dataDir, "signing.pub")}, ""},
		{"no trusted keys", empty, nil, 1,
			[]string{"checked 2 events in 1 accounts: 0 bad", "note: signers were not checked: no trusted keys"}, "--signatures-only"},
		{"signatures only", empty, []string{"--signatures-only"}, 0,
			[]string{"checked 2 events in 1 accounts: 0 bad", "note: signers were not checked (--signatures-only)"}, ""},
		{"signatures only, though the node's key is there", "", []string{"--signatures-only"}, 0,
			[]string{"note: signers were not checked (--signatures-only)"}, ""},
		{"--trusted-keys replaces the node's key", "", []string{"--trusted-keys", otherKeys}, 1,
			[]string{"BAD seq 1 account bob: signed by an untrusted key", "checked 2 events in 1 accounts: 2 bad", "from " + otherKeys}, ""},
		{"--trusted-keys and --signatures-only", "", []string{"--trusted-keys", otherKeys, "--signatures-only"}, 2, nil, "not both"},
		{"a missing --trusted-keys file", "", []string{"--trusted-keys", filepath.Join(empty, "nope")}, 2, nil, "nope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := f.run(tt.dataDir, append([]string{"verify"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			for _, want := range tt.out {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			if !strings.Contains(errOut, tt.errOut) {
				t.Errorf("stderr lacks %q:\n%s", tt.errOut, errOut)
			}
		})
	}
}

// TestHistoryAndReplayMarkUntrustedEvents: a forgery shows as UNTRUSTED in
// history and is left out of replay, which says so; --json stays as stored.
func TestHistoryAndReplayMarkUntrustedEvents(t *testing.T) {
	f := mustAuditFixture(t)
	var raws [][]byte
	raws = append(raws, f.signed(bobCreated("deploy", alice)))
	raws = append(raws, f.forged(bobCreated("forged", events.Actor{Kind: events.ActorOperator, Name: "mallory"}), mustOtherSigner(t)))
	raws = append(raws, f.forged(bobCreated("unsigned", events.Actor{Kind: events.ActorOperator, Name: "mallory"}), nil))

	out, errOut, code := f.run("", "history")
	if code != 0 {
		t.Fatalf("history: exit %d\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("history: %d lines, want 4:\n%s", len(lines), out)
	}
	for i, want := range []string{"token.created", "UNTRUSTED token.created", "UNTRUSTED token.created"} {
		fields := strings.Fields(lines[i+1])
		typ := fields[1]
		if typ == "UNTRUSTED" {
			typ += " " + fields[2]
		}
		if typ != want {
			t.Errorf("row %d has TYPE %q, want %q:\n%s", i+1, typ, want, out)
		}
	}
	if !strings.HasSuffix(lines[1], "operator:alice via nats:operator") {
		t.Errorf("the ACTOR column does not show who sent the command:\n%s", out)
	}
	for _, want := range []string{"history: 2 events are UNTRUSTED", "1 signed by an untrusted key", "1 unsigned event"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("history's stderr lacks %q:\n%s", want, errOut)
		}
	}

	out, _, code = f.run("", "history", "--csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(rows) != 4 {
		t.Fatalf("history --csv: exit %d, %v:\n%s", code, err, out)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for i, want := range []string{"true", "false", "false"} {
		if have := rows[i+1][col["trusted"]]; have != want {
			t.Errorf("csv row %d: trusted %q, want %q", i+1, have, want)
		}
	}
	if rows[1][col["actor_name"]] != "alice" || rows[1][col["actor_via"]] != "nats:operator" {
		t.Errorf("csv: the actor is %q via %q", rows[1][col["actor_name"]], rows[1][col["actor_via"]])
	}
	if !strings.Contains(rows[3][col["problem"]], "unsigned") {
		t.Errorf("csv: the unsigned event's problem is %q", rows[3][col["problem"]])
	}

	out, errOut, code = f.run("", "history", "--json")
	if want := string(bytes.Join(raws, []byte("\n"))) + "\n"; code != 0 || out != want || errOut != "" {
		t.Fatalf("history --json: exit %d, stderr %q\n%s\nwant exactly as stored:\n%s", code, errOut, out, want)
	}

	// Without trusted keys, nothing is presented as genuine.
	out, errOut, _ = f.run(t.TempDir(), "history")
	if n := strings.Count(out, "UNTRUSTED token.created"); n != 3 || !strings.Contains(errOut, "no trusted keys") {
		t.Fatalf("history without trusted keys: %d rows UNTRUSTED, want 3:\n%s%s", n, out, errOut)
	}

	now := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	out, errOut, code = f.run("", "replay", "--as-of", now, "--account", "bob")
	if code != 0 || !strings.Contains(out, "deploy") || strings.Contains(out, "forged") || strings.Contains(out, "unsigned") {
		t.Fatalf("replay: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "replay: skipped 2 untrusted events") || !strings.Contains(errOut, "1 unsigned event") {
		t.Fatalf("replay does not say what it skipped and why:\n%s", errOut)
	}
	out, errOut, code = f.run(t.TempDir(), "replay", "--as-of", now, "--account", "bob")
	if code != 0 || strings.Contains(out, "deploy") || !strings.Contains(errOut, "skipped 3 untrusted events") || !strings.Contains(errOut, "no trusted keys") {
		t.Fatalf("replay without trusted keys: exit %d\n%s%s", code, out, errOut)
	}
}

// TestHistoryEscapesWhatItPrints: what an event holds reaches the terminal or
// the spreadsheet escaped, whoever signed it.
func TestHistoryEscapesWhatItPrints(t *testing.T) {
	f := mustAuditFixture(t)
	f.signed(bobCreated("deploy", events.Actor{Kind: events.ActorOperator, Name: "mal\x1b[31mlory\r\nroot", Remote: "192.0.2.1\a"}))
	evil := bobCreated("forged", events.Actor{Kind: "operator\x1b]0;owned\a", Name: "eve\u202e"})
	evil.Signer, evil.Sig = "N\x1b[2J", "c2ln"
	f.publish(evil)
	for _, args := range [][]string{{"history"}, {"history", "--csv"}, {"verify"}} {
		out, errOut, _ := f.run("", args...)
		for i, c := range []byte(out + errOut) {
			if c < 0x20 && c != '\n' || c == 0x7f {
				t.Fatalf("%s prints the raw byte %#x at %d:\n%q", args, c, i, out+errOut)
			}
		}
		if strings.Contains(out+errOut, "\u202e") {
			t.Fatalf("%s prints a right-to-left override:\n%q", args, out)
		}
		if args[0] == "history" && !strings.Contains(out, `mal\x1b[31mlory\r\nroot`) {
			t.Fatalf("%s does not show the escaped actor:\n%s", args, out)
		}
	}
}

// TestAuditCommandsLeaveNoConsumer: each read deletes its consumer on the
// stream when it ends, also when its output fails.
func TestAuditCommandsLeaveNoConsumer(t *testing.T) {
	f := mustAuditFixture(t)
	f.signed(bobCreated("deploy", alice))
	f.signed(bobCreated("ci", alice))
	consumers := func() int {
		s, err := f.js.Stream(context.Background(), "TOKENS")
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers
	}
	before := consumers()
	asOf := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	for _, args := range [][]string{
		{"history"}, {"history", "--csv"}, {"history", "--json"}, {"history", "--account", "bob", "--name", "ci"},
		{"verify"}, {"verify", "--account", "bob"}, {"replay", "--as-of", asOf}, {"replay", "--as-of", asOf, "--account", "bob"},
	} {
		if _, errOut, code := f.run("", args...); code != 0 {
			t.Fatalf("%s: exit %d\n%s", args, code, errOut)
		}
		natstest.Eventually(t, "the consumers of "+strings.Join(args, " ")+" to go", func() bool { return consumers() == before })
	}
	if _, _, code := f.runTo(&failingWriter{}, "", "history", "--json"); code == 0 {
		t.Fatal("history --json to a failing output succeeded")
	}
	natstest.Eventually(t, "the consumer of a failed history to go", func() bool { return consumers() == before })
}
