package node

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

// TestGroupStopsBackwardsOneAtATime: once one actor ends, the others are
// stopped in the reverse of the order they were added, each only after the
// ones added later have ended, and run returns the first one's error.
func TestGroupStopsBackwardsOneAtATime(t *testing.T) {
	var (
		mu     sync.Mutex
		events []string
	)
	record := func(e string) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	var g group
	failed := errors.New("failed")
	first := make(chan struct{})
	for _, name := range []string{"a", "b", "c"} {
		stop := make(chan struct{})
		g.add(func() error { <-stop; record(name + " ended"); return nil }, func() { record("stop " + name); close(stop) })
	}
	g.add(func() error { <-first; record("d ended"); return failed }, func() { record("stop d") })
	close(first)
	if err := g.run(); err != failed {
		t.Errorf("run: %v, want the first actor's error", err)
	}
	want := []string{"d ended", "stop d", "stop c", "c ended", "stop b", "b ended", "stop a", "a ended"}
	if !slices.Equal(events, want) {
		t.Errorf("events:\n%q\nwant\n%q", events, want)
	}
}
