//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"tokenledger/internal/natstest"
)

// TestDiskFull: the disk under a node's embedded NATS server fills. What
// nats-server v2.15.2 does: the write that finds the disk full fails its
// stream's store for good, and every later write goes unanswered, while
// reads and the stream's info go on; only the server itself knows why. The
// node asks it, so the user is told "no space left", the node stops being
// ready and says why, and its log says what to do. Freeing space is not
// enough: the failed store takes writes again only once the server
// restarts, which for the embedded server is the node's restart. After it,
// writes work and every token acknowledged before the disk filled is valid.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	disk := mustTmpfs(t, "4m")
	data := filepath.Join(disk, "node")
	node := cliServe(t, data)
	url := node.natsURL

	var acked []string // secrets of tokens whose create was acknowledged
	for _, name := range []string{"a", "b", "c"} {
		acked = append(acked, strings.TrimSpace(mustCLI(t, url, "create", "--account", "bob", "--name", name)))
	}

	ballast := filepath.Join(disk, "ballast")
	mustFill(t, ballast)
	// The store's last page may take a few more events; then a write finds
	// the disk full.
	var (
		errOut string
		code   int
		failed string // the name whose create was refused
	)
	for i := 0; code == 0; i++ {
		if i == 50 {
			t.Fatal("creates still succeed on a full disk")
		}
		var out string
		failed = fmt.Sprintf("fill-%d", i)
		out, errOut, code = runCLI(t, url, "create", "--account", "bob", "--name", failed)
		if code == 0 {
			acked = append(acked, strings.TrimSpace(out))
		}
	}
	const noSpace = "the NATS server has no space left for JetStream"
	if code != 3 || !strings.Contains(errOut, noSpace) {
		t.Fatalf("create on a full disk: exit %d, %s; want 3 and %q", code, errOut, noSpace)
	}

	natstest.Eventually(t, "/readyz to say the disk is full", func() bool {
		status, body := readyz(t, node.httpURL)
		return status == http.StatusServiceUnavailable && strings.Contains(body, noSpace)
	})
	errorLine := regexp.MustCompile(`level=ERROR msg="` + noSpace + ` \(.*no space left on device.*\); this node is not ready .*restart this node`)
	if !errorLine.MatchString(node.stderr.String()) {
		t.Fatalf("the node's log does not say the disk is full and what to do:\n%s", node.stderr)
	}
	// Commands are refused meanwhile, before anything is written: a revoke
	// of two names leaves both live (checked after the restart).
	if _, errOut, code := runCLI(t, url, "revoke", "--account", "bob", "--name", "a", "--name", "b"); code != 3 {
		t.Fatalf("revoke while the disk is full: exit %d, %s; want 3", code, errOut)
	}

	// Free space: the failed store stays failed, so the node stays not ready.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, url, "create", "--account", "bob", "--name", "after-free"); code != 3 {
		t.Fatalf("create after freeing space, before a restart: exit %d, %s; want 3", code, errOut)
	}
	if status, body := readyz(t, node.httpURL); status != http.StatusServiceUnavailable || !strings.Contains(body, noSpace) {
		t.Fatalf("/readyz after freeing space, before a restart: %d %s", status, body)
	}

	// The recovery step: restart the node.
	node.stop(t)
	node = cliServe(t, data)
	url = node.natsURL
	natstest.Eventually(t, "the restarted node to be ready", func() bool {
		status, _ := readyz(t, node.httpURL)
		return status == http.StatusOK
	})
	acked = append(acked, strings.TrimSpace(mustCLI(t, url, "create", "--account", "bob", "--name", "after-restart")))
	for _, secret := range acked {
		if out := mustCLI(t, url, "validate", "--account", "bob", secret); !strings.Contains(out, `"valid":true`) {
			t.Errorf("a token acknowledged before the restart: %s", out)
		}
	}
	var names []string
	for _, tok := range listJSON(t, url, "bob") {
		names = append(names, tok.Name)
	}
	if len(names) != len(acked) || strings.Contains(strings.Join(names, " "), failed) || strings.Contains(strings.Join(names, " "), "after-free") {
		t.Fatalf("tokens after the restart: %v; want the %d acknowledged, and neither %s nor after-free", names, len(acked), failed)
	}
}

// mustTmpfs mounts a tmpfs of size on a new directory, so that a node's
// disk can fill, and unmounts it when the test ends (after the nodes
// started later have stopped).
func mustTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs for the node's store needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs on %s (a container without CAP_SYS_ADMIN?): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// mustFill writes path until the disk is full.
func mustFill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for _, chunk := range []int{len(buf), 4 << 10} {
		for {
			if _, err := f.Write(buf[:chunk]); errors.Is(err, syscall.ENOSPC) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// readyz is what a load balancer, and an operator, see on /readyz.
func readyz(t *testing.T, httpURL string) (int, string) {
	t.Helper()
	resp, err := http.Get(httpURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}
