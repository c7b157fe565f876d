// Package atomicfile writes a file whole or not at all: a reader, or the
// next start after a crash, finds the old file or the new one, never a part.
// A node keeps its credentials, its public key, the panel's password hashes
// and the last stream sequence it has seen in files written this way.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with b, of mode perm.
func Write(path string, b []byte, perm fs.FileMode) error {
	return write(path, perm, os.Rename, b)
}

// WriteParts replaces path with the parts one after another, of mode perm:
// for a large body behind a small header, which joining would copy.
func WriteParts(path string, perm fs.FileMode, parts ...[]byte) error {
	return write(path, perm, os.Rename, parts...)
}

// Create writes b to a new file at path, of mode perm, and fails with
// fs.ErrExist when path exists (another process made it first).
func Create(path string, b []byte, perm fs.FileMode) error {
	return write(path, perm, os.Link, b)
}

// write puts parts in a temporary file beside path, synced and of mode perm,
// then gives it path with place, and syncs the directory so that the new
// name outlives a crash too.
func write(path string, perm fs.FileMode, place func(oldpath, newpath string) error, parts ...[]byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // nothing there once renamed; the spare link once linked
	err = tmp.Chmod(perm)
	for _, b := range parts {
		if err == nil {
			_, err = tmp.Write(b)
		}
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = place(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
