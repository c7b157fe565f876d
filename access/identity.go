// Package access is who may do what on NATS: the roles of a deployment, the
// nkey identity of each, and the permissions the embedded server (and, written
// out by hand in deploy/nats/nats.conf, a cluster) gives them. Every role gets
// replies only on its own inbox prefix, so no role reads another's answers.
package access

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"tokenledger/events"
	"tokenledger/internal/atomicfile"
)

// The roles. A node makes one identity for each in its data directory on
// first start.
const (
	// Node is a ledger node's own connection to JetStream: it appends
	// events and keeps the buckets beside the stream.
	Node = "node"
	// Service is a node's connection for the `tokens` micro service: it
	// takes requests and may publish nothing but replies into the roles'
	// inboxes, so a request cannot make the node write anywhere else.
	Service = "service"
	// Operator is the CLI's: commands, validations, audit reads of the
	// stream, `nats micro ls/info/stats`.
	Operator = "operator"
	// Validator may only ask `tokens.validate`.
	Validator = "validator"
	// Auditor may only read the stream.
	Auditor = "auditor"
	// Admin may do anything, the stream's deletion included. Its identity
	// exists only once an administrator asks for it (serve --admin), and the
	// server knows it only for that run: the one way to change the stream's
	// configuration, taken on purpose.
	Admin = "admin"
	// Region is a regional server's leaf connection to a hub: made, and
	// let in, only by a hub node (serve --leaf-listen). It may copy the
	// stream into the region's mirror, append and ask the service, and
	// hear replies; nothing else crosses (see RegionPermissions).
	Region = "region"
)

// Roles are every role, in the order `creds` lists them.
var Roles = []string{Node, Service, Operator, Validator, Auditor}

// IsRole says whether role is one of Roles, or Admin.
func IsRole(role string) bool { return slices.Contains(Roles, role) || role == Admin || role == Region }

// InboxPrefix is where role receives replies: `_INBOX_<role>`. Clients of a
// role connect with nats.CustomInboxPrefix(InboxPrefix(role)); natscli takes
// it as --inbox-prefix.
func InboxPrefix(role string) string { return "_INBOX_" + role }

// Identity is one NATS user: an nkey seed and the role it plays.
type Identity struct {
	Role string
	seed []byte
}

// PublicKey is the nkey the server knows the identity by.
func (id Identity) PublicKey() string {
	kp, err := nkeys.FromSeed(id.seed)
	if err != nil {
		return ""
	}
	defer kp.Wipe()
	pub, _ := kp.PublicKey()
	return pub
}

// Options connect as this identity: its nkey answers the server's challenge,
// and its replies come to its own inbox prefix.
func (id Identity) Options() []nats.Option {
	pub := id.PublicKey()
	seed := bytes.Clone(id.seed)
	sign := func(nonce []byte) ([]byte, error) {
		kp, err := nkeys.FromSeed(seed)
		if err != nil {
			return nil, err
		}
		defer kp.Wipe()
		return kp.Sign(nonce)
	}
	return []nats.Option{nats.Nkey(pub, sign), nats.CustomInboxPrefix(InboxPrefix(id.Role))}
}

// File is the identity as a seed file: a comment that names the role and
// says how to use it, then the seed. `nats --nkey FILE` reads it as it is.
func (id Identity) File() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# tokenledger role %s\n", id.Role)
	fmt.Fprintf(&b, "# a NATS nkey seed: keep it secret (mode 0600). Use: tokenledger --nkey FILE, or nats --nkey FILE --inbox-prefix %s\n", InboxPrefix(id.Role))
	b.Write(id.seed)
	b.WriteByte('\n')
	return b.Bytes()
}

// roleLine is the comment that names a file's role.
var roleLine = regexp.MustCompile(`(?m)^# tokenledger role ([a-z]+)\s*$`)

// ReadIdentity reads a seed file written by File, or any nkey user seed file;
// a file that does not name its role plays Operator.
func ReadIdentity(path string) (Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Identity{}, err
	}
	defer clear(b)
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return Identity{}, fmt.Errorf("%s: not an nkey user seed file: %w", path, err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return Identity{}, err
	}
	id := Identity{Role: Operator, seed: bytes.Clone(seed)}
	if m := roleLine.FindSubmatch(b); m != nil {
		if !IsRole(string(m[1])) {
			return Identity{}, fmt.Errorf("%s: unknown role %q", path, m[1])
		}
		id.Role = string(m[1])
	}
	return id, nil
}

// Dir is where a node keeps its role identities: <data-dir>/creds.
func Dir(dataDir string) string { return filepath.Join(dataDir, "creds") }

// Path is the seed file of role under dataDir.
func Path(dataDir, role string) string { return filepath.Join(Dir(dataDir), role+".nk") }

// Ensure makes the data directory private (0700) and an identity for every
// role that has none yet, each in a file of mode 0600, and returns them all.
// It refuses a data directory or identity file that another user owns or that
// others may read, rather than trust or hand out credentials they could have.
func Ensure(dataDir string) (map[string]Identity, error) { return ensure(dataDir, Roles) }

// EnsureAdmin is Ensure with the Admin identity too.
func EnsureAdmin(dataDir string) (map[string]Identity, error) {
	return ensure(dataDir, append(slices.Clone(Roles), Admin))
}

// EnsureHub is Ensure for a hub node, which also lets regional servers in
// as the Region role (and the admin, with admin).
func EnsureHub(dataDir string, admin bool) (map[string]Identity, error) {
	roles := append(slices.Clone(Roles), Region)
	if admin {
		roles = append(roles, Admin)
	}
	return ensure(dataDir, roles)
}

func ensure(dataDir string, roles []string) (map[string]Identity, error) {
	if err := Private(dataDir); err != nil {
		return nil, err
	}
	if err := Private(Dir(dataDir)); err != nil {
		return nil, err
	}
	ids := make(map[string]Identity, len(roles))
	for _, role := range roles {
		path := Path(dataDir, role)
		id, err := ReadIdentity(path)
		if errors.Is(err, fs.ErrNotExist) {
			if id, err = newIdentity(role); err == nil {
				err = atomicfile.Create(path, id.File(), 0o600)
			}
		}
		if err != nil {
			return nil, err
		}
		if err := checkPrivate(path); err != nil {
			return nil, err
		}
		if id.Role != role {
			return nil, fmt.Errorf("%s names role %s, not %s", path, id.Role, role)
		}
		ids[role] = id
	}
	return ids, nil
}

func newIdentity(role string) (Identity, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return Identity{}, err
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return Identity{}, err
	}
	return Identity{Role: role, seed: bytes.Clone(seed)}, nil
}

// Private makes dir, or tightens an existing one of ours, to mode 0700.
func Private(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !ownedByUs(st) {
		return fmt.Errorf("%s belongs to another user: a node keeps its credentials only in a directory of its own", dir)
	}
	if st.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// checkPrivate refuses a credentials file that others could read or that
// another user owns.
func checkPrivate(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !ownedByUs(st) {
		return fmt.Errorf("%s belongs to another user", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s may be read by others (mode %o): chmod 600 it, and replace the key if anyone else read it", path, st.Mode().Perm())
	}
	return nil
}

// Client is how a client finds its identity: the file named by --nkey, else
// the operator's in the data directory when it exists. It returns the zero
// Identity when neither is there (an anonymous client, for a NATS without
// authentication).
func Client(nkeyFile, dataDir string) (Identity, bool, error) {
	path := nkeyFile
	if path == "" {
		path = Path(dataDir, Operator)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return Identity{}, false, nil
		}
	}
	id, err := ReadIdentity(path)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return Identity{}, false, events.Errorf(events.Invalid, "cannot read %s: only the user who runs the node may use its credentials", path)
		}
		return Identity{}, false, events.Errorf(events.Invalid, "%v", err)
	}
	return id, true, nil
}
