package access

import (
	"io/fs"
	"os"
	"syscall"
)

// ownedByUs says whether the file belongs to the user running this process.
func ownedByUs(st fs.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	return !ok || int(sys.Uid) == os.Geteuid()
}
