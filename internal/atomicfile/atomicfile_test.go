package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWholeAndLeavesNothingElse(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, tc := range []struct {
		body string
		perm fs.FileMode
	}{{"first\n", 0o600}, {"second, longer\n", 0o644}} {
		if err := Write(path, []byte(tc.body), tc.perm); err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(path)
		if err != nil || string(have) != tc.body {
			t.Fatalf("after Write(%q): %q, %v", tc.body, have, err)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != tc.perm {
			t.Fatalf("mode %o, want %o", st.Mode().Perm(), tc.perm)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the directory holds %d entries, want only the file", len(entries))
	}
}

func TestCreateRefusesAnExistingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seed")
	if err := Create(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Create(path, []byte("two"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("a second Create: %v, want fs.ErrExist", err)
	}
	if have, _ := os.ReadFile(path); string(have) != "one" {
		t.Fatalf("the file now holds %q", have)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the directory holds %d entries, want only the file", len(entries))
	}
}

func TestWritePartsWritesThemInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteParts(path, 0o600, []byte("head\n"), nil, []byte("body")); err != nil {
		t.Fatal(err)
	}
	if have, err := os.ReadFile(path); err != nil || string(have) != "head\nbody" {
		t.Fatalf("%q, %v", have, err)
	}
}
