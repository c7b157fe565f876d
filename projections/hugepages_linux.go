package projections

import (
	"bytes"
	"context"
	"os"

	"golang.org/x/sys/unix"
)

// collapse asks the kernel to move each block to huge pages, one huge page
// at a time so that ctx can end it between two. A kernel without
// MADV_COLLAPSE (before 6.1) refuses the first with EINVAL, and nothing more
// is asked; a huge page the kernel cannot move now (none free, say) stays as
// it was.
func collapse(ctx context.Context, blocks []span) HugePages {
	var hp HugePages
	for _, b := range blocks {
		hp.Asked += int64(b.hi - b.lo)
	}
	if len(blocks) == 0 || hugePagesOff() {
		return hp
	}
	for _, b := range blocks {
		for p := b.lo; p < b.hi; p += hugePage {
			if ctx.Err() != nil {
				return hp
			}
			switch _, _, errno := unix.Syscall(unix.SYS_MADVISE, p, hugePage, unix.MADV_COLLAPSE); errno {
			case 0:
				hp.Backed += hugePage
			case unix.EINVAL, unix.EPERM:
				return hp
			}
		}
	}
	return hp
}

// hugePagesOff says whether the system's administrator turned transparent
// huge pages off ("never"), which MADV_COLLAPSE would not heed.
func hugePagesOff() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err != nil || bytes.Contains(b, []byte("[never]"))
}

// adviseHuge asks the kernel to back the whole huge pages of s, memory the
// table has just allocated and not yet written, with huge pages as they are
// first written (MADV_HUGEPAGE), unless huge pages are off. A refusal
// leaves the memory on small pages, as it was.
func adviseHuge(s span) {
	blocks := hugeBlocks([]span{s})
	if len(blocks) == 0 || hugePagesOff() {
		return
	}
	for _, b := range blocks {
		unix.Syscall(unix.SYS_MADVISE, b.lo, b.hi-b.lo, unix.MADV_HUGEPAGE)
	}
}
