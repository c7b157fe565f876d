package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/jetstream"
	"tokenledger/natsapi"
)

// `tokenledger list` of an account of 10,000 tokens, twice what one NATS
// message holds, prints every one of them, oldest first.
func TestListOfABigAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	data := t.TempDir()
	node := cliServe(t, data)
	const many = 10000
	last := storeCreates(t, node, "big", many)
	// Once the node validates the last token, its table holds them all.
	api := natsapi.NewClient(node.connect(t, access.Operator), "tokens")
	natstest.Eventually(t, "the node to have applied the creates", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rep, err := api.Validate(ctx, last, "big")
		return err == nil && rep.Valid
	})

	var rows []listed
	out := mustCLI(t, node.natsURL, "list", "--account", "big", "--json")
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != many {
		t.Fatalf("list --json: %d tokens, want %d", len(rows), many)
	}
	for i, r := range rows {
		if want := fmt.Sprintf("t%05d", i); r.Name != want {
			t.Fatalf("row %d is %s, want %s: every token once, oldest first", i, r.Name, want)
		}
	}
	table := mustCLI(t, node.natsURL, "list", "--account", "big")
	if lines := strings.Count(table, "\n"); lines != many+1 {
		t.Fatalf("list: %d lines, want a header and %d tokens", lines, many)
	}
}

// storeCreates stores n creates in account, named t00000 and on, as the node
// would (signed with its key, chained), several hundred to a JetStream atomic
// batch, which is much faster than n commands; it returns the last secret.
func storeCreates(t *testing.T, node *cliNode, account string, n int) string {
	t.Helper()
	seed, err := os.ReadFile(filepath.Join(node.dataDir, "signing.nk"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := access.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	js, err := natsjs.New(node.connect(t, access.Node))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := jetstream.Open(ctx, js, events.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	actor := events.Actor{Kind: events.ActorOperator, Name: "test"}
	var (
		head   events.Hash
		seq    uint64
		secret string
	)
	for i := 0; i < n; {
		evs := make([]events.Event, 0, 500)
		for ; i < n && len(evs) < cap(evs); i++ {
			secret = events.NewSecret()
			e := events.Event{ID: events.NewID(), At: time.Now(), Account: account, TokenID: events.NewTokenID(), Actor: actor,
				Data: events.TokenCreated{Name: fmt.Sprintf("t%05d", i), TokenHash: events.HashSecret(secret), FullAccess: true}}
			if head, err = signer.Sign(&e, head); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, e)
		}
		if seq, err = stream.Append(ctx, account, seq, evs); err != nil {
			t.Fatal(err)
		}
	}
	return secret
}
