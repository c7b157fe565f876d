package projections

import (
	"context"
	"runtime"
	"slices"
	"time"
	"unsafe"
)

// A validation reads two places at random in the table's memory: an index
// slot, then a token. With the kernel's 4 KiB pages each read of a large
// table first misses on its page's address translation, and at ten million
// tokens (2 GB of index and slab) the page tables no longer stay in the
// caches either. Huge pages (2 MiB) take those misses away: on this
// project's 2-core machine BenchmarkValidateTenMillion went from 1.23 µs a
// validation to 0.88-0.94, and BenchmarkValidateMillion from 0.66 to 0.55.
// The Go runtime asks for none. A snapshot's decoding asks for them for the
// memory it is about to fill (adviseHuge: the slab's runs, the index and
// its build's scratch), which it then writes once, in a few seconds: on the
// project's present machine (a virtual one, where a first touch of a 4 KiB
// page costs about 7 µs of the kernel's time) a fresh process decoded ten
// million tokens in 2.4 to 4.7 s instead of 8.2, a million in 0.28 s instead
// of 0.75 (on the Intel machine before it, asking at the first touch made
// the decoding 15 to 20% slower, the kernel compacting memory at each).
// Memory a live table grows into is not asked for as it is written: a token
// applied under the table's lock would wait for a huge page to be zeroed or
// found. So a node asks once its table has caught up (UseHugePages), and the
// kernel copies what is already written into huge pages (MADV_COLLAPSE,
// Linux 6.1 and later): 0.4 s at a million tokens, 4.8 s at ten million,
// off the validation path.

// HugePages is what UseHugePages did: the bytes of the table's memory that
// could lie on huge pages (whole 2 MiB blocks of it), those the kernel moved
// there or found there already, and how long it took.
type HugePages struct {
	Asked, Backed int64
	Took          time.Duration
}

// UseHugePages asks the kernel to back the table's index and the slab's
// tokens with huge pages, a 2 MiB block at a time, until ctx ends. It is
// cheap to ask again (a millisecond at ten million tokens): what grew since
// is then moved too. Where the system has no such call, or its
// administrator turned huge pages off, it does nothing.
func (t *Table) UseHugePages(ctx context.Context) HugePages {
	t.mu.RLock()
	var spans []span
	index, chunks := t.byHash.slots, t.tokens.chunks
	if len(index) > 0 {
		spans = append(spans, spanOf(index))
	}
	for i := 0; i*chunkSize < t.tokens.n; i++ {
		spans = append(spans, spanOf(chunks[i][:min(chunkSize, t.tokens.n-i*chunkSize)]))
	}
	t.mu.RUnlock()
	start := time.Now()
	hp := collapse(ctx, hugeBlocks(spans))
	hp.Took = time.Since(start)
	// The memory is named by address alone meanwhile: the slices keep it
	// from being freed and reused, should the index grow.
	runtime.KeepAlive(index)
	runtime.KeepAlive(chunks)
	return hp
}

// Footprint is the bytes the table's index and token slab take, as
// allocated: it changes when either grows (the index doubles, the slab takes
// another run of chunks), which is when UseHugePages has new memory to move.
func (t *Table) Footprint() int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return int64(len(t.byHash.slots))*int64(unsafe.Sizeof(slot(0))) +
		int64(len(t.tokens.chunks))*chunkSize*int64(unsafe.Sizeof(token{}))
}

// span is a run of memory, by address: [lo, hi).
type span struct{ lo, hi uintptr }

func spanOf[T any](s []T) span {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return span{p, p + uintptr(len(s))*unsafe.Sizeof(s[0])}
}

// hugePage is the size of an x86-64 or arm64 huge page.
const hugePage = 2 << 20

// hugeBlocks is the whole huge pages inside the spans, as runs of them:
// spans that touch or overlap are joined first, and each run is rounded in
// to huge-page bounds, so that no block holds a byte that is not the table's
// (memory the Go runtime may have returned to the kernel, which moving it
// would take back).
func hugeBlocks(spans []span) []span {
	spans = slices.Clone(spans)
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	var joined []span
	for _, s := range spans {
		if n := len(joined); n > 0 && s.lo <= joined[n-1].hi {
			joined[n-1].hi = max(joined[n-1].hi, s.hi)
			continue
		}
		joined = append(joined, s)
	}
	var blocks []span
	for _, s := range joined {
		lo := (s.lo + hugePage - 1) &^ (hugePage - 1)
		hi := s.hi &^ (hugePage - 1)
		if lo < hi {
			blocks = append(blocks, span{lo, hi})
		}
	}
	return blocks
}
