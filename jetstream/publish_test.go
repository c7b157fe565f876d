package jetstream

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"tokenledger/events"
	"tokenledger/internal/natstest"
)

// TestAppendCopiesMeetTheirFirst: appends to a replicated stream whose
// acknowledgements come later than the wait for them (here a millisecond,
// so that most are sent again while the first copy is still being stored)
// each return the sequence of the one event stored. The copy is refused
// while its first is in flight (10164 on a cluster, or 10158) and is asked
// about again until the first's sequence comes back: the single writer
// never meets a conflict, and no event is stored twice.
func TestAppendCopiesMeetTheirFirst(t *testing.T) {
	c := natstest.MustCluster(t)
	s := readStream(t, c.URL(0), 3)
	defer func(was time.Duration) { ackWait = was }(ackWait)
	ackWait = time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var want []uint64
	last := uint64(0)
	for i := range 100 {
		seq, err := s.Append(ctx, "bob", last, []events.Event{revokedEvent("bob", fmt.Sprintf("n%d", i))})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		want = append(want, seq)
		last = seq
	}
	ackWait = 3 * time.Second
	var got []uint64
	if err := s.Read(ctx, events.ReadOptions{Account: "bob"}, func(m events.Msg) error { got = append(got, m.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("bob's events at %v, want each append's sequence once, %v", got, want)
	}
}
