package projections

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"tokenledger/events"
	"tokenledger/internal/atomicfile"
)

// SnapshotCopy is a node's own copy of the last snapshot it stored, in its
// data directory: a start reads it from the disk rather than download the
// same bytes from the object store, which at ten million tokens is 690 MB
// in 128 KiB NATS messages, each a fresh allocation. It is trusted no more
// than the store's: Restore checks its signature, its digest and the
// message it covers the same way, and downloads the store's when the copy
// fails any check or is older.
type SnapshotCopy struct {
	Path  string
	ahead *copyRead // Prefetch's reading, until Restore takes it or Stop ends it
}

// copyMagic begins a copy's first line; the snapshot's description follows
// it as JSON, and the body after the line.
const copyMagic = "tokenledger snapshot copy v1 "

// copyHead is a copy's description of its snapshot.
type copyHead struct {
	Seq    uint64 `json:"seq"`
	AtSeq  string `json:"at_seq"`
	Body   string `json:"body"`
	Signer string `json:"signer"`
	Sig    string `json:"sig"`
	Size   int64  `json:"size"`
}

// maxCopyHead bounds the first line.
const maxCopyHead = 4096

// Write replaces the copy with snap and its body, whole or not at all.
func (c *SnapshotCopy) Write(snap events.Snapshot, body []byte) error {
	head, err := json.Marshal(copyHead{Seq: snap.Seq, AtSeq: snap.AtSeq.String(), Body: snap.Body.String(),
		Signer: snap.Signer, Sig: snap.Sig, Size: int64(len(body))})
	if err != nil {
		return err
	}
	line := append(append([]byte(copyMagic), head...), '\n')
	return atomicfile.WriteParts(c.Path, 0o600, line, body)
}

// RemoveLeftovers removes what a write cut short by the process's end left
// beside the copy (atomicfile's temporary files, as large as the copy).
// Only the node that owns the data directory may call it, at its start,
// when nothing writes the copy.
func (c *SnapshotCopy) RemoveLeftovers() error {
	left, err := filepath.Glob(filepath.Join(filepath.Dir(c.Path), "."+filepath.Base(c.Path)+".*"))
	if err != nil {
		return err
	}
	for _, f := range left {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	return nil
}

// Open returns the copy's snapshot and its body, or events.ErrNoSnapshot
// when there is no copy.
func (c *SnapshotCopy) Open() (events.Snapshot, io.ReadCloser, error) {
	f, err := os.Open(c.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return events.Snapshot{}, nil, events.ErrNoSnapshot
	}
	if err != nil {
		return events.Snapshot{}, nil, err
	}
	// Read past the first line only: the body's reads of a megabyte then
	// go to the file directly.
	r := bufio.NewReaderSize(f, maxCopyHead)
	snap, err := readCopyHead(r)
	if err != nil {
		f.Close()
		return events.Snapshot{}, nil, fmt.Errorf("%s: %w", c.Path, err)
	}
	return snap, copyBody{r, f}, nil
}

func readCopyHead(r *bufio.Reader) (events.Snapshot, error) {
	line, err := r.ReadSlice('\n')
	if err != nil || len(line) < len(copyMagic) || string(line[:len(copyMagic)]) != copyMagic {
		return events.Snapshot{}, errors.New("not a snapshot copy")
	}
	var h copyHead
	if err := json.Unmarshal(line[len(copyMagic):], &h); err != nil {
		return events.Snapshot{}, fmt.Errorf("snapshot copy's description: %v", err)
	}
	snap := events.Snapshot{Seq: h.Seq, Signer: h.Signer, Sig: h.Sig, Size: h.Size}
	snap.AtSeq, err = events.ParseHash(h.AtSeq)
	if err == nil {
		snap.Body, err = events.ParseHash(h.Body)
	}
	if err != nil {
		return events.Snapshot{}, fmt.Errorf("snapshot copy's description: %v", err)
	}
	return snap, nil
}

// copyBody reads the rest of the file after its first line.
type copyBody struct {
	*bufio.Reader
	f *os.File
}

func (b copyBody) Close() error { return b.f.Close() }

// Prefetch starts reading and decoding the copy on a goroutine of its own,
// before the stream is at hand, and says whether it did (false: there is
// no copy, or it could not be opened; Restore then says why). A node starts
// it before its embedded server, whose recovery of the stream takes
// seconds of its own at ten million tokens, and the decoding runs
// meanwhile. What the copy says by itself is checked on the way, as for a
// copy Restore reads itself (a trusted key's signature, the body's
// digest); what needs the stream Restore checks when it takes the table:
// that the store holds no newer snapshot, and that the copy covers this
// stream. Restore, or Stop, ends the reading.
func (c *SnapshotCopy) Prefetch(trust *events.Trust, warn time.Duration) bool {
	c.Stop()
	snap, body, err := c.Open()
	if err != nil {
		return false
	}
	r := &copyRead{done: make(chan struct{}), snap: snap, body: body}
	c.ahead = r
	go func() {
		defer close(r.done)
		r.table, r.err = decodeCopy(snap, body, trust, warn)
	}()
	return true
}

// Stop ends Prefetch's reading unless Restore took it, and drops its table.
func (c *SnapshotCopy) Stop() {
	if r := c.ahead; r != nil {
		c.ahead = nil
		r.cut()
	}
}

// copyRead is a reading Prefetch started.
type copyRead struct {
	snap  events.Snapshot
	body  io.Closer
	done  chan struct{} // closed once table and err are set
	table *Table
	err   error
}

// cut ends the reading: the decoding fails at its next read of the body.
func (r *copyRead) cut() {
	r.body.Close()
	<-r.done
}

// read returns the copy's snapshot and its table, Prefetch's or read now.
// The table is nil, and no more of the body read, when the copy is older
// than stored.
func (c *SnapshotCopy) read(stored uint64, trust *events.Trust, warn time.Duration) (events.Snapshot, *Table, error) {
	if r := c.ahead; r != nil {
		c.ahead = nil
		if r.snap.Seq < stored {
			r.cut()
			return r.snap, nil, nil
		}
		<-r.done
		return r.snap, r.table, r.err
	}
	snap, body, err := c.Open()
	if err != nil {
		return snap, nil, err
	}
	if snap.Seq < stored {
		body.Close()
		return snap, nil, nil
	}
	t, err := decodeCopy(snap, body, trust, warn)
	return snap, t, err
}

// decodeCopy is the copy's table, if what the copy says by itself holds.
// It closes body.
func decodeCopy(snap events.Snapshot, body io.ReadCloser, trust *events.Trust, warn time.Duration) (*Table, error) {
	if err := vouched(snap, trust); err != nil {
		body.Close()
		return nil, err
	}
	return decodeBody(snap, body, warn)
}
