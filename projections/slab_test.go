package projections

import "testing"

// A slab grows by an eighth at a time, so that a large one lies in long runs
// of memory and holds at most an eighth of it unused; a reserved slab holds
// what it was asked for and no more.
func TestSlabGrowsInRuns(t *testing.T) {
	var s slab
	for s.n < 300*chunkSize {
		s.add()
		if spare := len(s.chunks)*chunkSize - s.n; spare >= max(s.n/8+1, chunkSize) {
			t.Fatalf("%d tokens in %d chunks: %d places spare, more than an eighth", s.n, len(s.chunks), spare)
		}
		if r := ref(s.n); s.at(r) != &s.chunks[(s.n-1)/chunkSize][(s.n-1)%chunkSize] {
			t.Fatalf("token %d is not where its ref says", s.n)
		}
	}

	var r slab
	const n = 200*chunkSize + 1
	r.reserve(n)
	if len(r.chunks) != 201 {
		t.Fatalf("reserved for %d tokens: %d chunks, want 201", n, len(r.chunks))
	}
	for range n {
		r.add()
	}
	if len(r.chunks) != 201 {
		t.Errorf("%d tokens added after reserving for them: %d chunks, want 201", n, len(r.chunks))
	}
	// Four allocations (64, 64, 64 and 9 chunks), which may lie end to end.
	if runs := runsOf(r); runs > 4 {
		t.Errorf("reserved slab in %d runs of memory, want at most 4", runs)
	}
}

// runsOf counts the slab's runs of memory: chunks that follow each other in
// memory are one run.
func runsOf(s slab) int {
	runs := 0
	for i := range s.chunks {
		if i == 0 || spanOf(s.chunks[i-1]).hi != spanOf(s.chunks[i]).lo {
			runs++
		}
	}
	return runs
}
