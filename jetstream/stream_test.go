package jetstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/jetstream"
)

func mustStream(t *testing.T) (*jetstream.Stream, natsjs.JetStream) {
	t.Helper()
	js, err := natsjs.New(natstest.MustConnect(t, natstest.MustServer(t)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jetstream.Ensure(context.Background(), js, events.DefaultConfig(), jetstream.Seen{})
	if err != nil {
		t.Fatal(err)
	}
	return s, js
}

func revoked(account, name string) events.Event {
	return events.Event{ID: events.NewID(), At: time.Now(), Account: account, TokenID: events.NewTokenID(),
		Actor: events.Actor{Kind: events.ActorOperator, Name: "test"}, Data: events.TokenRevoked{Name: name}}
}

func readAll(t *testing.T, s *jetstream.Stream, opts events.ReadOptions) []events.Msg {
	t.Helper()
	var out []events.Msg
	if err := s.Read(context.Background(), opts, func(m events.Msg) error { out = append(out, m); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStreamIsAppendOnly(t *testing.T) {
	s, js := mustStream(t)
	ctx := context.Background()
	if _, err := s.Append(ctx, "bob", 0, []events.Event{revoked("bob", "a")}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "TOKENS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if !cfg.DenyDelete || !cfg.DenyPurge || cfg.MaxMsgs > 0 || cfg.MaxBytes > 0 || cfg.MaxAge > 0 || cfg.Subjects[0] != "tokens.events.>" {
		t.Fatalf("stream config is not append-only: %+v", cfg)
	}
	if err := st.DeleteMsg(ctx, 1); err == nil {
		t.Fatal("deleting an event worked")
	}
	if err := st.Purge(ctx); err == nil {
		t.Fatal("purging the stream worked")
	}
}

func TestEnsureRefusesIncompatibleStream(t *testing.T) {
	js, err := natsjs.New(natstest.MustConnect(t, natstest.MustServer(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bad := jetstream.StreamConfig(events.DefaultConfig())
	bad.MaxAge = time.Hour
	if _, err := js.CreateStream(ctx, bad); err != nil {
		t.Fatal(err)
	}
	_, err = jetstream.Ensure(ctx, js, events.DefaultConfig(), jetstream.Seen{})
	if err == nil || !strings.Contains(err.Error(), "limits that discard events") {
		t.Fatalf("Ensure on a stream with MaxAge = %v, want a refusal naming the limits", err)
	}
	st, _ := js.Stream(ctx, "TOKENS")
	if st.CachedInfo().Config.MaxAge != time.Hour {
		t.Fatal("Ensure changed the existing stream")
	}
}

func TestAppendChecksTheAccountsLastSequence(t *testing.T) {
	s, _ := mustStream(t)
	ctx := context.Background()
	seq, err := s.Append(ctx, "bob", 0, []events.Event{revoked("bob", "a")})
	if err != nil || seq != 1 {
		t.Fatalf("first append: %d, %v", seq, err)
	}
	// Another account does not move bob's sequence.
	if _, err := s.Append(ctx, "carol", 0, []events.Event{revoked("carol", "a")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "bob", 0, []events.Event{revoked("bob", "b")}); events.ErrorCode(err) != events.Conflict {
		t.Fatalf("stale append: %v, want conflict", err)
	}
	if seq, err := s.Append(ctx, "bob", 1, []events.Event{revoked("bob", "b")}); err != nil || seq != 3 {
		t.Fatalf("current append: %d, %v", seq, err)
	}
}

func TestAppendBatchIsAllOrNothing(t *testing.T) {
	s, _ := mustStream(t)
	ctx := context.Background()
	batch := []events.Event{revoked("bob", "a"), revoked("bob", "b"), revoked("bob", "c")}
	if _, err := s.Append(ctx, "bob", 7, batch); events.ErrorCode(err) != events.Conflict {
		t.Fatalf("stale batch: %v, want conflict", err)
	}
	if got := readAll(t, s, events.ReadOptions{}); len(got) != 0 {
		t.Fatalf("a refused batch left %d events", len(got))
	}
	seq, err := s.Append(ctx, "bob", 0, batch)
	if err != nil || seq != 3 {
		t.Fatalf("batch: %d, %v", seq, err)
	}
	got := readAll(t, s, events.ReadOptions{Account: "bob"})
	if len(got) != 3 || got[2].Event.Data.(events.TokenRevoked).Name != "c" {
		t.Fatalf("read back %+v", got)
	}
}

func TestAppendIsDeduplicatedByEventID(t *testing.T) {
	s, _ := mustStream(t)
	ctx := context.Background()
	e := revoked("bob", "a")
	if _, err := s.Append(ctx, "bob", 0, []events.Event{e}); err != nil {
		t.Fatal(err)
	}
	// A retry of the same event after a lost acknowledgement is stored once:
	// the account's sequence has moved, so the check refuses it (the caller
	// then finds its event on the stream), and with a current sequence the
	// Msg-Id drops it.
	if _, err := s.Append(ctx, "bob", 0, []events.Event{e}); events.ErrorCode(err) != events.Conflict {
		t.Fatalf("retry with the old sequence: %v, want conflict", err)
	}
	seq, err := s.Append(ctx, "bob", 1, []events.Event{e})
	if err != nil || seq != 1 {
		t.Fatalf("retry with the current sequence: %d, %v; want the first sequence back", seq, err)
	}
	if n := len(readAll(t, s, events.ReadOptions{})); n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
}

func TestRead(t *testing.T) {
	s, _ := mustStream(t)
	ctx := context.Background()
	for i, acc := range []string{"bob", "carol", "bob", "dave"} {
		last, _ := s.LastSeq(ctx, acc)
		if _, err := s.Append(ctx, acc, last, []events.Event{revoked(acc, "n"+string(rune('a'+i)))}); err != nil {
			t.Fatal(err)
		}
	}
	if got := readAll(t, s, events.ReadOptions{Account: "bob"}); len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 3 {
		t.Fatalf("bob's events: %+v", got)
	}
	if got := readAll(t, s, events.ReadOptions{AfterSeq: 2}); len(got) != 2 || got[0].Seq != 3 {
		t.Fatalf("after 2: %+v", got)
	}
	if got := readAll(t, s, events.ReadOptions{Account: "erin"}); len(got) != 0 {
		t.Fatalf("erin has no events: %+v", got)
	}
	if got := readAll(t, s, events.ReadOptions{Since: time.Now().Add(time.Hour)}); len(got) != 0 {
		t.Fatalf("nothing after an hour from now: %+v", got)
	}
	if got := readAll(t, s, events.ReadOptions{Since: time.Now().Add(-time.Hour)}); len(got) != 4 {
		t.Fatalf("everything since an hour ago: %d", len(got))
	}
	if last, err := s.LastSeq(ctx, "bob"); err != nil || last != 3 {
		t.Fatalf("bob's last: %d, %v", last, err)
	}
}

// TestEnsureRefusesALostHistory: a node that has seen the stream up to some
// sequence, by its own record or by the newest snapshot beside the stream,
// never starts over a stream that is missing (and never creates one in its
// place), shorter than it saw, or no longer starting at 1.
func TestEnsureRefusesALostHistory(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name     string
		events   int    // appended to a stream made before Ensure; -1: no stream
		firstSeq uint64 // of that stream
		snapshot uint64 // the seq of a snapshot beside the stream; 0: none
		seen     jetstream.Seen
		code     string
		want     []string // in the message
	}{
		{"missing", -1, 0, 0, jetstream.Seen{Seq: 5, File: "data/stream.seen"}, events.NotFound,
			[]string{"stream TOKENS is missing, but this node has seen its history up to sequence 5: someone deleted it; restore the stream from a backup", "remove data/stream.seen"}},
		{"missing, a snapshot saw it", -1, 0, 7, jetstream.Seen{}, events.NotFound,
			[]string{"stream TOKENS is missing, but its newest snapshot (bucket TOKENS_SNAPSHOTS) covers its history up to sequence 7", "delete the bucket TOKENS_SNAPSHOTS"}},
		{"shorter", 2, 0, 0, jetstream.Seen{Seq: 5, File: "data/stream.seen"}, events.Conflict,
			[]string{"stream TOKENS ends at sequence 2, but this node has seen its history up to sequence 5", "remove data/stream.seen"}},
		{"not from 1", 0, 10, 0, jetstream.Seen{}, events.Conflict,
			[]string{"stream TOKENS starts at sequence 10, not 1: its first events were purged or deleted"}},
		{"all there", 5, 0, 0, jetstream.Seen{Seq: 5}, "", nil},
		{"new", -1, 0, 0, jetstream.Seen{}, "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			js, err := natsjs.New(natstest.MustConnect(t, natstest.MustServer(t)))
			if err != nil {
				t.Fatal(err)
			}
			if tt.events >= 0 {
				sc := jetstream.StreamConfig(events.DefaultConfig())
				sc.FirstSeq = tt.firstSeq
				if _, err := js.CreateStream(ctx, sc); err != nil {
					t.Fatal(err)
				}
				for i := range tt.events {
					if _, err := js.Publish(ctx, events.DefaultConfig().Subject("bob", fmt.Sprint(i)), []byte("x")); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tt.snapshot > 0 {
				store, err := js.CreateObjectStore(ctx, natsjs.ObjectStoreConfig{Bucket: "TOKENS_SNAPSHOTS"})
				if err != nil {
					t.Fatal(err)
				}
				meta := natsjs.ObjectMeta{Name: "table", Metadata: map[string]string{"seq": fmt.Sprint(tt.snapshot)}}
				if _, err := store.Put(ctx, meta, strings.NewReader("")); err != nil {
					t.Fatal(err)
				}
			}
			_, err = jetstream.Ensure(ctx, js, events.DefaultConfig(), tt.seen)
			if code := events.ErrorCode(err); code != tt.code {
				t.Fatalf("Ensure: %v (%q), want code %q", err, code, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Ensure: %q, want it to say %q", err, w)
				}
			}
			_, serr := js.Stream(ctx, "TOKENS")
			if created := serr == nil; tt.events < 0 && created != (tt.code == "") {
				t.Fatalf("after Ensure (%v), the stream exists: %v", err, created)
			}
		})
	}
}

// TestCheckSaysWhatChanged: Check reads the stream as it is, without
// creating or changing it, and says what is wrong with a code.
func TestCheckSaysWhatChanged(t *testing.T) {
	s, js := mustStream(t)
	ctx := context.Background()
	if _, err := s.Append(ctx, "bob", 0, []events.Event{revoked("bob", "a")}); err != nil {
		t.Fatal(err)
	}
	if last, err := s.Check(ctx, 1); err != nil || last != 1 {
		t.Fatalf("Check: %d, %v; want 1, nil", last, err)
	}
	if _, err := s.Check(ctx, 2); events.ErrorCode(err) != events.Conflict || !strings.Contains(err.Error(), "ends at sequence 1, but this node has seen its history up to sequence 2") {
		t.Fatalf("Check past the end: %v, want a conflict", err)
	}
	sc := jetstream.StreamConfig(events.DefaultConfig())
	sc.MaxAge = time.Hour
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(ctx, 1); events.ErrorCode(err) != events.Invalid || !strings.Contains(err.Error(), "limits that discard events") {
		t.Fatalf("Check with MaxAge: %v, want invalid", err)
	}
	if err := js.DeleteStream(ctx, "TOKENS"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(ctx, 1); events.ErrorCode(err) != events.NotFound || !strings.Contains(err.Error(), "stream TOKENS is missing") {
		t.Fatalf("Check of a deleted stream: %v, want not found", err)
	}
	if _, err := js.Stream(ctx, "TOKENS"); !errors.Is(err, natsjs.ErrStreamNotFound) {
		t.Fatalf("after Check, the stream: %v, want still missing", err)
	}
}

// BenchmarkAppend: the cost of one append, a create's (one event) and a
// revoke of several names' (an atomic batch), on one embedded server:
// go test -run '^$' -bench Append ./jetstream
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 2, 10} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			js, err := natsjs.New(natstest.MustConnect(b, natstest.MustServer(b)))
			if err != nil {
				b.Fatal(err)
			}
			s, err := jetstream.Ensure(context.Background(), js, events.DefaultConfig(), jetstream.Seen{})
			if err != nil {
				b.Fatal(err)
			}
			var last uint64
			for b.Loop() {
				batch := make([]events.Event, n)
				for i := range batch {
					batch[i] = revoked("bob", fmt.Sprint("n", i))
				}
				if last, err = s.Append(context.Background(), "bob", last, batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAppendStoresTheSealedBytes: a signed event is stored as the bytes Sign
// sealed, not encoded again, and those are what Encode gives for it.
func TestAppendStoresTheSealedBytes(t *testing.T) {
	s, _ := mustStream(t)
	signer := nodetest.SharedSigner(t)
	e := revoked("bob", "a")
	if _, err := signer.Sign(&e, events.Hash{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), "bob", 0, []events.Event{e}); err != nil {
		t.Fatal(err)
	}
	want, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, s, events.ReadOptions{Account: "bob"})
	if len(got) != 1 {
		t.Fatalf("read back %d events", len(got))
	}
	if !bytes.Equal(got[0].Raw, e.Sealed()) || !bytes.Equal(got[0].Raw, want) {
		t.Fatalf("stored %s\nsealed %s\nEncode gives %s", got[0].Raw, e.Sealed(), want)
	}
}
