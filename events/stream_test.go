package events_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
	"tokenledger/internal/natstest"
)

func mustStream(t *testing.T) (*events.Stream, jetstream.JetStream) {
	t.Helper()
	js, err := jetstream.New(natstest.MustConnect(t, natstest.MustServer(t)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := events.Ensure(context.Background(), js, events.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return s, js
}

func revoked(account, name string) events.Event {
	return events.Event{ID: events.NewID(), At: time.Now(), Account: account, TokenID: events.NewID(),
		Actor: events.Actor{Kind: events.ActorOperator, Name: "test"}, Data: events.TokenRevoked{Name: name}}
}

func readAll(t *testing.T, s *events.Stream, opts events.ReadOptions) []events.Msg {
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
	js, err := jetstream.New(natstest.MustConnect(t, natstest.MustServer(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bad := events.DefaultConfig().StreamConfig()
	bad.MaxAge = time.Hour
	if _, err := js.CreateStream(ctx, bad); err != nil {
		t.Fatal(err)
	}
	_, err = events.Ensure(ctx, js, events.DefaultConfig())
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
