package natsapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/natsapi"
)

// Every refused request is a micro service error, as `nats req` and
// generic micro clients read one: the headers Nats-Service-Error and
// Nats-Service-Error-Code (4xx the caller's fault, 5xx the node's) beside
// the JSON body; and `nats micro stats tokens` counts it. A validation's
// {"valid":false} is an answer, not an error.
func TestRefusalsAreServiceErrors(t *testing.T) {
	n := MustServe(t, natstest.MustServer(t), nil)
	n.MustCreate(t, "bob", "deploy", nil)
	for _, tt := range []struct {
		name, subject, body string
		code, status        string
		later               bool // refused after the stream was asked: counted in the endpoint's data
	}{
		{"create: not JSON", "tokens.cmd.create", `{"account":`, events.Invalid, "400", false},
		{"create: invalid account", "tokens.cmd.create", `{"account":"Bob","name":"x"}`, events.Invalid, "400", false},
		{"create: an actor that is not an operator", "tokens.cmd.create", `{"account":"bob","name":"x","actor":{"kind":"account","name":"bob"}}`, events.Invalid, "400", false},
		{"create: duplicate name", "tokens.cmd.create", `{"account":"bob","name":"deploy"}`, events.Duplicate, "409", true},
		{"rename: unknown name", "tokens.cmd.rename", `{"account":"bob","name":"nope","new_name":"x"}`, events.NotFound, "404", true},
		{"revoke: no names", "tokens.cmd.revoke", `{"account":"bob","names":[]}`, events.Invalid, "400", false},
		{"revoke: unknown name", "tokens.cmd.revoke", `{"account":"bob","names":["nope"]}`, events.NotFound, "404", true},
		{"list: not JSON", "tokens.cmd.list", `[]`, events.Invalid, "400", false},
		{"list: invalid account", "tokens.cmd.list", `{"account":"bob.>"}`, events.Invalid, "400", false},
		{"list: after a token that is not listed", "tokens.cmd.list", `{"account":"bob","after":"01KAAAAAAAAAAAAAAAAAAAAAAA","limit":5}`, events.Conflict, "409", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := n.Client.Request(tt.subject, []byte(tt.body), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				OK    *bool  `json:"ok"`
				Code  string `json:"code"`
				Error string `json:"error"`
			}
			if err := json.Unmarshal(msg.Data, &r); err != nil || r.OK == nil || *r.OK || r.Code != tt.code || r.Error == "" {
				t.Fatalf("body %s (%v), want {\"ok\":false,\"code\":%q,\"error\":...}", msg.Data, err, tt.code)
			}
			if have := msg.Header.Get(micro.ErrorCodeHeader); have != tt.status {
				t.Errorf("%s: %q, want %q", micro.ErrorCodeHeader, have, tt.status)
			}
			if have := msg.Header.Get(micro.ErrorHeader); have != r.Error {
				t.Errorf("%s: %q, want the body's error %q", micro.ErrorHeader, have, r.Error)
			}
		})
	}
	if rep := ask(t, n.Client, []byte("garbage")); rep.Valid {
		t.Fatal("garbage validated")
	}

	// Refused before the stream is asked: micro's num_errors. Refused on
	// what the stream holds: the endpoint's data (see natsapi.Service).
	var info micro.Info
	control(t, n.Client, "$SRV.INFO.tokens", &info)
	want := map[string][3]int{ // requests, num_errors, command_errors
		"tokens.validate":   {1, 0, 0},
		"tokens.cmd.create": {4, 3, 1},
		"tokens.cmd.rename": {1, 0, 1},
		"tokens.cmd.revoke": {2, 1, 1},
		"tokens.cmd.list":   {3, 3, 0},
	}
	// micro counts a request once its handler has returned, which is after
	// the reply left: the stats may lag the last reply for a moment.
	var wrong []string
	t.Cleanup(func() {
		if t.Failed() && len(wrong) > 0 {
			t.Logf("the stats, last asked: %v", wrong)
		}
	})
	natstest.Eventually(t, "the service's stats to count every request", func() bool {
		var stats micro.Stats
		control(t, n.Client, "$SRV.STATS.tokens."+info.ID, &stats)
		wrong = wrong[:0]
		seen := map[string]bool{}
		for _, e := range stats.Endpoints {
			w, ok := want[e.Subject]
			if !ok {
				continue
			}
			seen[e.Subject] = true
			var data struct {
				Errors int `json:"command_errors"`
			}
			if len(e.Data) > 0 {
				if err := json.Unmarshal(e.Data, &data); err != nil {
					t.Fatalf("%s: data %s: %v", e.Subject, e.Data, err)
				}
			}
			if have := [3]int{e.NumRequests, e.NumErrors, data.Errors}; have != w {
				wrong = append(wrong, fmt.Sprintf("%s: requests, num_errors, command_errors %v, want %v (%s)", e.Subject, have, w, e.Data))
			}
		}
		for subject := range want {
			if !seen[subject] {
				wrong = append(wrong, "stats lack "+subject)
			}
		}
		return len(wrong) == 0
	})

	// The client still says what went wrong, by code.
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		call func() error
		want string
	}{
		{"create of a taken name", func() error {
			_, err := n.API.Create(ctx, natsapi.CreateRequest{Account: "bob", Name: "deploy"})
			return err
		}, events.Duplicate},
		{"create with a bad name", func() error {
			_, err := n.API.Create(ctx, natsapi.CreateRequest{Account: "bob", Name: "no spaces"})
			return err
		}, events.Invalid},
		{"rename of an unknown name", func() error {
			return n.API.Rename(ctx, natsapi.RenameRequest{Account: "bob", Name: "nope", NewName: "x"})
		}, events.NotFound},
		{"list of an invalid account", func() error { _, err := n.API.List(ctx, "Bob"); return err }, events.Invalid},
	} {
		if err := tt.call(); events.ErrorCode(err) != tt.want {
			t.Errorf("%s: %v, want a %s error", tt.name, err, tt.want)
		}
	}
}

// A command refused as unavailable once the node had begun on it (its
// outcome unknown: say, stored but not yet applied) is not sent again,
// unlike one refused by a node that could not vouch for its table: only
// that one certainly did nothing.
func TestClientSendsAnUnknownOutcomeOnce(t *testing.T) {
	srv := natstest.MustServer(t)
	nc := natstest.MustConnect(t, srv)
	var asked atomic.Int64
	_, err := nc.QueueSubscribe("tokens.cmd.create", natsapi.QueueGroup, func(m *nats.Msg) {
		asked.Add(1)
		reply := nats.NewMsg(m.Reply)
		reply.Header.Set(micro.ErrorHeader, "the change was stored (sequence 7) but this node has not applied it yet")
		reply.Header.Set(micro.ErrorCodeHeader, "503")
		reply.Data = []byte(`{"ok":false,"code":"unavailable","error":"the change was stored (sequence 7) but this node has not applied it yet"}`)
		m.RespondMsg(reply)
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = natsapi.NewClient(natstest.MustConnect(t, srv), "tokens").Create(ctx, natsapi.CreateRequest{Account: "bob", Name: "x"})
	if events.ErrorCode(err) != events.Unavailable || asked.Load() != 1 {
		t.Fatalf("create: %v after %d requests, want unavailable after one", err, asked.Load())
	}
}
