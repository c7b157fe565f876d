package accounts

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"tokenledger/events"
	"tokenledger/internal/atomicfile"
)

// maxAccountsFile bounds what is read of an accounts file.
const maxAccountsFile = 1 << 20

// maxPassword is bcrypt's limit: it ignores nothing, it refuses more.
const maxPassword = 72

// MinPassword is the fewest characters (bytes) a new password may have. An
// account whose password is shorter, set before this rule, still logs in
// with it: the rule applies when a password is set, not when it is used.
const MinPassword = 12

// Passwords is an htpasswd file of account passwords, bcrypt only, as
// `htpasswd -B` and `tokenledger passwd` write it. It is read again when it
// changes on disk, so a new or changed password takes effect without a
// restart, and ends the account's panel sessions.
type Passwords struct {
	path string

	mu     sync.Mutex
	file   fs.FileInfo // what was read; a rename or write makes it differ
	hashes map[string][]byte
	cost   int // the file's most common bcrypt cost, for unknown accounts
}

// OpenPasswords reads the accounts file at path.
func OpenPasswords(path string) (*Passwords, error) {
	a := &Passwords{path: path}
	if err := a.reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Check says whether password is account's, and returns the stamp of the
// password it matched. An unknown account costs as much time as a wrong
// password: it is compared with a dummy hash of the cost most of the file's
// hashes have, so a caller cannot tell the two apart.
func (a *Passwords) Check(account, password string) (Stamp, bool) {
	hash, cost := a.lookup(account)
	if hash == nil || len(password) > maxPassword {
		bcrypt.CompareHashAndPassword(dummyHash(cost), []byte(password))
		return Stamp{}, false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return Stamp{}, false
	}
	return sha256.Sum256(hash), true
}

// Stamp tells one password of an account from any other: the SHA-256 of its
// bcrypt hash, whose salt differs each time a password is set, even to the
// same password again. A panel session keeps the stamp of the password it
// logged in with, and ends when the file's differs.
type Stamp [sha256.Size]byte

// Stamp is the stamp of account's password as the file holds it now (read
// again if it changed on disk); false when the account has no password.
func (a *Passwords) Stamp(account string) (Stamp, bool) {
	hash, _ := a.lookup(account)
	if hash == nil {
		return Stamp{}, false
	}
	return sha256.Sum256(hash), true
}

var dummies sync.Map // bcrypt cost -> []byte, a hash of nobody's password

func dummyHash(cost int) []byte {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		cost = bcrypt.DefaultCost
	}
	if h, ok := dummies.Load(cost); ok {
		return h.([]byte)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("no such account"), cost)
	h2, _ := dummies.LoadOrStore(cost, h)
	return h2.([]byte)
}

// commonCost is the cost most of hashes have (the highest among equals).
func commonCost(hashes map[string][]byte) int {
	n := map[int]int{}
	best := bcrypt.DefaultCost
	for _, h := range hashes {
		c, err := bcrypt.Cost(h)
		if err != nil {
			continue
		}
		n[c]++
		if n[c] > n[best] || n[c] == n[best] && c > best {
			best = c
		}
	}
	return best
}

func (a *Passwords) lookup(account string) ([]byte, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// A file that cannot be read now keeps the passwords last read, except
	// when it is gone: then nobody logs in with a password.
	if fi, err := os.Stat(a.path); errors.Is(err, fs.ErrNotExist) {
		a.hashes, a.file = nil, nil
	} else if err == nil && (a.file == nil || !os.SameFile(fi, a.file) || !fi.ModTime().Equal(a.file.ModTime()) || fi.Size() != a.file.Size()) {
		a.reloadLocked()
	}
	return a.hashes[account], a.cost
}

func (a *Passwords) reload() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reloadLocked()
}

func (a *Passwords) reloadLocked() error {
	f, err := os.Open(a.path)
	if err != nil {
		return fmt.Errorf("accounts file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("accounts file: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxAccountsFile+1))
	if err != nil {
		return fmt.Errorf("accounts file: %w", err)
	}
	if len(b) > maxAccountsFile {
		return fmt.Errorf("accounts file %s is larger than %d bytes", a.path, maxAccountsFile)
	}
	entries, err := parseAccounts(b)
	if err != nil {
		return fmt.Errorf("accounts file %s: %w", a.path, err)
	}
	a.hashes = make(map[string][]byte, len(entries))
	for _, e := range entries {
		a.hashes[e.account] = []byte(e.hash)
	}
	a.cost = commonCost(a.hashes)
	a.file = fi
	return nil
}

type accountEntry struct{ account, hash string }

// parseAccounts reads htpasswd lines "account:hash"; blank lines and lines
// starting with # are skipped. Only bcrypt hashes are accepted: the others
// htpasswd can write are too weak to keep.
func parseAccounts(b []byte) ([]accountEntry, error) {
	var out []accountEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), maxAccountsFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		account, hash, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: want ACCOUNT:HASH", n)
		}
		if err := events.CheckAccount(account); err != nil {
			return nil, fmt.Errorf("line %d: %v", n, events.ErrorMessage(err))
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("line %d: the password of %s is not a bcrypt hash (use htpasswd -B or tokenledger passwd)", n, account)
		}
		out = append(out, accountEntry{account, hash})
	}
	return out, sc.Err()
}

// SetPassword adds account to the accounts file at path, or changes its
// password, creating the file if need be. The file is replaced in one
// rename, so a running node never reads half of it.
func SetPassword(path, account, password string) error {
	if err := events.CheckAccount(account); err != nil {
		return err
	}
	switch {
	case password == "":
		return events.Errorf(events.Invalid, "the password is empty")
	case len(password) < MinPassword:
		return events.Errorf(events.Invalid, "the password is shorter than %d characters: choose a longer one", MinPassword)
	case len(password) > maxPassword:
		return events.Errorf(events.Invalid, "the password is longer than %d bytes", maxPassword)
	}
	old, err := os.ReadFile(path)
	mode := fs.FileMode(0o600)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case len(old) > maxAccountsFile:
		return fmt.Errorf("accounts file %s is larger than %d bytes", path, maxAccountsFile)
	default:
		if _, err := parseAccounts(old); err != nil {
			return fmt.Errorf("accounts file %s: %w", path, err)
		}
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	// Apache's htpasswd -B writes $2y$; Go's bcrypt has no $2a$ bug to tell
	// apart, so the hash is the same under either name.
	entry := account + ":$2y$" + strings.TrimPrefix(string(hash), "$2a$")

	var out []string
	replaced := false
	for _, line := range strings.Split(strings.TrimRight(string(old), "\n"), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch {
		case line == "" && len(out) == 0:
			continue
		case name == account && !replaced:
			out, replaced = append(out, entry), true
		case name == account:
			// a second line for the account would be ignored; drop it
		default:
			out = append(out, line)
		}
	}
	if !replaced {
		out = append(out, entry)
	}
	return atomicfile.Write(path, []byte(strings.Join(out, "\n")+"\n"), mode)
}
