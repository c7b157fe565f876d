//go:build !linux

package projections

import "context"

// collapse does nothing where there is no MADV_COLLAPSE: only the blocks
// that could have been moved are counted.
func collapse(_ context.Context, blocks []span) HugePages {
	var hp HugePages
	for _, b := range blocks {
		hp.Asked += int64(b.hi - b.lo)
	}
	return hp
}

// adviseHuge does nothing where huge pages cannot be asked for.
func adviseHuge(span) {}
