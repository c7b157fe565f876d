package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/internal/attacktest"
	"tokenledger/internal/natstest"
)

// The attacks of a shared hosting server's customers, played against a real
// `serve` with its embedded NATS as `make run` starts it.
func TestAttacksOnEmbeddedNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	node := cliServe(t, t.TempDir())
	attacktest.Run(t, attacktest.Target{
		Connect: func(role string, opts ...nats.Option) (*nats.Conn, error) {
			if role != "" {
				id, err := access.ReadIdentity(access.Path(node.dataDir, role))
				if err != nil {
					return nil, err
				}
				opts = append(id.Options(), opts...)
			}
			return nats.Connect(node.natsURL, opts...)
		},
		Roles:  access.Roles,
		Serves: []string{access.Service},
	})
}

// deployPasswords are the secrets deploy/nats/nats.conf takes from the
// environment.
var deployPasswords = map[string]string{
	"NATS_ROUTE_PASSWORD":     "route-secret",
	"NATS_NODE_PASSWORD":      "node-secret",
	"NATS_OPERATOR_PASSWORD":  "operator-secret",
	"NATS_VALIDATOR_PASSWORD": "validator-secret",
	"NATS_AUDITOR_PASSWORD":   "auditor-secret",
	"NATS_SYS_PASSWORD":       "sys-secret",
}

// mustDeployCluster is a real three-server cluster configured by the
// repository's deploy/nats/nats.conf, on loopback ports.
func mustDeployCluster(t *testing.T) *natstest.Cluster {
	t.Helper()
	for k, v := range deployPasswords {
		t.Setenv(k, v)
	}
	t.Setenv("NATS_SERVER_NAME", "n")
	conf, err := filepath.Abs(filepath.Join("..", "..", "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return natstest.MustClusterFrom(t, func() (*server.Options, error) { return server.ProcessConfigFile(conf) })
}

// The same attacks against the cluster layout of deploy/, with a node joined
// to it as deploy/README.md says.
func TestAttacksOnDeployCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-server cluster")
	}
	c := mustDeployCluster(t)
	n := startNode(t, "n1", c.URLs(), mustSigningKey(t), t.TempDir(), "--nats-user", "node", "--nats-password", deployPasswords["NATS_NODE_PASSWORD"])
	n.serving(t)
	attacktest.Run(t, attacktest.Target{
		Connect: func(role string, opts ...nats.Option) (*nats.Conn, error) {
			if role != "" {
				pw := deployPasswords["NATS_"+strings.ToUpper(role)+"_PASSWORD"]
				opts = append([]nats.Option{nats.UserInfo(role, pw), nats.CustomInboxPrefix(access.InboxPrefix(role))}, opts...)
			}
			return nats.Connect(c.URLs(), opts...)
		},
		Roles:  []string{access.Node, access.Operator, access.Validator, access.Auditor},
		Serves: []string{access.Node},
	})
}

// The deploy layout and the embedded server give each role the same rights:
// one rule set, written twice (Go for the embedded server, the configuration
// for a cluster), held together here. A cluster's node user is the embedded
// node and its service identity in one.
func TestDeployPermissionsMatchEmbedded(t *testing.T) {
	for k, v := range deployPasswords {
		t.Setenv(k, v)
	}
	t.Setenv("NATS_SERVER_NAME", "n")
	o, err := server.ProcessConfigFile(filepath.Join("..", "..", "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[string]*server.Permissions)
	for _, u := range o.Users {
		have[u.Username] = u.Permissions
	}
	cfg := (&clientConfig{Stream: "TOKENS", Prefix: "tokens"}).streamConfig()
	for _, role := range []string{access.Node, access.Operator, access.Validator, access.Auditor} {
		want := access.Permissions(role, cfg)
		if role == access.Node {
			svc := access.Permissions(access.Service, cfg)
			want.Publish.Allow = append(want.Publish.Allow, svc.Publish.Allow...)
			want.Subscribe.Allow = append(want.Subscribe.Allow, svc.Subscribe.Allow...)
		}
		got := have[role]
		if got == nil {
			t.Errorf("deploy/nats/nats.conf has no user %s", role)
			continue
		}
		for _, c := range []struct {
			what       string
			have, want []string
		}{
			{"publish allow", got.Publish.Allow, want.Publish.Allow},
			{"publish deny", denyOf(got.Publish), denyOf(want.Publish)},
			{"subscribe allow", got.Subscribe.Allow, want.Subscribe.Allow},
			{"subscribe deny", denyOf(got.Subscribe), denyOf(want.Subscribe)},
		} {
			if !sameSet(c.have, c.want) {
				t.Errorf("%s %s:\n deploy   %q\n embedded %q", role, c.what, c.have, c.want)
			}
		}
	}
}

func denyOf(p *server.SubjectPermission) []string {
	if p == nil {
		return nil
	}
	return p.Deny
}

func sameSet(a, b []string) bool {
	seen := make(map[string]int)
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// A second Unix user on the machine, as every customer of a shared server
// is: it can neither use the node's credentials nor connect without them.
func TestSecondUnixUserCannotConnect(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a command as another user (CI runs as root)")
	}
	other, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(other.Uid)
	gid, _ := strconv.Atoi(other.Gid)
	// The node's data directory sits where anyone may look, as ./data of a
	// shared working directory would.
	open := t.TempDir()
	for _, dir := range []string{filepath.Dir(open), open} { // t.TempDir makes both 0700
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(open, "data")
	node := cliServe(t, data)
	// The binary where the other user may run it.
	bin := filepath.Join(open, "tokenledger")
	b, err := os.ReadFile(cliBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{data, access.Dir(data)} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %o, want 0700", path, st.Mode().Perm())
		}
	}
	for _, role := range access.Roles {
		st, err := os.Stat(access.Path(data, role))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 0600", access.Path(data, role), st.Mode().Perm())
		}
	}
	asOther := func(env []string, args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = open
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + open, "TOKENLEDGER_NATS=" + node.natsURL}, env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("running as nobody: %v", err)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"the data directory's operator", nil, []string{"list", "--account", "bob"}, "only the user who runs the node"},
		{"a named seed file", []string{"TOKENLEDGER_NKEY=" + access.Path(data, access.Validator)}, []string{"validate", "XXXX"}, "only the user who runs the node"},
		{"no credentials", []string{"TOKENLEDGER_DATA_DIR=" + open}, []string{"list", "--account", "bob"}, "refused no credentials"},
		{"creds", nil, []string{"creds", "operator"}, "cannot read"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, code := asOther(c.env, c.args...)
			if code == 0 || !strings.Contains(out, c.want) {
				t.Fatalf("as nobody, tokenledger %s: exit %d, %q; want a refusal saying %q", strings.Join(c.args, " "), code, out, c.want)
			}
		})
	}
	// And for the user who started the node, the README's commands work as shown.
	if out := mustCLI(t, node.natsURL, "create", "--account", "bob", "--name", "mine"); len(strings.TrimSpace(out)) != 32 {
		t.Fatalf("create as the node's user: %q", out)
	}
}

// The administrator's one way to change the stream: a run with --admin lets
// the admin identity in; the next run without it refuses that identity.
func TestAdminStepIsExplicit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	data := t.TempDir()
	node := cliServe(t, data, "--admin")
	admin := node.connect(t, access.Admin)
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := js.Stream(ctx, "TOKENS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Description = "changed by the administrator"
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("the admin's update: %v", err)
	}
	node.stop(t)

	node = cliServe(t, data)
	id, err := access.ReadIdentity(access.Path(data, access.Admin))
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(node.natsURL, id.Options()...); err == nil {
		nc.Close()
		t.Fatal("the admin identity got in without --admin")
	}
}

// serveFails runs `serve` as a user would and returns its exit status and
// stderr; it must end by itself, at once, with the reason.
func serveFails(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(cliBinary(t), append([]string{"serve", "--http", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "TOKENLEDGER_NATS=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("serve %s did not end by itself\n%s", strings.Join(args, " "), stderr.String())
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// A second node on one data directory, and a node whose NATS port is taken,
// are refused at once with the reason, as a user would see it.
func TestServeRefusesWhatItCannotOwn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	data := t.TempDir()
	node := cliServe(t, data)
	code, stderr := serveFails(t, "--data-dir", data, "--listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(stderr, "is in use by another tokenledger serve") {
		t.Fatalf("a second node on the data directory: exit %d\n%s", code, stderr)
	}
	addr := strings.TrimPrefix(node.natsURL, "nats://")
	code, stderr = serveFails(t, "--data-dir", t.TempDir(), "--listen", addr)
	if code != 2 || !strings.Contains(stderr, "--listen "+addr) || !strings.Contains(stderr, "address already in use") {
		t.Fatalf("a node on a taken NATS port: exit %d\n%s", code, stderr)
	}
	// The first node never noticed.
	mustCLI(t, node.natsURL, "create", "--account", "bob", "--name", "still")
}
