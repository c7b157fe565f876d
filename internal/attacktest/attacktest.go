// Package attacktest plays the hostile clients of a shared hosting server
// against a NATS that keeps a ledger: no credentials at all, then each role's
// credentials trying what that role must not do. The server must refuse every
// act, and the stream must be as it was afterwards. The embedded default and
// the cluster layout in deploy/ are held to this one suite.
package attacktest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/internal/natstest"
	"tokenledger/natsapi"
)

// Target is a NATS with a ledger node serving on it.
type Target struct {
	// Connect connects as role, or with no credentials when role is "".
	Connect func(role string, opts ...nats.Option) (*nats.Conn, error)
	// Roles are the roles the target defines; each is attacked.
	Roles []string
	// Serves says which roles take the service's requests (subscribe to
	// tokens.validate and tokens.cmd.>): the embedded node's service
	// identity, a cluster's node user.
	Serves []string
}

const (
	stream = "TOKENS"
	prefix = "tokens"
)

// Run plays every attack against t's target.
func Run(t *testing.T, tg Target) {
	t.Helper()
	if nc, err := tg.Connect(""); err == nil {
		nc.Close()
		t.Fatal("a connection without credentials was let in")
	}
	operator := mustConnect(t, tg, access.Operator, nil)
	api := natsapi.NewClient(operator.nc, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Something on the stream to erase, and a secret to steal.
	if _, err := api.Create(ctx, natsapi.CreateRequest{Account: "victim", Name: "before"}); err != nil {
		t.Fatalf("the operator's create: %v", err)
	}
	before := natstest.MustStreamInfo(t, operator.nc, stream)

	for _, role := range tg.Roles {
		t.Run(role, func(t *testing.T) {
			c := mustConnect(t, tg, role, nil)
			for _, subject := range forbiddenSubscriptions(role, tg) {
				if _, err := c.nc.Subscribe(subject, func(m *nats.Msg) { c.got(m) }); err != nil {
					t.Fatal(err)
				}
				c.refused(t, "subscribe", subject)
			}
			for _, a := range forbiddenPublishes(role, tg) {
				if err := c.nc.PublishRequest(a.subject, c.nc.NewRespInbox(), a.body); err != nil {
					t.Fatal(err)
				}
				c.refused(t, "publish", a.subject)
			}
			// With its refused subscriptions in place, a create by the
			// operator sends this role nothing: not the reply with the
			// secret, not the request.
			tok, err := api.Create(ctx, natsapi.CreateRequest{Account: "victim", Name: "while-" + role})
			if err != nil {
				t.Fatalf("the operator's create: %v", err)
			}
			if err := c.nc.Flush(); err != nil {
				t.Fatal(err)
			}
			if msgs := c.received(); len(msgs) > 0 {
				t.Fatalf("%s received %d messages, the first on %s: %q", role, len(msgs), msgs[0].Subject, msgs[0].Data)
			}
			_ = tok
		})
	}

	after := natstest.MustStreamInfo(t, operator.nc, stream)
	if after.Config.MaxAge != before.Config.MaxAge || !after.Config.DenyDelete || !after.Config.DenyPurge ||
		after.State.FirstSeq != before.State.FirstSeq || after.State.Msgs < before.State.Msgs {
		t.Fatalf("the stream changed under the attacks: before %+v %+v, after %+v %+v", before.Config, before.State, after.Config, after.State)
	}

	// What each role is there for still works: a suite that refused
	// everything would pass the checks above.
	t.Run("allowed", func(t *testing.T) {
		v := mustConnect(t, tg, access.Validator, nil)
		rep, err := natsapi.NewClient(v.nc, prefix).Validate(ctx, "NOT-A-TOKEN", "")
		if err != nil || rep.Valid {
			t.Fatalf("the validator's validation: %+v, %v", rep, err)
		}
		a := mustConnect(t, tg, access.Auditor, nil)
		js, err := jetstream.New(a.nc)
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("the auditor's stream info: %v", err)
		}
		if _, err := s.GetLastMsgForSubject(ctx, prefix+".events.victim.*"); err != nil {
			t.Fatalf("the auditor's read: %v", err)
		}
		if rows, err := api.List(ctx, "victim"); err != nil || len(rows) == 0 {
			t.Fatalf("the operator's list: %v, %v", rows, err)
		}
		if got := a.violations(); len(got) > 0 {
			t.Fatalf("allowed acts were refused: %v", got)
		}
	})
}

// forbiddenSubscriptions are what role must not hear: everything, the
// ledger's subjects, the shared inbox and every other role's inbox; the
// service's requests, unless role serves them.
func forbiddenSubscriptions(role string, tg Target) []string {
	subs := []string{">", prefix + ".>", prefix + ".events.>", "_INBOX.>", "$JS.>", "$JS.API.>"}
	for _, other := range access.Roles {
		if other != role {
			subs = append(subs, access.InboxPrefix(other)+".>")
		}
	}
	if !contains(tg.Serves, role) {
		subs = append(subs, prefix+".validate", prefix+".cmd.>", prefix+".cmd.create", "$SRV.>")
	}
	return subs
}

type act struct {
	subject string
	body    []byte
}

// forbiddenPublishes are what role must not do: erase or change the stream
// (no role may), and, unless it is the node, append to it or give commands
// it is not meant to.
func forbiddenPublishes(role string, tg Target) []act {
	shorten, _ := json.Marshal(map[string]any{"name": stream, "subjects": []string{prefix + ".events.>"}, "max_age": int64(time.Second), "storage": "file"})
	acts := []act{
		{"$JS.API.STREAM.DELETE." + stream, nil},
		{"$JS.API.STREAM.PURGE." + stream, nil},
		{"$JS.API.STREAM.UPDATE." + stream, shorten},
		{"$JS.API.STREAM.MSG.DELETE." + stream, []byte(`{"seq":1}`)},
		{"$JS.API.STREAM.MSG.DELETE." + stream, []byte(`{"seq":1,"no_erase":true}`)},
		{"$JS.API.STREAM.SNAPSHOT." + stream, []byte(`{"deliver_subject":"x"}`)},
		{"$JS.API.CONSUMER.DURABLE.CREATE." + stream + ".evil", nil},
	}
	if role != access.Node {
		acts = append(acts, act{prefix + ".events.victim.01JD0000000000000000000001", []byte(`{"v":1}`)})
		acts = append(acts, act{prefix + ".notices.expired.victim", []byte(`{}`)})
	}
	switch role {
	case access.Validator, access.Auditor, access.Node, access.Service:
		acts = append(acts, act{prefix + ".cmd.create", []byte(`{"account":"victim","name":"evil"}`)},
			act{prefix + ".cmd.revoke", []byte(`{"account":"victim","names":["before"]}`)})
	}
	switch role {
	case access.Validator, access.Service:
		acts = append(acts, act{"$JS.API.STREAM.INFO." + stream, nil},
			act{"$JS.API.CONSUMER.CREATE." + stream + ".peek." + prefix + ".events.>", nil})
	}
	if role == access.Auditor || role == access.Service {
		acts = append(acts, act{prefix + ".validate", []byte(`{"token":"x"}`)})
	}
	return acts
}

// conn is a connection that records what the server refused it and what
// it received.
type conn struct {
	nc   *nats.Conn
	mu   sync.Mutex
	errs []string
	msgs []*nats.Msg
}

func mustConnect(t *testing.T, tg Target, role string, opts []nats.Option) *conn {
	t.Helper()
	c := &conn{}
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			c.mu.Lock()
			c.errs = append(c.errs, err.Error())
			c.mu.Unlock()
		}
	}))
	nc, err := tg.Connect(role, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	return c
}

func (c *conn) got(m *nats.Msg) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *conn) received() []*nats.Msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*nats.Msg(nil), c.msgs...)
}

func (c *conn) violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// refused waits until the server has said that it refused the act on subject.
func (c *conn) refused(t *testing.T, what, subject string) {
	t.Helper()
	kind := "Publish to"
	if what == "subscribe" {
		kind = "Subscription to"
	}
	want := kind + ` "` + subject + `"`
	natstest.Eventually(t, "the server refusing "+what+" "+subject, func() bool {
		for _, e := range c.violations() {
			if strings.Contains(e, want) {
				return true
			}
		}
		return false
	})
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
