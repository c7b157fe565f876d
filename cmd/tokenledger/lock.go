package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"tokenledger/projections"
)

// lockDataDir takes dir for this process alone, for as long as the process
// lives or until release: two nodes on one data directory would share one
// JetStream store and one record of the stream seen, and corrupt both. The
// lock is the operating system's (flock on <dir>/lock), so that it goes with
// the process however it ends; the file holds the pid, for the message.
func lockDataDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, usageErrorf("--data-dir %s: %v", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, usageErrorf("--data-dir %s: %v", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, usageErrorf("--data-dir %s: cannot lock %s: %v", dir, f.Name(), err)
		}
		holder := "another process"
		b := make([]byte, 32)
		if n, _ := f.ReadAt(b, 0); n > 0 {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil {
				holder = fmt.Sprintf("pid %d", pid)
			}
		}
		return nil, usageErrorf("--data-dir %s is in use by another tokenledger serve (%s); stop it first, or give this node its own --data-dir", dir, holder)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}

// openSeen reads the record, in dir, of the last sequence of stream that the
// node has seen (see projections.Guard).
func openSeen(dir, stream string) (*projections.SeenFile, error) {
	seen, err := projections.OpenSeen(filepath.Join(dir, "stream.seen"), stream)
	if err != nil {
		return nil, usageErrorf("--data-dir: %v", err)
	}
	return seen, nil
}
