// Package headroom bounds the memory a process holds beyond what it uses:
// the garbage that Go's collector lets pile up between collections.
//
// At GOGC=100 the heap grows to twice what was live at the last collection
// before the next one, and at the 400 a node catches up with (see
// projections.CatchUpGC), to five times. A node's live heap is nearly all
// its table and its embedded server's index of the stream, both of which
// only grow, and its validations make next to no garbage: at ten million
// tokens a doubling is gigabytes that the node holds and never uses.
//
// Bound sets a soft memory limit (runtime/debug.SetMemoryLimit) after each
// collection: what is live, plus what the runtime holds besides the heap,
// plus a headroom of a fraction of what is live and at least a minimum
// (serve's: half, and 256 MiB). Below a live heap of 256 MiB the limit is
// above what GOGC lets the heap reach, so a small node runs as Go's
// defaults have it; above, the heap never grows more than the headroom past
// what is live, and a garbage collection comes once it is spent. A limit
// set by GOMEMLIMIT stays the ceiling.
//
// The fraction is a price in collections: each marks all that is live, and
// comes once the headroom is spent in garbage, so the headroom over what is
// live is the garbage that marking it once buys. With a quarter (the first
// choice) a node of ten million tokens bought a quarter; one of a million,
// whose headroom is the 256 MiB minimum, about 0.4; and the benchmark's
// ratios fell with the size. Half puts the large node where the small one
// is, at a resident size of about 500 bytes a token at worst (a node's live
// heap is some 330 a token at ten million).
package headroom

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Policy is how much headroom the heap has past what is live.
type Policy struct {
	Min      uint64 // bytes, whatever the live heap
	Fraction uint64 // the headroom is live/Fraction when that is more than Min
}

// Default is the policy of serve: half of what is live, at least 256 MiB.
var Default = Policy{Min: 256 << 20, Fraction: 2}

// Bound keeps the process's memory limit at what p allows, set anew after
// each garbage collection, until stop is called; stop puts back the limit
// there was. The limit is the process's: a Bound while another runs (two
// nodes in one test binary) shares it, under the first one's policy, and
// the last stop ends it.
func Bound(p Policy) (stop func()) {
	shared.Lock()
	defer shared.Unlock()
	if shared.users == 0 {
		ceiling := debug.SetMemoryLimit(-1) // math.MaxInt64 unless GOMEMLIMIT or someone set one
		shared.b = &bound{policy: p, ceiling: ceiling, samples: newSamples()}
		shared.b.set()
		shared.b.arm()
	}
	shared.users++
	return sync.OnceFunc(func() {
		shared.Lock()
		defer shared.Unlock()
		if shared.users--; shared.users == 0 {
			shared.b.stop()
			shared.b = nil
		}
	})
}

// shared is the running bound and how many Bound calls hold it.
var shared struct {
	sync.Mutex
	b     *bound
	users int
}

// Lift puts the ceiling back as the limit until restore is called, for
// work that builds what will stay live and makes little garbage: a node
// decoding its table from a snapshot. A heap that grows fast under the
// bound meets the limit before the collection that would move it has
// ended, and the collector marks what is being built again and again (a
// snapshot of ten million tokens decoded in 4.3 s under the bound and in
// 2.1 s without it). GOGC still paces collections meanwhile. Lifts nest;
// with no bound running, Lift does nothing. Once the last is restored, the
// limit is set as after a collection, but taking all the heap holds as
// live (what was built while lifted has not been through a collection):
// the next collection sets it anew.
func Lift() (restore func()) {
	shared.Lock()
	defer shared.Unlock()
	b := shared.b
	if b == nil {
		return func() {}
	}
	b.mu.Lock()
	b.lifted++
	b.mu.Unlock()
	debug.SetMemoryLimit(b.ceiling)
	return sync.OnceFunc(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.lifted--; b.lifted == 0 && !b.stopped {
			debug.SetMemoryLimit(b.limit(true))
		}
	})
}

type bound struct {
	policy  Policy
	ceiling int64
	samples []metrics.Sample

	mu      sync.Mutex
	stopped bool
	lifted  int // Lifts not yet restored
}

// arm runs set after the next collection: a finalizer runs once the object
// it is on has been found unreachable, which takes a collection.
func (b *bound) arm() {
	runtime.SetFinalizer(&sentinel{b}, func(s *sentinel) {
		if s.b.set() {
			s.b.arm()
		}
	})
}

// stop ends the bound and puts back the limit there was.
func (b *bound) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	debug.SetMemoryLimit(b.ceiling)
}

// sentinel is the object whose finalizer says a collection has passed. It
// holds a pointer, which keeps it out of the tiny allocator's shared
// blocks, where a finalizer may never run.
type sentinel struct{ b *bound }

// set sets the limit from the heap as the last collection left it, and says
// whether to go on.
func (b *bound) set() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return false
	}
	if b.lifted > 0 {
		debug.SetMemoryLimit(b.ceiling)
	} else {
		debug.SetMemoryLimit(b.limit(false))
	}
	return true
}

// The runtime's figures that the limit is made of.
const (
	liveHeap     = "/gc/heap/live:bytes"         // marked live by the last collection
	totalMemory  = "/memory/classes/total:bytes" // all the runtime has mapped
	heapObjects  = "/memory/classes/heap/objects:bytes"
	heapUnused   = "/memory/classes/heap/unused:bytes"
	heapFree     = "/memory/classes/heap/free:bytes"
	heapReleased = "/memory/classes/heap/released:bytes"
)

func newSamples() []metrics.Sample {
	names := []string{liveHeap, totalMemory, heapObjects, heapUnused, heapFree, heapReleased}
	s := make([]metrics.Sample, len(names))
	for i, name := range names {
		s[i].Name = name
	}
	return s
}

// limit is what is live, plus what the runtime holds outside the heap
// (goroutine stacks, its own metadata, profiling buckets), plus the
// headroom; never above the ceiling. allHeld takes every object the heap
// holds as live, garbage too, where the last collection's figure is stale.
func (b *bound) limit(allHeld bool) int64 {
	metrics.Read(b.samples)
	v := make([]uint64, len(b.samples))
	for i, s := range b.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	live, total := v[0], v[1]
	if allHeld {
		live = max(live, v[2])
	}
	var nonHeap uint64
	if heap := v[2] + v[3] + v[4] + v[5]; total > heap {
		nonHeap = total - heap
	}
	limit := live + nonHeap + b.policy.headroom(live)
	if limit > math.MaxInt64 || int64(limit) > b.ceiling {
		return b.ceiling
	}
	return int64(limit)
}

// headroom is how far the heap may grow past live bytes.
func (p Policy) headroom(live uint64) uint64 {
	if p.Fraction > 0 && live/p.Fraction > p.Min {
		return live / p.Fraction
	}
	return p.Min
}
