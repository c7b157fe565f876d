package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"tokenledger/access"
	"tokenledger/internal/nodetest"
	"tokenledger/natsapi"
)

// The CLI as a user runs it: a built binary, a real `serve` process with its
// embedded NATS on random ports, and exit statuses read from the processes.

var (
	cliBinaryOnce sync.Once
	cliBinaryPath string
	cliBinaryErr  error
)

func cliBinary(t *testing.T) string {
	t.Helper()
	cliBinaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tokenledger-bin")
		if err != nil {
			cliBinaryErr = err
			return
		}
		cliBinaryPath = filepath.Join(dir, "tokenledger")
		out, err := exec.Command("go", "build", "-o", cliBinaryPath, ".").CombinedOutput()
		if err != nil {
			cliBinaryErr = errors.New(string(out))
		}
	})
	if cliBinaryErr != nil {
		t.Fatal(cliBinaryErr)
	}
	return cliBinaryPath
}

// cliNode is a running `tokenledger serve` process.
type cliNode struct {
	cmd     *exec.Cmd
	dataDir string
	natsURL string
	httpURL string
	stderr  *nodetest.Buffer
	done    chan struct{}
}

var readyLine = regexp.MustCompile(`^tokenledger serving: nats=(\S+) http=(\S+)$`)

// cliServe starts a node on dataDir and waits until it says it is serving.
func cliServe(t *testing.T, dataDir string, extra ...string) *cliNode {
	t.Helper()
	args := append([]string{"serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(cliBinary(t), args...)
	cmd.Env = append(os.Environ(), "TOKENLEDGER_NATS=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n := &cliNode{cmd: cmd, dataDir: dataDir, stderr: &nodetest.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = n.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	go func() { cmd.Wait(); close(n.done) }()
	t.Cleanup(func() { n.stop(t) })
	select {
	case line, ok := <-lines:
		m := readyLine.FindStringSubmatch(line)
		if !ok || m == nil {
			t.Fatalf("serve did not start: %q\n%s", line, n.stderr)
		}
		n.natsURL, n.httpURL = m[1], m[2]
		dataDirs.Store(n.natsURL, dataDir)
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not say it was serving within a minute\n%s", n.stderr)
	}
	go func() {
		for range lines {
		}
	}()
	return n
}

// dataDirs maps each node's NATS URL to its data directory, where runCLI
// finds the operator's credentials as a user in that directory would.
var dataDirs sync.Map

// connect connects to the node's embedded NATS as role, with the identity
// the node made in its data directory.
func (n *cliNode) connect(t *testing.T, role string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	id, err := access.ReadIdentity(access.Path(n.dataDir, role))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(n.natsURL, append(id.Options(), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// stop sends SIGTERM and waits for a clean exit.
func (n *cliNode) stop(t *testing.T) {
	select {
	case <-n.done:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		if code := n.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("serve exited %d after SIGTERM\n%s", code, n.stderr)
		}
	case <-time.After(60 * time.Second):
		n.cmd.Process.Kill()
		t.Errorf("serve did not stop within a minute of SIGTERM")
	}
}

// runCLI runs the binary as a client of url and returns stdout, stderr and the
// exit status.
func runCLI(t *testing.T, url string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(cliBinary(t), args...)
	cmd.Env = append(os.Environ(), "TOKENLEDGER_NATS="+url, "TZ=UTC")
	if dir, ok := dataDirs.Load(url); ok {
		cmd.Env = append(cmd.Env, "TOKENLEDGER_DATA_DIR="+dir.(string))
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

func mustCLI(t *testing.T, url string, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, url, args...)
	if code != 0 {
		t.Fatalf("tokenledger %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// listed is a row of list --json, as natsapi writes it.
type listed = natsapi.TokenInfo

func listJSON(t *testing.T, url, account string) []listed {
	t.Helper()
	var out []listed
	if err := json.Unmarshal([]byte(mustCLI(t, url, "list", "--account", account, "--json")), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCLIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	data := t.TempDir()
	node := cliServe(t, data)
	url := node.natsURL

	secret := strings.TrimSpace(mustCLI(t, url, "create", "--account", "bob", "--name", "deploy"))
	if !regexp.MustCompile(`^[A-Z0-9]{32}$`).MatchString(secret) {
		t.Fatalf("create printed %q, want the secret alone", secret)
	}
	var made struct {
		Name          string `json:"name"`
		TokenID       string `json:"token_id"`
		Token         string `json:"token"`
		CreateTime    int64  `json:"create_time"`
		ExpiresAt     *int64 `json:"expires_at"`
		HasFullAccess int    `json:"has_full_access"`
	}
	expires := time.Now().UTC().AddDate(0, 0, 3).Format(time.DateOnly)
	out := mustCLI(t, url, "create", "--account", "bob", "--name", "ci", "--expires", expires, "--json")
	if err := json.Unmarshal([]byte(out), &made); err != nil {
		t.Fatal(err)
	}
	wantExp, _ := time.ParseInLocation("2006-01-02 15:04:05", expires+" 23:59:59", time.UTC)
	if made.Name != "ci" || len(made.Token) != 32 || made.HasFullAccess != 1 || made.ExpiresAt == nil || *made.ExpiresAt != wantExp.Unix() || made.CreateTime == 0 {
		t.Fatalf("create --json: %s", out)
	}

	table := mustCLI(t, url, "list", "--account", "bob")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	// The contract's four columns first: NAME CREATED EXPIRES STATUS.
	status := func(line string) string {
		if f := strings.Fields(line); len(f) >= 4 {
			return f[3]
		}
		return ""
	}
	if len(lines) != 3 || status(lines[0]) != "STATUS" || !strings.Contains(lines[0], "CREATED") ||
		!strings.HasPrefix(lines[1], "deploy ") || !strings.Contains(lines[1], "never") || status(lines[1]) != "active" ||
		!strings.HasPrefix(lines[2], "ci ") || status(lines[2]) != "expiring" {
		t.Fatalf("list:\n%s", table)
	}
	if strings.Contains(table, secret) || strings.Contains(table, made.Token) {
		t.Fatal("list shows a secret")
	}

	for _, tt := range []struct {
		name string
		args []string
		want int
	}{
		{"duplicate name", []string{"create", "--account", "bob", "--name", "deploy"}, 1},
		{"bad account", []string{"create", "--account", "Bob", "--name", "x"}, 2},
		{"account with a wildcard", []string{"list", "--account", "bob.>"}, 2},
		{"51-character name", []string{"create", "--account", "bob", "--name", strings.Repeat("n", 51)}, 2},
		{"past expiry", []string{"create", "--account", "bob", "--name", "x", "--expires", "2020-01-01"}, 2},
		{"both expiries", []string{"create", "--account", "bob", "--name", "x", "--expires", "2099-01-01", "--expires-at", "4070908800"}, 2},
		{"rename to the same name", []string{"rename", "--account", "bob", "--name", "ci", "--new-name", "ci"}, 2},
		{"rename of an unknown token", []string{"rename", "--account", "bob", "--name", "nope", "--new-name", "x"}, 1},
		{"rename onto a live name", []string{"rename", "--account", "bob", "--name", "ci", "--new-name", "deploy"}, 1},
		{"revoke with an unknown name", []string{"revoke", "--account", "bob", "--name", "ci", "--name", "nope"}, 1},
		{"unknown command", []string{"frobnicate"}, 2},
		{"unknown flag", []string{"list", "--acount", "bob"}, 2},
		{"validate garbage", []string{"validate", "not-a-token"}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, url, tt.args...)
			if code != tt.want {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.want, errOut)
			}
			if code == 2 && strings.Count(strings.TrimSpace(errOut), "\n") > 0 && !strings.Contains(errOut, "Usage") {
				t.Fatalf("bad input wants a one-line reason, got:\n%s", errOut)
			}
		})
	}
	if have := listJSON(t, url, "bob"); len(have) != 2 {
		t.Fatalf("refused commands changed the table: %+v", have)
	}

	mustCLI(t, url, "rename", "--account", "bob", "--name", "ci", "--new-name", "ci-2")
	mustCLI(t, url, "create", "--account", "bob", "--name", "tmp")
	mustCLI(t, url, "revoke", "--account", "bob", "--name", "tmp", "--name", "deploy")
	if out := mustCLI(t, url, "validate", "--account", "bob", made.Token); !strings.Contains(out, `"valid":true`) || !strings.Contains(out, `"name":"ci-2"`) {
		t.Fatalf("validate: %s", out)
	}
	if out, _, code := runCLI(t, url, "validate", secret); code != 1 || !strings.Contains(out, `"reason":"revoked"`) {
		t.Fatalf("validate a revoked token: exit %d, %s", code, out)
	}
	before := listJSON(t, url, "bob")
	if len(before) != 1 || before[0].Name != "ci-2" || before[0].TokenID != made.TokenID {
		t.Fatalf("list: %+v", before)
	}

	history := mustCLI(t, url, "history", "--account", "bob")
	for _, want := range []string{"token.created", "token.renamed", "ci->ci-2", "token.revoked", "operator:"} {
		if !strings.Contains(history, want) {
			t.Fatalf("history lacks %q:\n%s", want, history)
		}
	}
	raw := mustCLI(t, url, "history", "--json")
	// The valid validation above may by now be recorded as a token.used event.
	if n := strings.Count(raw, "\n") - strings.Count(raw, `"type":"token.used"`); n != 6 {
		t.Fatalf("history --json: %d lines, want 6:\n%s", n, raw)
	}
	if strings.Contains(raw, secret) || strings.Contains(raw, made.Token) {
		t.Fatal("the stream holds a secret")
	}

	// Restart: the same table, rebuilt from the stream on disk.
	node.stop(t)
	if _, errOut, code := runCLI(t, url, "list", "--account", "bob"); code != 3 || !strings.Contains(errOut, "tokenledger serve") {
		t.Fatalf("with no node: exit %d, %s; want 3 and what to start", code, errOut)
	}
	node = cliServe(t, data)
	after := listJSON(t, node.natsURL, "bob")
	if len(after) != len(before) || after[0].TokenID != before[0].TokenID || after[0].Name != before[0].Name ||
		after[0].CreateTime != before[0].CreateTime || *after[0].ExpiresAt != *before[0].ExpiresAt || after[0].Status != before[0].Status {
		t.Fatalf("after restart %+v, want %+v", after, before)
	}
	if out := mustCLI(t, node.natsURL, "validate", made.Token); !strings.Contains(out, `"valid":true`) {
		t.Fatalf("validate after restart: %s", out)
	}
}

func TestCLIWithoutNATS(t *testing.T) {
	start := time.Now()
	_, errOut, code := runCLI(t, "nats://127.0.0.1:1", "list", "--account", "bob")
	if code != 3 || !strings.Contains(errOut, "tokenledger serve") {
		t.Fatalf("exit %d, %q; want 3 and a message that says what to start", code, errOut)
	}
	t.Logf("failed in %v", time.Since(start))
}

func TestRunUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), nil, func(string) string { return "" }, nil, &stdout, &stderr)
	if exitCode(err) != 2 || !strings.Contains(stderr.String(), "usage: tokenledger") {
		t.Fatalf("no arguments: %v, %q", err, stderr.String())
	}
}
