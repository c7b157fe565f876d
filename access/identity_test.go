package access

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

func TestEnsureMakesPrivateIdentities(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	ids, err := Ensure(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{data, Dir(data)} {
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v, mode %o; want 0700", dir, err, st.Mode().Perm())
		}
	}
	keys := make(map[string]bool)
	for _, role := range Roles {
		st, err := os.Stat(Path(data, role))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v; want mode 0600", Path(data, role), err)
		}
		id := ids[role]
		if id.Role != role || !nkeys.IsValidPublicUserKey(id.PublicKey()) || keys[id.PublicKey()] {
			t.Fatalf("%s: identity %q with key %q", role, id.Role, id.PublicKey())
		}
		keys[id.PublicKey()] = true
	}
	// A second start keeps the identities it made.
	again, err := Ensure(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range Roles {
		if again[role].PublicKey() != ids[role].PublicKey() {
			t.Fatalf("%s changed its key on a second start", role)
		}
	}
}

func TestEnsureTightensAndRefuses(t *testing.T) {
	data := t.TempDir()
	if err := os.Chmod(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(data); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(data); st.Mode().Perm() != 0o700 {
		t.Fatalf("an open data directory kept mode %o", st.Mode().Perm())
	}
	// A credentials file that others could have read is not handed out.
	if err := os.Chmod(Path(data, Validator), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(data); err == nil || !strings.Contains(err.Error(), "may be read by others") {
		t.Fatalf("Ensure with a readable seed file: %v", err)
	}
}

func TestIdentityFile(t *testing.T) {
	data := t.TempDir()
	ids, err := Ensure(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		file string
		want string
	}{
		{"as written", string(ids[Validator].File()), Validator},
		{"a bare seed plays the operator", lastLine(ids[Auditor].File()), Operator},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "id.nk")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			id, err := ReadIdentity(path)
			if err != nil {
				t.Fatal(err)
			}
			if id.Role != tc.want {
				t.Fatalf("role %q, want %q", id.Role, tc.want)
			}
			// nats.go (and so `nats --nkey FILE`) reads the same file.
			if _, err := nats.NkeyOptionFromSeed(path); err != nil {
				t.Fatalf("nats.go refuses the file: %v", err)
			}
		})
	}
	bad := filepath.Join(t.TempDir(), "bad.nk")
	os.WriteFile(bad, []byte("# tokenledger role root\n"+lastLine(ids[Node].File())), 0o600)
	if _, err := ReadIdentity(bad); err == nil {
		t.Fatal("a file naming an unknown role was read")
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1] + "\n"
}

func TestClientFindsOperator(t *testing.T) {
	data := t.TempDir()
	if _, found, err := Client("", data); found || err != nil {
		t.Fatalf("no credentials yet: found %v, %v", found, err)
	}
	if _, err := Ensure(data); err != nil {
		t.Fatal(err)
	}
	id, found, err := Client("", data)
	if err != nil || !found || id.Role != Operator {
		t.Fatalf("the data directory's operator: %+v %v %v", id.Role, found, err)
	}
	id, found, err = Client(Path(data, Auditor), "elsewhere")
	if err != nil || !found || id.Role != Auditor {
		t.Fatalf("--nkey auditor: %+v %v %v", id.Role, found, err)
	}
	if _, _, err := Client(filepath.Join(data, "missing.nk"), data); err == nil {
		t.Fatal("a missing --nkey file was accepted")
	}
}
