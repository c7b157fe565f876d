package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestDataDirTakesOneNode: a second lock on a data directory is refused, as
// a usage error that names the holder, until the first is released.
func TestDataDirTakesOneNode(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockDataDir(dir)
	var u *usageError
	if !errors.As(err, &u) || exitCode(err) != 2 {
		t.Fatalf("second lock: %v, want a usage error", err)
	}
	if want := fmt.Sprintf("--data-dir %s is in use by another tokenledger serve (pid %d)", dir, os.Getpid()); !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("second lock: %q, want it to start %q", err, want)
	}
	release()
	release, err = lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	release()
}
