package projections

import (
	"context"
	"time"

	"tokenledger/events"
)

// A node answers from memory, and a table that silently stopped following
// the stream would go on saying "valid" for a token revoked meanwhile: a
// node whose NATS server stalled (SIGSTOP, a hung disk, a partition) did so
// for 13 to 17 s, and a node that was itself frozen answered from a table
// 12 s old when it woke. So a follower with MaxStaleness is ready only while
// its latest proof of being current is younger than that.
//
// A proof is a round trip timed from its start: vouch notes the time, asks
// the stream for its last sequence, and once the table has applied that
// sequence, the table held at that moment every event stored before the time
// noted. The stream leader answers the question (it stores a write before it
// acknowledges it), so the answer covers every acknowledged revoke. A
// message's arrival would not do: a message or an idle heartbeat that waited
// in a socket while the process was frozen says nothing of the time it is
// read at.

// Origin is the stream whose last sequence proves the table current, when
// it is not the one followed: a regional node follows a mirror, which may lag
// the hub's stream it copies, so its proof asks the hub. While the hub is
// unreachable there is no proof, and MaxStaleness later the node stops
// answering.
//
// An origin is also read: a mirror may lag its origin for long after a
// link returns (nats-server gives a mirror whose consumer request went
// unanswered during an outage 30 s before it asks again), so a caught-up
// follower whose mirror lags takes the missing events straight from the
// origin, ahead of the mirror (Table.ApplyOwn, as a command's own events
// are), and a revoke made during the outage is refused as soon as the
// origin answers.
type Origin interface {
	LastSeq(ctx context.Context, account string) (uint64, error)
	Read(ctx context.Context, opts events.ReadOptions, fn func(events.Msg) error) error
}

// mirrorWait is how long a proof against an origin waits for the mirror to
// bring what the origin holds before it reads the gap from the origin.
const mirrorWait = 250 * time.Millisecond

// originEvery is the most time between proofs against an origin: the
// region learns this soon that its link returned.
const originEvery = 250 * time.Millisecond

// originWait is the least time a proof against an origin may take: the
// origin is across a WAN, and its answer, the mirror's delivery or the read
// of a gap each cross it. A proof counts from when it was asked, so a slow
// one is no weaker, only later.
const originWait = 2 * time.Second

// proveWait is how long one proof may take.
func (f *Follower) proveWait(every time.Duration) time.Duration {
	if f.Origin != nil {
		return max(2*every, originWait)
	}
	return 2 * every
}

// proveAgainstOrigin is prove for a follower of a mirror (see Origin).
func (f *Follower) proveAgainstOrigin(ctx context.Context) bool {
	last, err := f.Origin.LastSeq(ctx, "")
	if err != nil {
		return false
	}
	wctx, cancel := context.WithTimeout(ctx, mirrorWait)
	err = f.table.WaitApplied(wctx, last)
	cancel()
	if err == nil {
		return true
	}
	f.mu.Lock()
	caughtUp := f.caughtUp
	f.mu.Unlock()
	if !caughtUp { // the first catch-up from the mirror goes first
		return f.table.WaitApplied(ctx, last) == nil
	}
	err = f.Origin.Read(ctx, events.ReadOptions{AfterSeq: f.table.held()}, func(m events.Msg) error {
		if m.Seq > last {
			return nil
		}
		m.Decode()
		if m.Err != nil || (!f.table.vouchedFor(m.Digest) && f.trust.Verify(m.Raw, m.Event) != nil) {
			return nil // the mirror brings it, and the follower raises the alert
		}
		f.table.ApplyOwn(m.Seq, m.Event, m.Digest)
		return nil
	})
	return err == nil && f.table.held() >= last
}

// held is the sequence up to which the table holds every event: applied,
// or applied ahead of the stream without a gap.
func (t *Table) held() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s := t.applied
	for {
		if _, ok := t.ahead[s+1]; !ok {
			return s
		}
		s++
	}
}

// fresh says whether the latest proof is younger than MaxStaleness at now,
// by the monotonic clock and by the wall clock: the monotonic clock stands
// still while a machine is suspended, the wall clock may be stepped, and a
// proof counts only while both say it is young. Without MaxStaleness every
// table is fresh.
func (f *Follower) fresh(now time.Time) bool {
	if f.MaxStaleness <= 0 {
		return true
	}
	p := f.proof.Load()
	return p != nil && now.Sub(*p) < f.MaxStaleness && now.Round(0).Sub(p.Round(0)) < f.MaxStaleness
}

// Staleness is the age of the table's latest proof of being current (see
// vouch), or how long the follower has run without one: what /metrics shows
// beside MaxStaleness. Of the two clocks, it gives the older age.
func (f *Follower) Staleness() time.Duration {
	p := f.proof.Load()
	if p == nil {
		p = &f.made
	}
	now := time.Now()
	return max(now.Sub(*p), now.Round(0).Sub(p.Round(0)))
}

// vouchEvery is how often vouch looks for a proof: a fifth of MaxStaleness,
// at most a second, so that one or two lost answers (a request in flight on
// a server that went away) do not let the bound lapse.
func (f *Follower) vouchEvery() time.Duration {
	if f.Origin != nil {
		return max(min(f.MaxStaleness/5, originEvery), 10*time.Millisecond)
	}
	return max(min(f.MaxStaleness/5, time.Second), 10*time.Millisecond)
}

// vouch looks for proofs that the table is current until ctx ends, one at a
// time: each vouchEvery, and at once when the table has caught up. Each
// proof moves the moment at which the table turns stale; a timer then
// takes readiness away, so that the `tokens` service leaves the queue group,
// and Ready's own look at the clock covers the moments before it fires.
func (f *Follower) vouch(ctx context.Context) {
	every := f.vouchEvery()
	stale := time.AfterFunc(f.MaxStaleness, f.refresh)
	defer stale.Stop()
	for {
		asked := time.Now()
		if f.prove(ctx, asked, f.proveWait(every)) {
			f.proof.Store(&asked)
			stale.Reset(f.MaxStaleness - time.Since(asked))
			f.refresh()
		}
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		case <-time.After(every - time.Since(asked)):
		}
	}
}

// prove asks the stream for its last sequence and waits until the table has
// applied it, for at most wait: true when the table then held every event
// stored before asked.
func (f *Follower) prove(ctx context.Context, asked time.Time, wait time.Duration) bool {
	ctx, cancel := context.WithDeadline(ctx, asked.Add(wait))
	defer cancel()
	if f.Origin != nil {
		return f.proveAgainstOrigin(ctx)
	}
	last, err := f.src.LastSeq(ctx, "")
	if err != nil {
		return false
	}
	return f.table.WaitApplied(ctx, last) == nil
}

// refresh looks at the freshness again, for readiness and the log.
func (f *Follower) refresh() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.update()
}
