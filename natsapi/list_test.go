package natsapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/natsapi"
)

// An account of 10,000 tokens, twice what one NATS message holds: the client
// lists them all, a page at a time; a request in the form before paging is
// refused with a reason and a log line rather than left unanswered.
func TestListManyTokens(t *testing.T) {
	srv := natstest.MustServer(t)
	node := nodetest.MustNode(t, srv, nodetest.Options{})
	var logs nodetest.Buffer
	svc, err := natsapi.Start(node.Conn, natsapi.Config{Prefix: "tokens", Ledger: node.Ledger, Table: node.Table, Now: time.Now,
		Log: slog.New(slog.NewTextHandler(&logs, nil)), Version: "0.0.0-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	nc := natstest.MustConnect(t, srv)
	api := natsapi.NewClient(nc, "tokens")

	const many = 10000
	ctx := context.Background()
	names := make([]string, many)
	for i := range names {
		names[i] = fmt.Sprintf("token-%05d", i)
	}
	mustCreateMany(t, node, "big", names)
	start := time.Now()

	// What tokenledger list does.
	all, err := api.List(ctx, "big")
	if err != nil {
		t.Fatalf("list of %d tokens: %v", many, err)
	}
	if len(all) != many {
		t.Fatalf("list: %d tokens, want %d", len(all), many)
	}
	for i, tok := range all {
		if want := fmt.Sprintf("token-%05d", i); tok.Name != want {
			t.Fatalf("token %d is %s, want %s: oldest first, each once", i, tok.Name, want)
		}
	}
	t.Logf("listed in %v", time.Since(start))

	// The form before paging: too much for one message, so refused, and said.
	body, _ := json.Marshal(natsapi.ListRequest{Account: "big"})
	msg, err := nc.Request("tokens.cmd.list", body, 10*time.Second)
	if err != nil {
		t.Fatalf("list without paging: %v (unanswered?)", err)
	}
	var r struct {
		OK    bool   `json:"ok"`
		Code  string `json:"code"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &r); err != nil || r.OK || r.Code != events.Invalid || !strings.Contains(r.Error, "ask for pages") ||
		msg.Header.Get(micro.ErrorCodeHeader) != "400" {
		t.Fatalf("list without paging of %d tokens: %s %v, %v", many, msg.Data, msg.Header, err)
	}
	if !strings.Contains(logs.String(), "list refused") || !strings.Contains(logs.String(), "account=big") {
		t.Fatalf("no log line for the refused list:\n%s", logs.String())
	}

	// A page asked for more than one message holds stops short and says where to go on.
	body, _ = json.Marshal(natsapi.ListRequest{Account: "big", Limit: many})
	msg, err = nc.Request("tokens.cmd.list", body, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		OK     bool                `json:"ok"`
		Tokens []natsapi.TokenInfo `json:"tokens"`
		Next   string              `json:"next"`
	}
	if err := json.Unmarshal(msg.Data, &page); err != nil || !page.OK || len(page.Tokens) == 0 || len(page.Tokens) >= many ||
		page.Next != page.Tokens[len(page.Tokens)-1].TokenID || int64(len(msg.Data)) > nc.MaxPayload() {
		t.Fatalf("a page of at most %d: %d tokens, next %q, %d bytes, %v", many, len(page.Tokens), page.Next, len(msg.Data), err)
	}
	t.Logf("one message holds %d tokens (%d bytes)", len(page.Tokens), len(msg.Data))

	// A small account answers the old form as before: every token, no cursor.
	if _, err := node.Ledger.Create(ctx, mustCreate("small", "only")); err != nil {
		t.Fatal(err)
	}
	body, _ = json.Marshal(natsapi.ListRequest{Account: "small"})
	if msg, err = nc.Request("tokens.cmd.list", body, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := string(msg.Data); !strings.HasPrefix(got, `{"ok":true,"tokens":[{"name":"only",`) || strings.Contains(got, `"next"`) {
		t.Fatalf("list of a small account in the old form: %s", got)
	}
}

// mustCreateMany stores a create of each name in account, as the node's
// ledger would (signed, chained, with the account's concurrency check), but
// several hundred to a JetStream atomic batch, and waits until the node's
// table holds them all: one append per create, 10,000 of them take half a
// minute under the race detector.
func mustCreateMany(tb testing.TB, node *nodetest.Node, account string, names []string) {
	tb.Helper()
	ctx := context.Background()
	actor := events.Actor{Kind: events.ActorOperator, Name: "test"}
	var (
		head events.Hash
		seq  uint64
	)
	for len(names) > 0 {
		batch := names[:min(500, len(names))]
		names = names[len(batch):]
		evs := make([]events.Event, len(batch))
		for i, name := range batch {
			evs[i] = events.Event{ID: events.NewID(), At: time.Now(), Account: account, TokenID: events.NewTokenID(), Actor: actor,
				Data: events.TokenCreated{Name: name, TokenHash: events.HashSecret(events.NewSecret()), FullAccess: true}}
			var err error
			if head, err = node.Signer.Sign(&evs[i], head); err != nil {
				tb.Fatal(err)
			}
		}
		var err error
		if seq, err = node.Stream.Append(ctx, account, seq, evs); err != nil {
			tb.Fatal(err)
		}
	}
	if err := node.Table.WaitApplied(ctx, seq); err != nil {
		tb.Fatal(err)
	}
}

// Paging follows the account as it changes: a token created meanwhile comes
// on a later page; when the token a page ended with is revoked before the
// next page is asked for, that page is refused as a conflict, and the client
// starts again rather than skip or repeat a token.
func TestListPagesWhileTheAccountChanges(t *testing.T) {
	n := MustServe(t, natstest.MustServer(t), nil)
	for _, name := range []string{"a", "b", "c", "d"} {
		n.MustCreate(t, "bob", name, nil)
	}
	ctx := context.Background()
	first, next, err := n.API.ListPage(ctx, natsapi.ListRequest{Account: "bob", Limit: 2})
	if err != nil || len(first) != 2 || first[0].Name != "a" || first[1].Name != "b" || next != first[1].TokenID {
		t.Fatalf("first page: %+v, next %q, %v", first, next, err)
	}
	n.MustCreate(t, "bob", "e", nil)
	rest, last, err := n.API.ListPage(ctx, natsapi.ListRequest{Account: "bob", After: next, Limit: 10})
	if err != nil || len(rest) != 3 || rest[0].Name != "c" || rest[2].Name != "e" || last != "" {
		t.Fatalf("second page: %+v, next %q, %v", rest, last, err)
	}

	// Only the cursor as a reply wrote it names a token: the same id in lower
	// case names none, as when cursors were compared as text.
	if _, _, err := n.API.ListPage(ctx, natsapi.ListRequest{Account: "bob", After: strings.ToLower(next), Limit: 2}); events.ErrorCode(err) != events.Conflict {
		t.Fatalf("a page after a cursor in lower case: %v, want a conflict", err)
	}
	n.MustRevoke(t, "bob", "b")
	if _, _, err := n.API.ListPage(ctx, natsapi.ListRequest{Account: "bob", After: next, Limit: 2}); events.ErrorCode(err) != events.Conflict ||
		!strings.Contains(err.Error(), "from the start") {
		t.Fatalf("a page after a revoked token: %v, want a conflict that says to start again", err)
	}
	all, err := n.API.List(ctx, "bob")
	if err != nil || len(all) != 4 {
		t.Fatalf("list: %+v, %v", all, err)
	}
	for _, tt := range []struct {
		name string
		req  natsapi.ListRequest
	}{
		{"a negative limit", natsapi.ListRequest{Account: "bob", Limit: -1}},
		{"a cursor that is no token id", natsapi.ListRequest{Account: "bob", After: strings.Repeat("x", 100)}},
	} {
		if _, _, err := n.API.ListPage(ctx, tt.req); events.ErrorCode(err) != events.Invalid {
			t.Errorf("%s: %v, want invalid", tt.name, err)
		}
	}
}
