package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// Snapshot describes a stored image of a node's projections: the stream
// sequence it covers, the digest of the message at that sequence (so that it
// is only used on the stream it was made from), the digest of its body, and
// the signature of the node that made it.
type Snapshot struct {
	Seq    uint64
	AtSeq  Hash
	Body   Hash
	Signer string
	Sig    string
}

// ErrNoSnapshot says that no snapshot has been stored yet.
var ErrNoSnapshot = errors.New("no snapshot")

// Snapshots keeps the newest snapshot in a JetStream object store beside the
// stream: outside it, so that the stream stays append-only.
type Snapshots struct {
	store jetstream.ObjectStore
}

const snapshotObject = "table"

// OpenSnapshots opens (creating if needed) the object store <stream>_SNAPSHOTS.
func OpenSnapshots(ctx context.Context, js jetstream.JetStream, cfg Config) (*Snapshots, error) {
	store, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      cfg.Stream + "_SNAPSHOTS",
		Description: "tokenledger projection snapshots",
		Storage:     jetstream.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot store: %w", natsError(err))
	}
	return &Snapshots{store: store}, nil
}

// Put stores body as the newest snapshot.
func (s *Snapshots) Put(ctx context.Context, snap Snapshot, body io.Reader) error {
	_, err := s.store.Put(ctx, jetstream.ObjectMeta{
		Name: snapshotObject,
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

// Latest returns the newest snapshot's description and body, or ErrNoSnapshot.
func (s *Snapshots) Latest(ctx context.Context) (Snapshot, io.ReadCloser, error) {
	res, err := s.store.Get(ctx, snapshotObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return Snapshot{}, nil, ErrNoSnapshot
	}
	if err != nil {
		return Snapshot{}, nil, natsError(err)
	}
	info, err := res.Info()
	if err != nil {
		res.Close()
		return Snapshot{}, nil, err
	}
	m := info.Metadata
	snap := Snapshot{Signer: m["signer"], Sig: m["sig"]}
	snap.Seq, err = strconv.ParseUint(m["seq"], 10, 64)
	if err == nil {
		snap.AtSeq, err = ParseHash(m["at-seq"])
	}
	if err == nil {
		snap.Body, err = ParseHash(m["body"])
	}
	if err != nil {
		res.Close()
		return Snapshot{}, nil, Errorf(Invalid, "snapshot metadata: %v", err)
	}
	return snap, res, nil
}

// DigestAt is the digest of the message stored at seq.
func (s *Stream) DigestAt(ctx context.Context, seq uint64) (Hash, error) {
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		return Hash{}, natsError(err)
	}
	return Digest(m.Data), nil
}
