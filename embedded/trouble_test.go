package embedded

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"

	"tokenledger/jetstream"
)

// TestJetStreamTrouble: what the embedded server knows keeps JetStream from
// storing reaches the stream's Check as the error a user reads. A store at
// its limit refuses writes with 10023 and answers everything else, so only
// the server's totals show it; JetStream switched off is the server's own
// state. (A store failed by a full disk: cmd/tokenledger's TestDiskFull.)
func TestJetStreamTrouble(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	os.WriteFile(conf, []byte("jetstream { max_file_store: 65536 }\n"), 0o600)
	s, err := Start(Options{DataDir: dir, Listen: "127.0.0.1:0", ConfigFile: conf, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect("", nats.InProcessServer(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := jetstream.Ensure(ctx, js, events.DefaultConfig(), jetstream.Seen{})
	if err != nil {
		t.Fatal(err)
	}
	stream.AskServer(func() error { return JetStreamTrouble(s) })
	if err := JetStreamTrouble(s); err != nil {
		t.Fatalf("a new server: %v", err)
	}

	var refused error
	for i := 0; refused == nil; i++ {
		if i == 1000 {
			t.Fatal("the store takes more than its limit")
		}
		_, refused = js.Publish(ctx, "tokens.events.bob.x", make([]byte, 1024))
	}
	var apiErr *natsjs.APIError
	if !errors.As(refused, &apiErr) || apiErr.ErrorCode != 10023 {
		t.Fatalf("a write over the limit: %v, want err_code=10023", refused)
	}
	_, err = stream.Check(ctx, 0)
	if !errors.Is(err, events.ErrNoSpace) || !strings.HasPrefix(events.ErrorMessage(err), "the NATS server has no space left for JetStream (") {
		t.Fatalf("Check with the store over its limit: %v", err)
	}

	s.ShutdownJetStream()
	_, err = stream.Check(ctx, 0)
	if !errors.Is(err, events.ErrJetStreamDisabled) || events.ErrorCode(err) != events.Unavailable {
		t.Fatalf("Check with JetStream off: %v", err)
	}
}
