package main

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"tokenledger/internal/nodetest"
)

// commands is every command of the program, as `tokenledger help` lists them.
var allCommands = []string{"serve", "create", "list", "rename", "revoke", "rotate", "set-allowed-ips", "validate",
	"history", "replay", "verify", "keygen", "creds", "passwd"}

// runEnv runs the binary with env added to the test's environment, and
// returns stdout, stderr and the exit status.
func runEnv(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(cliBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

var flagLine = regexp.MustCompile(`^  -([a-z-]+)`)

// -h and --help show a command's flags on stdout and exit 0, and every flag
// says which environment variable stands in for it.
func TestHelpShowsEveryFlagsVariable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, command := range allCommands {
		for _, help := range []string{"-h", "--help"} {
			t.Run(command+" "+help, func(t *testing.T) {
				out, errOut, code := runEnv(t, nil, command, help)
				if code != 0 || errOut != "" || !strings.HasPrefix(out, "usage: tokenledger "+command) {
					t.Fatalf("exit %d, stdout %q, stderr %q; want the usage on stdout and 0", code, out, errOut)
				}
				lines := strings.Split(out, "\n")
				flags := 0
				for i, line := range lines {
					m := flagLine.FindStringSubmatch(line)
					if m == nil {
						continue
					}
					flags++
					want := "(env TOKENLEDGER_" + strings.ToUpper(strings.ReplaceAll(m[1], "-", "_")) + ")"
					switch {
					case arguments[m[1]] || command == "serve" && m[1] == "admin": // what one command is about; one run on purpose
						want = "(command line only)"
					case command == "serve" && slices.Contains([]string{"nats", "nkey", "nats-creds", "nats-user", "nats-password"}, m[1]):
						want = "(env TOKENLEDGER_SERVE_" + strings.ToUpper(strings.ReplaceAll(m[1], "-", "_")) + ")"
					}
					if i+1 == len(lines) || !strings.Contains(lines[i+1], want) {
						t.Errorf("--%s does not name %s:\n%s\n%s", m[1], want, line, lines[i+1])
					}
				}
				if (flags == 0) != (command == "keygen") {
					t.Errorf("%d flags shown:\n%s", flags, out)
				}
			})
		}
	}
}

// A flag that no command has, or a bad value, is one line on stderr that
// says where to look, and exit status 2; not the whole usage.
func TestUnknownFlagIsOneLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, command := range allCommands {
		t.Run(command, func(t *testing.T) {
			out, errOut, code := runEnv(t, nil, command, "--no-such-flag")
			if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 ||
				!strings.Contains(errOut, "-no-such-flag") || !strings.Contains(errOut, "run 'tokenledger "+command+" -h'") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and one line with the hint", code, out, errOut)
			}
		})
	}
	_, errOut, code := runEnv(t, []string{"TOKENLEDGER_MAX_STALENESS=soon"}, "serve")
	if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, `TOKENLEDGER_MAX_STALENESS="soon" is not a valid --max-staleness`) {
		t.Fatalf("a bad value in the environment: exit %d, %q", code, errOut)
	}
}

// Settings of client commands come from the environment too, and the
// command line wins; a command's arguments never do, so that one exported
// for an earlier command cannot silently apply to the next.
func TestFlagsFromTheEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	node := cliServe(t, t.TempDir())
	url := node.natsURL
	for _, name := range []string{"a", "b", "c"} {
		mustCLI(t, url, "create", "--account", "bob", "--name", name)
	}
	// The connection and credentials from the environment alone.
	env := []string{"TOKENLEDGER_NATS=" + url, "TOKENLEDGER_DATA_DIR=" + node.dataDir}
	if out, errOut, code := runEnv(t, env, "list", "--account", "bob", "--json"); code != 0 || strings.Count(out, `"name"`) != 3 {
		t.Fatalf("list with the connection from the environment: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := runEnv(t, append(env, "TOKENLEDGER_NATS=nats://127.0.0.1:1"), "list", "--account", "bob", "--nats", url); code != 0 || !strings.Contains(out, "NAME") {
		t.Fatalf("--nats on the command line over TOKENLEDGER_NATS: exit %d\n%s%s", code, out, errOut)
	}
	// Arguments are not taken from the environment.
	if _, errOut, code := runEnv(t, append(env, "TOKENLEDGER_ACCOUNT=bob", "TOKENLEDGER_NAME=a"), "revoke"); code != 2 {
		t.Fatalf("revoke with TOKENLEDGER_ACCOUNT and TOKENLEDGER_NAME set: exit %d, want 2 (no account given)\n%s", code, errOut)
	}
	if have := listJSON(t, url, "bob"); len(have) != 3 {
		t.Fatalf("a revoke took its arguments from the environment: %+v", have)
	}
}

// serveWith starts `serve` with env added to the test's environment and
// waits for it to say where it serves, or to end.
func serveWith(t *testing.T, env []string, args ...string) (*cliNode, string, bool) {
	t.Helper()
	cmd := exec.Command(cliBinary(t), append([]string{"serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n := &cliNode{cmd: cmd, stderr: &nodetest.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = n.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Scan()
		first <- sc.Text()
		for sc.Scan() {
		}
	}()
	go func() { cmd.Wait(); close(n.done) }()
	t.Cleanup(func() { n.stop(t) })
	select {
	case line := <-first:
		if m := readyLine.FindStringSubmatch(line); m != nil {
			n.natsURL, n.httpURL = m[1], m[2]
			return n, n.stderr.String(), true
		}
		<-n.done
		return n, n.stderr.String(), false
	case <-time.After(60 * time.Second):
		t.Fatalf("serve neither served nor ended within a minute\n%s", n.stderr)
	}
	return nil, "", false
}

// `serve` joins a NATS only when told so by its own setting: the clients'
// TOKENLEDGER_NATS, exported for the CLI, leaves `make run` an embedded
// node, and says so; TOKENLEDGER_SERVE_NATS joins.
func TestServeHasItsOwnJoinSetting(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const nowhere = "nats://127.0.0.1:1"
	node, stderr, ok := serveWith(t, []string{"TOKENLEDGER_NATS=" + nowhere, "TOKENLEDGER_SERVE_NATS=", "TOKENLEDGER_DATA_DIR=" + t.TempDir()})
	if !ok || node.natsURL == nowhere {
		t.Fatalf("with the clients' TOKENLEDGER_NATS set, serve did not start its own NATS:\n%s", stderr)
	}
	if !strings.Contains(stderr, "TOKENLEDGER_NATS is the clients' setting and serve ignores it") {
		t.Errorf("serve did not say that it ignores TOKENLEDGER_NATS:\n%s", stderr)
	}

	_, stderr, ok = serveWith(t, []string{"TOKENLEDGER_NATS=", "TOKENLEDGER_SERVE_NATS=" + nowhere, "TOKENLEDGER_DATA_DIR=" + t.TempDir()})
	if ok || !strings.Contains(stderr, "joins that NATS") || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Fatalf("with TOKENLEDGER_SERVE_NATS set, serve did not try to join it:\n%s", stderr)
	}
}
