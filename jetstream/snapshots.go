package jetstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
)

// Snapshots keeps the newest snapshot in a JetStream object store beside the
// stream: outside it, so that the stream stays append-only.
type Snapshots struct {
	store  natsjs.ObjectStore
	window uint64 // see Put; 0: snapshotWindow
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

// Put stores body as the newest snapshot.
//
// The object store publishes a chunk (128 KiB) for each read of body without
// waiting for JetStream to store it, up to 4,000 at once; a stream refuses
// what comes past 128 MiB waiting to be stored (nats-server's default ingest
// queue) as "too many requests" (10167), and the object store gives up when
// 4,000 wait longer than a moment. A server that syncs every write stores a
// chunk in about a millisecond, so a snapshot of ten million tokens (some
// 700 MB) met one limit or the other. Put paces body instead: it is read
// only while less than window of it is still unstored, which the bucket's
// size says.
func (s *Snapshots) Put(ctx context.Context, snap events.Snapshot, body io.Reader) error {
	status, err := s.store.Status(ctx)
	if err != nil {
		return natsError(err)
	}
	paced := &pacedReader{r: body, window: s.window, stored: func() (uint64, error) {
		now, err := s.store.Status(ctx)
		if err != nil {
			return 0, err
		}
		return now.Size() - status.Size(), nil // the bucket only grows until Put ends
	}}
	if paced.window == 0 {
		paced.window = snapshotWindow
	}
	_, err = s.store.Put(ctx, natsjs.ObjectMeta{
		Name: snapshotObject,
		Metadata: map[string]string{
			"seq":    strconv.FormatUint(snap.Seq, 10),
			"at-seq": snap.AtSeq.String(),
			"body":   snap.Body.String(),
			"signer": snap.Signer,
			"sig":    snap.Sig,
		},
	}, paced)
	return natsError(err)
}

// snapshotWindow is how much of a snapshot Put lets wait to be stored: a
// quarter of the ingest queue, 256 chunks.
const snapshotWindow = 32 << 20

// pacedReader reads r while fewer than window bytes of what it has read are
// unstored. It asks stored only when what it knows of would stop it, and
// then again, a moment later each time, until enough is.
type pacedReader struct {
	r      io.Reader
	window uint64
	stored func() (uint64, error)
	read   uint64 // handed out
	known  uint64 // stored, when last asked
}

func (p *pacedReader) Read(b []byte) (int, error) {
	for pause := time.Millisecond; p.read >= p.known+p.window; pause = min(2*pause, 50*time.Millisecond) {
		stored, err := p.stored()
		if err != nil {
			return 0, err
		}
		if p.known = stored; p.read < p.known+p.window {
			break
		}
		time.Sleep(pause)
	}
	n, err := p.r.Read(b)
	p.read += uint64(n)
	return n, err
}

// Newest describes the newest snapshot without reading its body, or returns
// events.ErrNoSnapshot.
func (s *Snapshots) Newest(ctx context.Context) (events.Snapshot, error) {
	info, err := s.store.GetInfo(ctx, snapshotObject)
	if errors.Is(err, natsjs.ErrObjectNotFound) {
		return events.Snapshot{}, events.ErrNoSnapshot
	}
	if err != nil {
		return events.Snapshot{}, natsError(err)
	}
	return describe(info)
}

// Latest returns the newest snapshot's description and body, or
// events.ErrNoSnapshot. The body can be read for snapshotRead.
func (s *Snapshots) Latest(ctx context.Context) (_ events.Snapshot, _ io.ReadCloser, err error) {
	ctx, cancel := context.WithTimeout(ctx, snapshotRead)
	defer func() {
		if err != nil {
			cancel()
		}
	}()
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
	snap, err := describe(info)
	if err != nil {
		res.Close()
		return events.Snapshot{}, nil, err
	}
	return snap, snapshotBody{res, cancel}, nil
}

// describe is the snapshot an object's metadata describes (see Put).
func describe(info *natsjs.ObjectInfo) (events.Snapshot, error) {
	m := info.Metadata
	snap := events.Snapshot{Signer: m["signer"], Sig: m["sig"], Size: int64(info.Size)}
	var err error
	snap.Seq, err = strconv.ParseUint(m["seq"], 10, 64)
	if err == nil {
		snap.AtSeq, err = events.ParseHash(m["at-seq"])
	}
	if err == nil {
		snap.Body, err = events.ParseHash(m["body"])
	}
	if err != nil {
		return events.Snapshot{}, events.Errorf(events.Invalid, "snapshot metadata: %v", err)
	}
	return snap, nil
}

// snapshotRead bounds the reading of a snapshot's body. The object store
// bounds a read whose context has no deadline by its default timeout, five
// seconds, as a whole: a node of ten million tokens, whose snapshot takes
// longer than that to download and decode on a server just started, found
// it cut off, and replayed the whole stream instead. Ten minutes is the
// largest snapshot Restore reads (2 GiB) at 4 MB/s.
const snapshotRead = 10 * time.Minute

// snapshotBody is a snapshot's body, whose Close also ends its reading's
// time.
type snapshotBody struct {
	natsjs.ObjectResult
	cancel context.CancelFunc
}

func (b snapshotBody) Close() error {
	defer b.cancel()
	return b.ObjectResult.Close()
}

// DigestAt is the digest of the message stored at seq.
func (s *Stream) DigestAt(ctx context.Context, seq uint64) (events.Hash, error) {
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		return events.Hash{}, natsError(err)
	}
	return events.Digest(m.Data), nil
}
