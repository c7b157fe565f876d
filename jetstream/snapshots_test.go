package jetstream

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
	"tokenledger/internal/natstest"
)

// TestSnapshotPutIsPaced: a snapshot larger than the stream's ingest queue
// is stored whole on a server that syncs every write, since Put hands the
// object store no more than its window ahead of what is stored. The server
// here takes 1 MiB waiting to be stored (its default is 128 MiB), and the
// window is half that; unpaced, the object store's chunks overrun it and are
// refused as too many requests.
func TestSnapshotPutIsPaced(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		SyncAlways: true, StreamMaxBufferedSize: 1 << 20, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(30 * time.Second) {
		t.Fatal("server not ready")
	}
	js := mustJetStream(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	snaps, err := OpenSnapshots(ctx, js, events.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	snaps.window = 512 << 10
	for round := range 2 { // the second replaces the first, whose chunks the bucket holds meanwhile
		body := make([]byte, 24<<20)
		rand.Read(body)
		snap := events.Snapshot{Seq: uint64(round + 1), Signer: "test", Sig: "test"}
		if err := snaps.Put(ctx, snap, bytes.NewReader(body)); err != nil {
			t.Fatalf("round %d: Put: %v", round, err)
		}
		got, r, err := snaps.Latest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != snap.Seq || !bytes.Equal(stored, body) || got.Size != int64(len(body)) {
			t.Fatalf("round %d: stored seq %d and %d bytes (size %d), want seq %d and the %d bytes put", round, got.Seq, len(stored), got.Size, snap.Seq, len(body))
		}
	}
}

// TestSnapshotReadOutlastsTheDefaultTimeout: a snapshot's body can be read
// for longer than the JetStream context's default timeout, which the object
// store otherwise applies to the whole read (five seconds by default; here
// a quarter of a second, and a reader that takes a second).
func TestSnapshotReadOutlastsTheDefaultTimeout(t *testing.T) {
	js := mustJetStream(t, natstest.MustServer(t).ClientURL(), natsjs.WithDefaultTimeout(250*time.Millisecond))
	ctx := context.Background()
	snaps, err := OpenSnapshots(ctx, js, events.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 4<<20) // 32 chunks
	rand.Read(body)
	if err := snaps.Put(ctx, events.Snapshot{Seq: 1, Signer: "test", Sig: "test"}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	_, r, err := snaps.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make([]byte, 1<<10)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // a slow decoder
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading on after the default timeout: %v", err)
	}
	if got = append(got, rest...); !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes, not the %d put", len(got), len(body))
	}
}

// mustJetStream connects to url for the test's length and opens JetStream
// with opts.
func mustJetStream(t *testing.T, url string, opts ...natsjs.JetStreamOpt) natsjs.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestSnapshotNewestDescribesWithoutTheBody: Newest says there is no
// snapshot before the first Put, and then describes what Latest returns,
// without opening a consumer to read the body.
func TestSnapshotNewestDescribesWithoutTheBody(t *testing.T) {
	s := natstest.MustServer(t)
	js := mustJetStream(t, s.ClientURL())
	ctx := context.Background()
	snaps, err := OpenSnapshots(ctx, js, events.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snaps.Newest(ctx); !errors.Is(err, events.ErrNoSnapshot) {
		t.Fatalf("Newest before any Put: %v, want ErrNoSnapshot", err)
	}
	put := events.Snapshot{Seq: 7, AtSeq: events.HashSecret("at"), Body: events.HashSecret("body"), Signer: "test", Sig: "sig"}
	if err := snaps.Put(ctx, put, bytes.NewReader([]byte("the body"))); err != nil {
		t.Fatal(err)
	}
	newest, err := snaps.Newest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := js.Stream(ctx, "OBJ_TOKENS_SNAPSHOTS")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := bucket.Info(ctx); err != nil || info.State.Consumers != 0 {
		t.Errorf("after Newest the bucket has consumers: %+v, %v", info.State, err)
	}
	latest, r, err := snaps.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	put.Size = int64(len("the body"))
	if newest != put || latest != put {
		t.Fatalf("Newest %+v, Latest %+v, want %+v", newest, latest, put)
	}
}
