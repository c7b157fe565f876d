package headroom

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

const mib = 1 << 20

// small is a policy for a test's heap of some tens of MiB.
var small = Policy{Min: 4 * mib, Fraction: 4}

// hold keeps n MiB live until the test ends.
func hold(t *testing.T, n int) {
	held := make([][]byte, n)
	for i := range held {
		held[i] = make([]byte, mib)
		held[i][0] = 1
	}
	t.Cleanup(func() { runtime.KeepAlive(held) })
}

const heapGoal = "/gc/heap/goal:bytes"

func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// collected runs a collection and waits until the bound has set its limit
// after it: the finalizer runs a moment after the collection ends. It
// collects again while it waits: a sentinel armed while a collection marks
// (by a finalizer that ran just before this one began) is allocated marked
// and outlives that collection, and this test's process makes too little
// garbage for another to come by itself (it failed so in CI, once).
func collected(t *testing.T) int64 {
	t.Helper()
	debug.SetMemoryLimit(math.MaxInt64 - 1) // a value Bound never sets, to see it set again
	return waitLimit(t, func(limit int64) bool { return limit != math.MaxInt64-1 })
}

// waitLimit collects until the process's memory limit is one that done
// accepts, and returns it.
func waitLimit(t *testing.T, done func(int64) bool) int64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		runtime.GC()
		for range 50 {
			if limit := debug.SetMemoryLimit(-1); done(limit) {
				return limit
			}
			runtime.Gosched()
			time.Sleep(time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no limit set after collections: %d MiB", debug.SetMemoryLimit(-1)/mib)
		}
	}
}

// TestLimitIsLivePlusHeadroom: after each collection the limit is what is
// live, what the runtime holds beside the heap and a quarter of what is
// live, and it moves with what is live. The heap's goal, where the next
// collection starts, is then the limit's, below the twice-live of GOGC=100.
func TestLimitIsLivePlusHeadroom(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	stop := Bound(small)
	defer stop()
	for _, held := range []int{64, 128} { // MiB, the second on top of the first
		hold(t, held)
		limit := collected(t)
		live := read(liveHeap)
		nonHeap := read(totalMemory) - read(heapObjects) - read(heapUnused) - read(heapFree) - read(heapReleased)
		want := int64(live + nonHeap + live/4)
		if d := limit - want; d < -4*mib || d > 4*mib {
			t.Errorf("limit %d MiB, want %d MiB (live %d MiB, beside the heap %d MiB, headroom a quarter of live)",
				limit/mib, want/mib, live/mib, nonHeap/mib)
		}
		if goal := read(heapGoal); goal > uint64(limit) || goal >= 2*live {
			t.Errorf("the heap's goal is %d MiB, want it under the limit (%d MiB) and under twice what is live (%d MiB)",
				goal/mib, limit/mib, 2*live/mib)
		}
	}
}

// TestSmallHeapHasTheMinimum: a heap whose quarter is less than the
// minimum has the minimum as headroom.
func TestSmallHeapHasTheMinimum(t *testing.T) {
	stop := Bound(Policy{Min: 48 * mib, Fraction: 4})
	defer stop()
	hold(t, 16)
	limit := collected(t)
	live := read(liveHeap)
	nonHeap := read(totalMemory) - read(heapObjects) - read(heapUnused) - read(heapFree) - read(heapReleased)
	want := int64(live + nonHeap + 48*mib)
	if d := limit - want; d < -4*mib || d > 4*mib {
		t.Errorf("limit %d MiB, want %d MiB (live %d MiB, the minimum headroom 48 MiB)", limit/mib, want/mib, live/mib)
	}
}

// TestStopPutsBackTheLimit: the limit there was before Bound is the
// ceiling while it runs (GOMEMLIMIT's, when set), and is back once it stops;
// after stop no collection sets a limit.
func TestStopPutsBackTheLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	hold(t, 32)
	ceiling := int64(40 * mib)
	debug.SetMemoryLimit(ceiling)
	stop := Bound(Policy{Min: 64 * mib, Fraction: 4})
	debug.SetMemoryLimit(math.MaxInt64 - 1)
	waitLimit(t, func(limit int64) bool { return limit == ceiling })
	stop()
	if limit := debug.SetMemoryLimit(-1); limit != ceiling {
		t.Errorf("after stop the limit is %d MiB, want the one there was, %d MiB", limit/mib, ceiling/mib)
	}
	debug.SetMemoryLimit(math.MaxInt64 - 1)
	runtime.GC()
	runtime.GC() // a finalizer armed before stop has run by the second
	time.Sleep(10 * time.Millisecond)
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64-1 {
		t.Errorf("a collection after stop set the limit to %d MiB", limit/mib)
	}
}

// TestBoundsShareOneLimit: a second Bound while one runs shares it; the
// limit stays until the last stop, which puts back the one there was.
func TestBoundsShareOneLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	first := Bound(small)
	second := Bound(Policy{Min: 1 << 40}) // not used: the first one's policy stands
	t.Cleanup(first)                      // should the test fail first; a stop counts once
	t.Cleanup(second)
	limit := collected(t)
	if limit >= 1<<40 {
		t.Fatalf("limit %d MiB: the second Bound's policy was used", limit/mib)
	}
	first()
	first() // stopping twice counts once
	if now := collected(t); now >= 1<<40 || now == before {
		t.Fatalf("after the first stop the limit is %d MiB, want the bound still set", now/mib)
	}
	second()
	if now := debug.SetMemoryLimit(-1); now != before {
		t.Errorf("after the last stop the limit is %d MiB, want the one there was, %d", now/mib, before/mib)
	}
	runtime.GC()
	runtime.GC()
	if now := debug.SetMemoryLimit(-1); now != before {
		t.Errorf("after the last stop a collection set the limit to %d MiB, want it left at %d", now/mib, before/mib)
	}
}

// TestLiftLeavesTheCeiling: while lifted, the limit is the ceiling, after
// collections too; once restored, the bound's limit is back, counting what
// was built while lifted before any collection has.
func TestLiftLeavesTheCeiling(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	stop := Bound(small)
	defer stop()
	hold(t, 32)
	bounded := collected(t)
	if bounded == before {
		t.Fatalf("the bound set no limit (%d MiB)", bounded/mib)
	}
	restore := Lift()
	inner := Lift()
	for range 2 {
		if limit := collected(t); limit != before {
			t.Fatalf("lifted, a collection set the limit to %d MiB, want the ceiling, %d", limit/mib, before/mib)
		}
	}
	inner()
	if limit := collected(t); limit != before {
		t.Fatalf("with one Lift still on, the limit is %d MiB, want the ceiling", limit/mib)
	}
	hold(t, 64) // built while lifted
	held := read(heapObjects)
	restore()
	restore() // restoring twice counts once
	if limit := debug.SetMemoryLimit(-1); limit == before || limit < int64(held+small.Min) {
		t.Errorf("restored, the limit is %d MiB, want at least the %d MiB held and the headroom", limit/mib, held/mib)
	}
	if limit := collected(t); limit == before || limit < bounded+56*mib || limit > bounded+100*mib {
		t.Errorf("restored, a collection set the limit to %d MiB, want the bound's for 64 MiB more live than %d MiB", limit/mib, bounded/mib)
	}
}

// TestLiftWithoutABound does nothing.
func TestLiftWithoutABound(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	Lift()()
	if limit := debug.SetMemoryLimit(-1); limit != before {
		t.Errorf("the limit is %d, want it left at %d", limit, before)
	}
}
