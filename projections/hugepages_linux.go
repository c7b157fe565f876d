package projections

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of an x86-64 or arm64 transparent huge page.
const hugePage = 2 << 20

// adviseHugePages asks the kernel to back the whole 2 MiB pages within s
// with huge pages, before s is first written. A validation's read of an
// index slot is a random one, and at ten million tokens (an index of
// 512 MB) it missed the TLB as well as the caches, with the page tables too
// large to stay cached: BenchmarkValidateTenMillion. The kernel's default
// on many systems ("madvise") gives huge pages only where asked, and the Go
// runtime asks for none. It is advice: where the kernel has none to give,
// or gives none ("never"), nothing changes.
func adviseHugePages[T any](s []T) {
	if len(s) == 0 {
		return
	}
	size := uintptr(len(s)) * unsafe.Sizeof(s[0])
	if size < 2*hugePage {
		return
	}
	start := uintptr(unsafe.Pointer(&s[0]))
	skip := (hugePage - start%hugePage) % hugePage
	whole := (size - skip) &^ (hugePage - 1)
	if whole == 0 {
		return
	}
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(&s[0]), skip)), whole), unix.MADV_HUGEPAGE)
}
