package natsapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
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
	"tokenledger/projections"
)

// The node's own types are what the service's interfaces model.
var (
	_ natsapi.Ledger      = (*commands.Ledger)(nil)
	_ natsapi.Table       = (*projections.Table)(nil)
	_ natsapi.UseRecorder = (*commands.UseRecorder)(nil)
)

// clock is a test clock that moves only when told.
type clock struct{ unixNano atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.unixNano.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.unixNano.Load()) }
func (c *clock) Advance(d time.Duration) { c.unixNano.Add(int64(d)) }

// served is a node with its `tokens` service, and a client on a connection
// of its own, as another program would have.
type served struct {
	*nodetest.Node
	Service *natsapi.Service
	Client  *nats.Conn
	API     *natsapi.Client
}

// MustServe starts a node on s whose ledger and service share clk (nil: the
// wall clock), and stops its service when the test ends.
func MustServe(tb testing.TB, s *server.Server, clk *clock) *served {
	tb.Helper()
	now := time.Now
	if clk != nil {
		now = clk.Now
	}
	node := nodetest.MustNode(tb, s, nodetest.Options{Now: now})
	svc, err := natsapi.Start(node.Conn, natsapi.Config{Prefix: "tokens", Ledger: node.Ledger, Table: node.Table, Now: now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "0.0.0-test"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { svc.Stop() })
	nc := natstest.MustConnect(tb, s)
	return &served{Node: node, Service: svc, Client: nc, API: natsapi.NewClient(nc, "tokens")}
}

// MustCreate creates a token through the node's ledger and returns its secret.
func (n *served) MustCreate(tb testing.TB, account, name string, expiresAt *int64) commands.Created {
	tb.Helper()
	c, err := n.Ledger.Create(context.Background(), commands.Create{Account: account, Name: name, ExpiresAt: expiresAt,
		Actor: events.Actor{Kind: events.ActorOperator, Name: "test"}})
	if err != nil {
		tb.Fatalf("create %s/%s: %v", account, name, err)
	}
	return c
}

// MustRevoke revokes through the node's ledger.
func (n *served) MustRevoke(tb testing.TB, account string, names ...string) {
	tb.Helper()
	err := n.Ledger.Revoke(context.Background(), commands.Revoke{Account: account, Names: names,
		Actor: events.Actor{Kind: events.ActorOperator, Name: "test"}})
	if err != nil {
		tb.Fatalf("revoke %s %v: %v", account, names, err)
	}
}

// ask sends body to tokens.validate as it stands and decodes the reply
// strictly: every reply must be the contract's JSON.
func ask(tb testing.TB, nc *nats.Conn, body []byte) natsapi.ValidateReply {
	tb.Helper()
	msg, err := nc.Request("tokens.validate", body, 10*time.Second)
	if err != nil {
		tb.Fatalf("request with a %d-byte body: %v", len(body), err)
	}
	if msg.Header.Get(micro.ErrorHeader) != "" {
		tb.Fatalf("reply is a service error: %v", msg.Header)
	}
	var rep natsapi.ValidateReply
	dec := json.NewDecoder(bytes.NewReader(msg.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		tb.Fatalf("reply %q is not the contract's JSON: %v", msg.Data, err)
	}
	if rep.Valid != (rep.Reason == "") || rep.Valid && rep.Features == nil {
		tb.Fatalf("reply %q: valid and reason disagree", msg.Data)
	}
	if !rep.Valid && (rep.Account != "" || rep.TokenID != "" || rep.Name != "" || rep.ExpiresAt != nil || rep.Status != "" || rep.Features != nil || rep.ReadOnly) {
		tb.Fatalf("an invalid reply says more than its reason: %q", msg.Data)
	}
	return rep
}

func jsonBody(token, account string) []byte {
	b, _ := json.Marshal(natsapi.ValidateRequest{Token: token, Account: account})
	return b
}

func TestValidateReasons(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clk := newClock(t0)
	n := MustServe(t, natstest.MustServer(t), clk)

	inMonth := t0.Add(30 * 24 * time.Hour).Unix()
	inDay := t0.Add(24 * time.Hour).Unix()
	inHour := t0.Add(time.Hour).Unix()
	forever := n.MustCreate(t, "bob", "deploy", nil)
	monthly := n.MustCreate(t, "bob", "monthly", &inMonth)
	daily := n.MustCreate(t, "bob", "daily", &inDay)
	hourly := n.MustCreate(t, "bob", "hourly", &inHour)
	revoked := n.MustCreate(t, "bob", "gone", nil)
	n.MustRevoke(t, "bob", "gone")
	carols := n.MustCreate(t, "carol", "ci", nil)
	clk.Advance(2 * time.Hour) // hourly has expired

	valid := func(c commands.Created, account, name string, expires *int64, status string) natsapi.ValidateReply {
		return natsapi.ValidateReply{Valid: true, Account: account, TokenID: c.Event.TokenID.String(), Name: name, ExpiresAt: expires, Status: status,
			Features: []string{}}
	}
	invalid := func(reason string) natsapi.ValidateReply { return natsapi.ValidateReply{Reason: reason} }
	unknown := strings.Repeat("Q", events.SecretLen)

	for _, tt := range []struct {
		name string
		body []byte
		want natsapi.ValidateReply
	}{
		{"bare", []byte(forever.Secret), valid(forever, "bob", "deploy", nil, "active")},
		{"bare with a newline", []byte(forever.Secret + "\n"), valid(forever, "bob", "deploy", nil, "active")},
		{"json", jsonBody(forever.Secret, ""), valid(forever, "bob", "deploy", nil, "active")},
		{"json with its account", jsonBody(forever.Secret, "bob"), valid(forever, "bob", "deploy", nil, "active")},
		{"json, spaced", []byte(" \n{ \"account\" : \"bob\", \"token\" : \"" + forever.Secret + "\" }\n"), valid(forever, "bob", "deploy", nil, "active")},
		{"expires in a month", jsonBody(monthly.Secret, "bob"), valid(monthly, "bob", "monthly", &inMonth, "active")},
		{"expires within the warning window", []byte(daily.Secret), valid(daily, "bob", "daily", &inDay, "expiring")},
		{"another account's", jsonBody(carols.Secret, "carol"), valid(carols, "carol", "ci", nil, "active")},

		{"expired", []byte(hourly.Secret), invalid("expired")},
		{"expired, json", jsonBody(hourly.Secret, "bob"), invalid("expired")},
		{"revoked", []byte(revoked.Secret), invalid("revoked")},
		{"revoked, json", jsonBody(revoked.Secret, "bob"), invalid("revoked")},
		{"wrong account", jsonBody(carols.Secret, "bob"), invalid("wrong_account")},
		{"wrong account for a revoked token", jsonBody(revoked.Secret, "carol"), invalid("wrong_account")},
		{"unknown", []byte(unknown), invalid("unknown")},
		{"unknown, json", jsonBody(unknown, "bob"), invalid("unknown")},
		{"unknown account", jsonBody(forever.Secret, "nobody"), invalid("wrong_account")},

		{"empty", nil, invalid("malformed")},
		{"blank", []byte(" \r\n\t "), invalid("malformed")},
		{"lower case", []byte(strings.ToLower(forever.Secret)), invalid("malformed")},
		{"one short", []byte(forever.Secret[1:]), invalid("malformed")},
		{"one long", []byte(forever.Secret + "A"), invalid("malformed")},
		{"inner space", []byte(forever.Secret[:16] + " " + forever.Secret[17:]), invalid("malformed")},
		{"quoted", []byte(`"` + forever.Secret + `"`), invalid("malformed")},
		{"cpanel header form", []byte("bob:" + forever.Secret), invalid("malformed")},
		{"binary", []byte{0, 0xff, 0xfe, '{', 0x80}, invalid("malformed")},
		{"not json", []byte("{"), invalid("malformed")},
		{"json with garbage after", append(jsonBody(forever.Secret, ""), []byte("xx")...), invalid("malformed")},
		{"json without token", []byte(`{"account":"bob"}`), invalid("malformed")},
		{"json null token", []byte(`{"token":null}`), invalid("malformed")},
		{"json number token", []byte(`{"token":12}`), invalid("malformed")},
		{"json array", []byte(`["` + forever.Secret + `"]`), invalid("malformed")},
		{"json string", []byte(`"` + forever.Secret + `"`), invalid("malformed")},
		{"json null", []byte(`null`), invalid("malformed")},
		{"account with a wildcard", jsonBody(forever.Secret, "bob.>"), invalid("malformed")},
		{"account upper case", jsonBody(forever.Secret, "Bob"), invalid("malformed")},
		{"deep nesting", []byte(strings.Repeat("{", 5000)), invalid("malformed")},
		{"16 KiB of garbage", bytes.Repeat([]byte("A"), 16<<10), invalid("malformed")},
		{"just over 16 KiB of json", []byte(`{"token":"` + forever.Secret + `","x":"` + strings.Repeat("x", 16<<10) + `"}`), invalid("malformed")},
		{"1000 KiB", bytes.Repeat([]byte("{"), 1000<<10), invalid("malformed")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if have := ask(t, n.Client, tt.body); !equal(have, tt.want) {
				t.Fatalf("have %+v, want %+v", show(have), show(tt.want))
			}
		})
	}
}

func equal(a, b natsapi.ValidateReply) bool { return show(a) == show(b) }

func show(r natsapi.ValidateReply) string { b, _ := json.Marshal(r); return string(b) }

// The client and the service agree on the wire: the CLI's path.
func TestClientValidate(t *testing.T) {
	n := MustServe(t, natstest.MustServer(t), nil)
	c := n.MustCreate(t, "bob", "deploy", nil)
	ctx := context.Background()
	rep, err := n.API.Validate(ctx, c.Secret, "bob")
	if err != nil || !rep.Valid || rep.TokenID != c.Event.TokenID.String() || rep.Name != "deploy" || rep.Status != "active" {
		t.Fatalf("valid token: %+v, %v", rep, err)
	}
	if rep, err = n.API.Validate(ctx, c.Secret, "carol"); err != nil || rep.Valid || rep.Reason != "wrong_account" {
		t.Fatalf("wrong account: %+v, %v", rep, err)
	}
	if rep, err = n.API.Validate(ctx, "nonsense", ""); err != nil || rep.Valid || rep.Reason != "malformed" {
		t.Fatalf("malformed: %+v, %v", rep, err)
	}
}

// Expiry is judged when the request arrives: the same token is valid, then
// expiring, then expired as the node's clock moves, with no event between.
func TestValidateExpiryPassesWhileRunning(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clk := newClock(t0)
	n := MustServe(t, natstest.MustServer(t), clk)
	expires := t0.Add(10 * 24 * time.Hour).Unix()
	c := n.MustCreate(t, "bob", "deploy", &expires)
	ctx := context.Background()
	stored := func() uint64 {
		t.Helper()
		seq, err := n.Stream.LastSeq(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	before := stored()

	for _, step := range []struct {
		advance time.Duration
		want    string
	}{
		{0, "active"},
		{3*24*time.Hour - time.Second, "active"},
		{time.Second, "expiring"}, // exactly the warning window before expiry
		{7*24*time.Hour - time.Second, "expiring"},
		{time.Second, "expired"}, // the expiry instant itself no longer validates
		{365 * 24 * time.Hour, "expired"},
	} {
		clk.Advance(step.advance)
		rep := ask(t, n.Client, []byte(c.Secret))
		have := rep.Status
		if !rep.Valid {
			have = rep.Reason
		}
		if have != step.want {
			t.Fatalf("at %s: have %+v, want %s", clk.Now().UTC().Format(time.RFC3339), rep, step.want)
		}
	}
	if after := stored(); after != before {
		t.Fatalf("time passing wrote events: the stream is at %d, was %d", after, before)
	}
}

// A revoke is refused at once by the node that made it (its reply waits for
// its own table) and within moments by every other node.
func TestValidateRevokeSeenAtOnce(t *testing.T) {
	s := natstest.MustServer(t)
	writer := nodetest.MustNode(t, s, nodetest.Options{}) // no service: it only writes
	reader := MustServe(t, s, nil)
	toks := make([]commands.Created, 20)
	for i := range toks {
		var err error
		toks[i], err = writer.Ledger.Create(context.Background(), commands.Create{Account: "bob", Name: fmt.Sprintf("t%d", i),
			Actor: events.Actor{Kind: events.ActorOperator, Name: "test"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, "the reader to see the creations", func() bool {
		return ask(t, reader.Client, []byte(toks[len(toks)-1].Secret)).Valid
	})

	var worst time.Duration
	for i, c := range toks {
		if !ask(t, reader.Client, []byte(c.Secret)).Valid {
			t.Fatalf("token %d not valid before its revoke", i)
		}
		err := writer.Ledger.Revoke(context.Background(), commands.Revoke{Account: "bob", Names: []string{fmt.Sprintf("t%d", i)},
			Actor: events.Actor{Kind: events.ActorOperator, Name: "test"}})
		if err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		natstest.Eventually(t, "the revoke to reach the other node", func() bool {
			return ask(t, reader.Client, []byte(c.Secret)).Reason == "revoked"
		})
		worst = max(worst, time.Since(acked))
	}
	t.Logf("slowest revoke seen by the other node %v after its acknowledgement", worst)

	// On the node that revoked, the refusal needs no waiting at all.
	c := reader.MustCreate(t, "carol", "ci", nil)
	reader.MustRevoke(t, "carol", "ci")
	if rep := ask(t, reader.Client, []byte(c.Secret)); rep.Reason != "revoked" {
		t.Fatalf("right after its own revoke: %+v", rep)
	}
}

// Many requesters validate while others create and revoke: every answer
// agrees with what was acknowledged before the request and after the reply.
// Run under -race.
func TestValidateConcurrently(t *testing.T) {
	n := MustServe(t, natstest.MustServer(t), nil)

	type entry struct {
		secret, account, name string
		state                 atomic.Int32 // live, revoking, revoked
	}
	const (
		live = iota
		revoking
		revoked
	)
	var (
		mu      sync.Mutex
		tokens  []*entry
		writers sync.WaitGroup
		readers sync.WaitGroup
		stop    atomic.Bool
		asked   atomic.Int64
	)
	pick := func(r *rand.Rand) *entry {
		mu.Lock()
		defer mu.Unlock()
		if len(tokens) == 0 {
			return nil
		}
		return tokens[r.IntN(len(tokens))]
	}

	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			account := fmt.Sprintf("acct%d", w)
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 40 {
				c, err := n.Ledger.Create(context.Background(), commands.Create{Account: account, Name: fmt.Sprintf("t%d", i),
					Actor: events.Actor{Kind: events.ActorOperator, Name: "test"}})
				if err != nil {
					t.Error(err)
					return
				}
				e := &entry{secret: c.Secret, account: account, name: fmt.Sprintf("t%d", i)}
				mu.Lock()
				tokens = append(tokens, e)
				mu.Unlock()
				if r.IntN(2) == 0 {
					continue
				}
				e.state.Store(revoking)
				if err := n.Ledger.Revoke(context.Background(), commands.Revoke{Account: account, Names: []string{e.name},
					Actor: events.Actor{Kind: events.ActorOperator, Name: "test"}}); err != nil {
					t.Error(err)
					return
				}
				e.state.Store(revoked)
			}
		}()
	}

	for g := range 16 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r := rand.New(rand.NewPCG(uint64(g), 2))
			api := natsapi.NewClient(n.Client, "tokens")
			for !stop.Load() {
				e := pick(r)
				if e == nil {
					continue
				}
				account := ""
				if r.IntN(2) == 0 {
					account = e.account
				}
				before := e.state.Load()
				rep, err := api.Validate(context.Background(), e.secret, account)
				after := e.state.Load()
				asked.Add(1)
				switch {
				case err != nil:
					t.Error(err)
					return
				case before == revoked && rep.Reason != "revoked":
					t.Errorf("%s/%s validated as %+v after its revoke was acknowledged", e.account, e.name, rep)
					return
				case after == live && !rep.Valid:
					t.Errorf("%s/%s refused as %+v while live", e.account, e.name, rep)
					return
				case rep.Valid && (rep.Account != e.account || rep.Name != e.name):
					t.Errorf("%s/%s validated as %+v", e.account, e.name, rep)
					return
				}
			}
		}()
	}
	writers.Wait()
	stop.Store(true)
	readers.Wait()
	t.Logf("%d validations while %d tokens were created and about half revoked", asked.Load(), len(tokens))
}

// The service is visible to NATS tooling: `nats micro ls|info|stats` read
// these same control subjects.
func TestMicroVisibility(t *testing.T) {
	n := MustServe(t, natstest.MustServer(t), nil)
	c := n.MustCreate(t, "bob", "deploy", nil)
	for range 5 {
		ask(t, n.Client, []byte(c.Secret))
	}
	ask(t, n.Client, []byte("garbage"))

	var ping micro.Ping
	control(t, n.Client, "$SRV.PING", &ping)
	if ping.Name != natsapi.ServiceName || ping.Version != "0.0.0-test" || ping.ID == "" {
		t.Fatalf("ping: %+v", ping)
	}

	var info micro.Info
	control(t, n.Client, "$SRV.INFO.tokens", &info)
	subjects := map[string]string{}
	for _, e := range info.Endpoints {
		subjects[e.Subject] = e.QueueGroup
	}
	for _, subject := range []string{"tokens.validate", "tokens.cmd.create", "tokens.cmd.rename", "tokens.cmd.revoke", "tokens.cmd.list"} {
		if q, ok := subjects[subject]; !ok || q != natsapi.QueueGroup {
			t.Errorf("info: endpoint %s in queue group %q (present %v); have %+v", subject, q, ok, info.Endpoints)
		}
	}

	// micro counts a request once its handler has returned, which is after
	// the reply is on its way: the last one may not be counted yet.
	var stats micro.Stats
	var validate *micro.EndpointStats
	natstest.Eventually(t, "six validations counted", func() bool {
		stats = micro.Stats{}
		control(t, n.Client, "$SRV.STATS.tokens."+info.ID, &stats)
		validate = nil
		for _, e := range stats.Endpoints {
			if e.Subject == "tokens.validate" {
				validate = e
			}
		}
		return validate == nil || validate.NumRequests >= 6
	})
	switch {
	case validate == nil:
		t.Fatalf("stats without tokens.validate: %+v", stats.Endpoints)
	case validate.NumRequests != 6 || validate.NumErrors != 0:
		t.Fatalf("stats: %d requests and %d errors, want 6 and 0 (a refusal is an answer, not an error)", validate.NumRequests, validate.NumErrors)
	case validate.ProcessingTime <= 0 || validate.AverageProcessingTime <= 0:
		t.Fatalf("stats without processing time: %+v", validate)
	}
}

func control(tb testing.TB, nc *nats.Conn, subject string, v any) {
	tb.Helper()
	msg, err := nc.Request(subject, nil, 5*time.Second)
	if err != nil {
		tb.Fatalf("%s: %v", subject, err)
	}
	if err := json.Unmarshal(msg.Data, v); err != nil {
		tb.Fatalf("%s: %q: %v", subject, msg.Data, err)
	}
}

// A revoked token's secret stays known after its name is used again: the old
// secret is refused as revoked, the new one validates under the same name.
func TestValidateNameReusedAfterRevoke(t *testing.T) {
	n := MustServe(t, natstest.MustServer(t), nil)
	old := n.MustCreate(t, "bob", "deploy", nil)
	n.MustRevoke(t, "bob", "deploy")
	reused := n.MustCreate(t, "bob", "deploy", nil)
	if rep := ask(t, n.Client, []byte(old.Secret)); rep.Reason != "revoked" {
		t.Fatalf("old secret: %+v", rep)
	}
	if rep := ask(t, n.Client, jsonBody(reused.Secret, "bob")); !rep.Valid || rep.Name != "deploy" || rep.TokenID != reused.Event.TokenID.String() {
		t.Fatalf("new secret: %+v", rep)
	}
}
