package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
	"tokenledger/projections"
)

// sample is a live token whose secret the benchmark kept.
type sample struct {
	Account, Name, Secret string
}

// built is a stream the benchmark wrote.
type built struct {
	Events       int
	Took         time.Duration
	Samples      []sample
	HeapPerToken float64 // bytes of heap a Table holding the stream costs per live token
}

// item is one event as published and as folded into the weighing table.
type item struct {
	msg    *nats.Msg
	event  events.Event
	digest events.Hash
}

// build writes sz.Live tokens straight to the stream, each created and then
// renamed twice, signed and chained as a node would write them, with async
// publishes on nc. Accounts are signed on every core; one publisher keeps each
// account's events in order. It folds the same events into a Table of its
// own, to weigh a table that holds them. The events carry no Nats-Msg-Id:
// the stream is new and each is published once, and three million ids would
// only fill the server's duplicate window.
func build(ctx context.Context, nc *nats.Conn, cfg events.Config, signer *events.Signer, sz size) (built, error) {
	var failed atomic.Int64
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(16384),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
	if err != nil {
		return built{}, err
	}
	perAccount := sz.Live / sz.Accounts
	keep := max(1, 2048/sz.Accounts) // samples per account
	start := time.Now()

	accounts := make(chan int)
	batches := make(chan []item, 64)
	samples := make(chan sample, 4096)
	var workers sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for a := range accounts {
				batch, err := accountEvents(cfg, signer, fmt.Sprintf("a%05d", a), perAccount, keep, samples)
				if err != nil {
					failed.Add(1)
					continue
				}
				batches <- batch
			}
		}()
	}
	go func() {
		defer close(accounts)
		for a := range sz.Accounts {
			select {
			case accounts <- a:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { workers.Wait(); close(batches); close(samples) }()
	var kept []sample
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for s := range samples {
			kept = append(kept, s)
		}
	}()

	runtime.GC()
	table := projections.NewTable(projections.DefaultWarn)
	seq := uint64(0)
	for batch := range batches {
		for _, it := range batch {
			// A loaded machine can keep the window full for a while: wait
			// rather than give up on the default 200 ms.
			if _, err := js.PublishMsgAsync(it.msg, jetstream.WithStallWait(time.Minute)); err != nil {
				return built{}, err
			}
			seq++
			table.Apply(seq, it.event, it.digest)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return built{}, ctx.Err()
	}
	<-collected
	if n := failed.Load(); n > 0 {
		return built{}, fmt.Errorf("building the stream: %d events failed", n)
	}
	took := time.Since(start)
	if ctx.Err() != nil {
		return built{}, ctx.Err()
	}

	// The table's weight: the heap with it, less the heap without it.
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	if table.Applied() != seq {
		return built{}, fmt.Errorf("weighing table applied %d of %d events", table.Applied(), seq)
	}
	table = nil
	runtime.GC()
	runtime.ReadMemStats(&without)
	return built{Events: int(seq), Took: took, Samples: kept,
		HeapPerToken: float64(int64(with.HeapAlloc)-int64(without.HeapAlloc)) / float64(perAccount*sz.Accounts)}, nil
}

// benchFeatures are the features of every token the benchmark writes, and
// benchFeature the one its validations ask for: the validate ratio measures
// the feature check, which a service that validates over NATS makes.
var benchFeatures = []string{"apitokens", benchFeature, "ftpaccts"} // sorted, as events carry them

const benchFeature = "email"

// accountEvents makes n limited tokens of account (benchFeatures), three
// events each, and sends the first keep of them to samples.
func accountEvents(cfg events.Config, signer *events.Signer, account string, n, keep int, samples chan<- sample) ([]item, error) {
	actor := events.Actor{Kind: events.ActorOperator, Name: "tokenbench"}
	far := time.Now().Add(365 * 24 * time.Hour).Unix()
	var head events.Hash
	out := make([]item, 0, 3*n)
	for i := range n {
		secret, tokenID := events.NewSecret(), events.NewTokenID()
		created := events.TokenCreated{Name: fmt.Sprintf("t%d", i), TokenHash: events.HashSecret(secret), Features: benchFeatures}
		if i%4 == 0 {
			created.ExpiresAt = &far
		}
		for _, data := range []events.Data{
			created,
			events.TokenRenamed{OldName: fmt.Sprintf("t%d", i), NewName: fmt.Sprintf("u%d", i)},
			events.TokenRenamed{OldName: fmt.Sprintf("u%d", i), NewName: fmt.Sprintf("v%d", i)},
		} {
			e := events.Event{ID: events.NewID(), At: time.Now(), Account: account, TokenID: tokenID, Actor: actor, Data: data}
			var err error
			if head, err = signer.Sign(&e, head); err != nil {
				return nil, err
			}
			raw, err := events.Encode(e)
			if err != nil {
				return nil, err
			}
			m := nats.NewMsg(cfg.Subject(account, tokenID.String()))
			m.Data = raw
			out = append(out, item{msg: m, event: e, digest: head})
		}
		if i < keep {
			samples <- sample{Account: account, Name: fmt.Sprintf("v%d", i), Secret: secret}
		}
	}
	return out, nil
}
