package natsapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/natsapi"
)

// mustServeReady starts a node's service on s whose readiness the test
// sets, as a node's follower would say whether its table is current.
func mustServeReady(tb testing.TB, s *server.Server, ready *atomic.Bool) *nodetest.Node {
	tb.Helper()
	node := nodetest.MustNode(tb, s, nodetest.Options{})
	svc, err := natsapi.Start(node.Conn, natsapi.Config{Prefix: "tokens", Ledger: node.Ledger, Table: node.Table, Now: time.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "0.0.0-test", Ready: ready.Load})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { svc.Stop() })
	return node
}

// stalled joins the `tokens` queue group on subject and never answers, as a
// member whose process or NATS server is paused; it counts what it gets.
func stalled(tb testing.TB, s *server.Server, subject string) *atomic.Int64 {
	tb.Helper()
	var got atomic.Int64
	nc := natstest.MustConnect(tb, s)
	if _, err := nc.QueueSubscribe(subject, natsapi.QueueGroup, func(*nats.Msg) { got.Add(1) }); err != nil {
		tb.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		tb.Fatal(err)
	}
	return &got
}

func mustCreate(account, name string) commands.Create {
	return commands.Create{Account: account, Name: name, Actor: events.Actor{Kind: events.ActorOperator, Name: "test"}}
}

// A node that cannot vouch for its table answers a validation at once with
// "unavailable", as a service error, and takes no command and no list; it
// never answers from the table meanwhile.
func TestNotCurrentNodeRefuses(t *testing.T) {
	srv := natstest.MustServer(t)
	var ready atomic.Bool
	n := mustServeReady(t, srv, &ready)
	tok, err := n.Ledger.Create(context.Background(), mustCreate("bob", "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	nc := natstest.MustConnect(t, srv)

	msg, err := nc.Request("tokens.validate", jsonBody(tok.Secret, "bob"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "503" {
		t.Errorf("service error code %q, want 503", code)
	}
	var rep natsapi.ValidateReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil || rep.Valid || rep.Reason != natsapi.ReasonUnavailable {
		t.Errorf("validation on a node that is not current: %q, %v; want {\"valid\":false,\"reason\":\"unavailable\"}", msg.Data, err)
	}

	for _, subject := range []string{"tokens.cmd.create", "tokens.cmd.list"} {
		body, _ := json.Marshal(natsapi.CreateRequest{Account: "bob", Name: "other"})
		msg, err := nc.Request(subject, body, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			OK   bool   `json:"ok"`
			Code string `json:"code"`
		}
		if err := json.Unmarshal(msg.Data, &r); err != nil || r.OK || r.Code != events.Unavailable || msg.Header.Get(micro.ErrorCodeHeader) != "503" {
			t.Errorf("%s on a node that is not current: %q %v, %v", subject, msg.Data, msg.Header, err)
		}
	}
	if rows := n.Table.List("bob", time.Now()); len(rows) != 1 {
		t.Fatalf("a node that is not current took a create: %+v", rows)
	}

	// The client says so as an error, not as a refusal of the token.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if rep, err := natsapi.NewClient(nc, "tokens").Validate(ctx, tok.Secret, "bob"); events.ErrorCode(err) != events.Unavailable {
		t.Errorf("client validation with no current node: %+v, %v; want an unavailable error", rep, err)
	}

	ready.Store(true)
	if rep := ask(t, nc, jsonBody(tok.Secret, "bob")); !rep.Valid {
		t.Fatalf("ready again: %+v", rep)
	}
}

// With one member of the queue group not current, every validation and every
// command still reaches the other: the client asks again at once.
func TestClientPassesOverNotCurrentMember(t *testing.T) {
	srv := natstest.MustServer(t)
	var stale, ready atomic.Bool
	ready.Store(true)
	mustServeReady(t, srv, &stale)
	mustServeReady(t, srv, &ready)
	api := natsapi.NewClient(natstest.MustConnect(t, srv), "tokens")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 20 {
		name := fmt.Sprintf("t%d", i)
		tok, err := api.Create(ctx, natsapi.CreateRequest{Account: "bob", Name: name})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		rep, err := api.Validate(ctx, tok.Token, "bob")
		if err != nil || !rep.Valid {
			t.Fatalf("validate %s: %+v, %v", name, rep, err)
		}
	}
}

// A member that stalled takes its share of the requests and answers none.
// Validations and lists are asked again after a short attempt and reach
// another member; a command is sent once, and fails unanswered rather than
// risk being carried out twice.
func TestClientLeavesStalledMember(t *testing.T) {
	srv := natstest.MustServer(t)
	var ready atomic.Bool
	ready.Store(true)
	n := mustServeReady(t, srv, &ready)
	tok, err := n.Ledger.Create(context.Background(), mustCreate("bob", "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	validations := stalled(t, srv, "tokens.validate")
	lists := stalled(t, srv, "tokens.cmd.list")
	api := natsapi.NewClient(natstest.MustConnect(t, srv), "tokens")

	// Until the stalled member has had a few of each, every call is answered.
	// Each attempt that reaches the stalled member costs natsapi.AttemptTimeout;
	// the deadline is for many in a row, as the member is picked at random.
	natstest.EventuallyWithin(t, time.Minute, "the stalled member to have been asked", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rep, err := api.Validate(ctx, tok.Secret, "bob")
		if err != nil || !rep.Valid {
			t.Fatalf("validate with a stalled member in the group: %+v, %v", rep, err)
		}
		rows, err := api.List(ctx, "bob")
		if err != nil || len(rows) != 1 {
			t.Fatalf("list with a stalled member in the group: %+v, %v", rows, err)
		}
		return validations.Load() >= 2 && lists.Load() >= 2
	})

	// A command to a group whose only member stalled is sent once.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	lone := natstest.MustServer(t) // a server where the stalled member is alone
	creates := stalled(t, lone, "tokens.cmd.create")
	_, err = natsapi.NewClient(natstest.MustConnect(t, lone), "tokens").Create(ctx, natsapi.CreateRequest{Account: "bob", Name: "once"})
	if events.ErrorCode(err) != events.Unavailable {
		t.Fatalf("create unanswered: %v, want an unavailable error", err)
	}
	if got := creates.Load(); got != 1 {
		t.Fatalf("the stalled member got the create %d times, want once", got)
	}
}
