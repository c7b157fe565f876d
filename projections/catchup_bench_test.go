package projections

import (
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"tokenledger/access"
	"tokenledger/events"
)

// BenchmarkCatchUp is a first catch-up's own work on each event, without
// NATS: its pipeline decodes and digests each batch on every core, applies
// it and keeps each account's tip, for a stream like make bench's (three signed events per
// token: created, renamed, used; a hundred tokens per account). It is the
// share of `ratio rebuild` that is the node's, measured without the
// machine's noise (cpu-ns/event is the figure to compare):
//
//	go test -run '^$' -bench CatchUp -benchmem ./projections
func BenchmarkCatchUp(b *testing.B) {
	const accounts, perAccount = 1_000, 100
	seed, err := access.NewSeed()
	if err != nil {
		b.Fatal(err)
	}
	signer, err := access.NewSigner(seed)
	if err != nil {
		b.Fatal(err)
	}
	actor := events.Actor{Kind: events.ActorOperator, Name: "bench"}
	at := time.Now()
	var stream [][]byte
	for a := range accounts {
		account := fmt.Sprintf("a%05d", a)
		var head events.Hash
		seal := func(e events.Event) {
			e.ID, e.At, e.Account, e.Actor = events.NewID(), at, account, actor
			if _, err := signer.Sign(&e, head); err != nil {
				b.Fatal(err)
			}
			raw, err := events.Encode(e)
			if err != nil {
				b.Fatal(err)
			}
			head = events.Digest(raw)
			stream = append(stream, raw)
		}
		for i := range perAccount {
			id, name := events.NewTokenID(), fmt.Sprintf("token-%d", i)
			seal(events.Event{TokenID: id, Data: events.TokenCreated{Name: name, TokenHash: events.HashSecret(events.NewSecret()), FullAccess: true}})
			seal(events.Event{TokenID: id, Data: events.TokenRenamed{OldName: name, NewName: name + "-renamed"}})
			seal(events.Event{TokenID: id, Data: events.TokenUsed{IP: "192.0.2.1"}})
		}
	}
	f := &Follower{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer debug.SetGCPercent(debug.SetGCPercent(CatchUpGC)) // as Run does
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		// As Run's callback hands the consumer's messages over.
		f.table = NewTable(DefaultWarn)
		c := f.startCatchUp()
		batch := c.emptyBatch()
		for i, raw := range stream {
			batch = append(batch, events.Msg{Seq: uint64(i + 1), Raw: raw})
			if len(batch) == maxBatch || i == len(stream)-1 {
				c.batches <- batch
				batch = c.emptyBatch()
			}
		}
		if tips := c.finish(); len(tips) != accounts || f.table.Applied() != uint64(len(stream)) {
			b.Fatalf("%d tips, applied %d of %d", len(tips), f.table.Applied(), len(stream))
		}
	}
	n := float64(b.N * len(stream))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/event")
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/n, "cpu-ns/event")
}

// cpuTime is the CPU time the process has used: on a machine that is busy
// anyway, as a node catching up is, CPU is what a catch-up costs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
