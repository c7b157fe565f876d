package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"tokenledger/accounts"
	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/httpapi"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/jetstream"
	"tokenledger/projections"
)

// clock is the test's clock: the ledger and the HTTP side read it, and the
// test moves it to make tokens expire.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// node is a ledger node (internal/nodetest, on a real embedded NATS) with
// its HTTP side on an httptest server.
type node struct {
	URL      string
	Handler  http.Handler
	Stream   *jetstream.Stream
	Ledger   *commands.Ledger
	Table    *projections.Table
	Clock    *clock
	Accounts string // the accounts file
	Location *time.Location
}

// Passwords of the accounts in every test node's accounts file.
var passwords = map[string]string{"bob": "bob-secret-pw", "carol": "carol-secret-pw"}

// nodeOption changes a test node's HTTP configuration.
type nodeOption func(tb testing.TB, nd *nodetest.Node, cfg *httpapi.Config)

// withUses runs a use recorder, as serve does, that records every use.
func withUses(tb testing.TB, nd *nodetest.Node, cfg *httpapi.Config) {
	uses := commands.NewUseRecorder(nd.Ledger, nd.Table.LastUsed, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); uses.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	cfg.Uses = uses
}

func mustNode(tb testing.TB, opts ...nodeOption) *node {
	tb.Helper()
	clk := &clock{t: time.Now().Truncate(time.Second)}
	nd := nodetest.MustNode(tb, natstest.MustServer(tb), nodetest.Options{Now: clk.Now})
	// bcrypt's lowest cost keeps the many password checks quick under -race;
	// the file is as `htpasswd -B -C 4` writes it.
	path := filepath.Join(tb.TempDir(), "accounts")
	var file strings.Builder
	for account, pw := range passwords {
		hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&file, "%s:%s\n", account, hash)
	}
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	passwords, err := accounts.OpenPasswords(path)
	if err != nil {
		tb.Fatal(err)
	}
	loc := time.FixedZone("Test", 2*3600)
	cfg := httpapi.Config{
		Ready: nd.Follower.Ready, Ledger: nd.Ledger, Table: nd.Table, Accounts: passwords,
		Now: clk.Now, Location: loc, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(tb, nd, &cfg)
	}
	h := httpapi.New(cfg)
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return &node{URL: srv.URL, Handler: h, Stream: nd.Stream, Ledger: nd.Ledger, Table: nd.Table, Clock: clk, Accounts: path, Location: loc}
}

// mustToken creates a token straight through the ledger and returns its secret.
func (n *node) mustToken(tb testing.TB, account, name string, expiresAt *int64) string {
	tb.Helper()
	c, err := n.Ledger.Create(context.Background(), commands.Create{
		Account: account, Name: name, ExpiresAt: expiresAt,
		Actor: events.Actor{Kind: events.ActorOperator, Name: "test"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c.Secret
}

// mustLimitedToken creates a token with features (none: full access) and
// read-only or not, straight through the ledger, and returns its secret.
func (n *node) mustLimitedToken(tb testing.TB, account, name string, readOnly bool, features ...string) string {
	tb.Helper()
	c, err := n.Ledger.Create(context.Background(), commands.Create{
		Account: account, Name: name, Features: features, ReadOnly: readOnly,
		Actor: events.Actor{Kind: events.ActorOperator, Name: "test"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c.Secret
}

// names lists the account's live token names, oldest first.
func (n *node) names(account string) []string {
	var out []string
	for _, r := range n.Table.List(account, n.Clock.Now()) {
		out = append(out, r.Name)
	}
	return out
}

// events reads every stored event of account.
func (n *node) events(tb testing.TB, account string) []events.Event {
	tb.Helper()
	var out []events.Event
	err := n.Stream.Read(context.Background(), events.ReadOptions{Account: account}, func(m events.Msg) error {
		if m.Err != nil {
			tb.Fatalf("event %d: %v", m.Seq, m.Err)
		}
		out = append(out, m.Event)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline: it waits on a condition, never for a fixed time.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func unix(t time.Time) *int64 {
	x := t.Unix()
	return &x
}
