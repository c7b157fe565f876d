package main

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"tokenledger/access"
)

// creds prints a role's seed file, made by the node in its data directory,
// for handing to a service: `tokenledger creds validator > validator.nk`.
func (e *cli) creds(args []string) error {
	var dataDir string
	fset := e.flags("creds")
	fset.StringVar(&dataDir, "data-dir", "./data", "the node's data directory")
	if err := e.parse(fset, args, 1); err != nil {
		return err
	}
	role := fset.Arg(0)
	if !access.IsRole(role) {
		return usageErrorf("creds: give one role: %s", strings.Join(access.Roles, ", "))
	}
	path := access.Path(dataDir, role)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usageErrorf("creds: no %s: a node makes its credentials on first start (tokenledger serve --data-dir %s)", path, dataDir)
	case errors.Is(err, fs.ErrPermission):
		return usageErrorf("creds: cannot read %s: only the user who runs the node may", path)
	case err != nil:
		return err
	}
	_, err = e.stdout.Write(b)
	return err
}
