package jetstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
)

// Snapshots keeps the newest snapshot in a JetStream object store beside the
// stream: outside it, so that the stream stays append-only.
type Snapshots struct {
	store natsjs.ObjectStore
}

const snapshotObject = "table"

// OpenSnapshots opens (creating if needed) the object store <stream>_SNAPSHOTS.
func OpenSnapshots(ctx context.Context, js natsjs.JetStream, cfg events.Config) (*Snapshots, error) {
	store, err := js.CreateOrUpdateObjectStore(ctx, natsjs.ObjectStoreConfig{
		Bucket:      cfg.Stream + "_SNAPSHOTS",
		Description: "tokenledger projection snapshots",
		Storage:     natsjs.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot store: %w", natsError(err))
	}
	return &Snapshots{store: store}, nil
}

// snapshotChunk is the size of the messages a snapshot is stored in. The
// object store publishes its chunks without waiting, up to 4,000 at once,
// and a stream takes at most 128 MiB of messages waiting to be stored
// (nats-server's default ingest queue) before it refuses the rest as "too
// many requests" (10167): with the object store's default of 128 KiB, a
// snapshot of ten million tokens (some 700 MB) was refused. 4,000 chunks of
// 16 KiB are 64 MiB.
const snapshotChunk = 16 << 10

// Put stores body as the newest snapshot.
func (s *Snapshots) Put(ctx context.Context, snap events.Snapshot, body io.Reader) error {
	_, err := s.store.Put(ctx, natsjs.ObjectMeta{
		Name: snapshotObject,
		Opts: &natsjs.ObjectMetaOptions{ChunkSize: snapshotChunk},
		Metadata: map[string]string{
			"seq":    strconv.FormatUint(snap.Seq, 10),
			"at-seq": snap.AtSeq.String(),
			"body":   snap.Body.String(),
			"signer": snap.Signer,
			"sig":    snap.Sig,
		},
	}, body)
	return natsError(err)
}

// Latest returns the newest snapshot's description and body, or events.ErrNoSnapshot.
func (s *Snapshots) Latest(ctx context.Context) (events.Snapshot, io.ReadCloser, error) {
	res, err := s.store.Get(ctx, snapshotObject)
	if errors.Is(err, natsjs.ErrObjectNotFound) {
		return events.Snapshot{}, nil, events.ErrNoSnapshot
	}
	if err != nil {
		return events.Snapshot{}, nil, natsError(err)
	}
	info, err := res.Info()
	if err != nil {
		res.Close()
		return events.Snapshot{}, nil, err
	}
	m := info.Metadata
	snap := events.Snapshot{Signer: m["signer"], Sig: m["sig"]}
	snap.Seq, err = strconv.ParseUint(m["seq"], 10, 64)
	if err == nil {
		snap.AtSeq, err = events.ParseHash(m["at-seq"])
	}
	if err == nil {
		snap.Body, err = events.ParseHash(m["body"])
	}
	if err != nil {
		res.Close()
		return events.Snapshot{}, nil, events.Errorf(events.Invalid, "snapshot metadata: %v", err)
	}
	return snap, res, nil
}

// DigestAt is the digest of the message stored at seq.
func (s *Stream) DigestAt(ctx context.Context, seq uint64) (events.Hash, error) {
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		return events.Hash{}, natsError(err)
	}
	return events.Digest(m.Data), nil
}
