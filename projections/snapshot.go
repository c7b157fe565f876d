package projections

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/oklog/ulid/v2"

	"tokenledger/events"
)

// A node starts from the newest snapshot of its table plus the events stored
// after it, rather than replaying (and verifying) the whole stream. A snapshot
// is trusted only when a trusted key signed its digest and the message at the
// sequence it covers is the one it names; the events after it must then
// continue the chains whose heads it holds, or they are not applied.

// SnapshotStore is what snapshots need of storage (*events.Snapshots).
type SnapshotStore interface {
	Put(ctx context.Context, snap events.Snapshot, body io.Reader) error
	Latest(ctx context.Context) (events.Snapshot, io.ReadCloser, error)
}

// DigestSource tells the digest of the message at a sequence (*events.Stream).
type DigestSource interface {
	DigestAt(ctx context.Context, seq uint64) (events.Hash, error)
}

const snapshotMagic = "tokenledger table v2\n"

// MaxSnapshot bounds what Restore reads: about ten million tokens.
const MaxSnapshot = 2 << 30

// Encode writes the table in a compact binary form. Changes wait while it
// runs (it holds changing, not mu); readers such as validations do not.
func (t *Table) Encode(w io.Writer) (seq uint64, err error) {
	t.changing.Lock()
	defer t.changing.Unlock()
	bw := bufio.NewWriterSize(w, 1<<16)
	var buf [binary.MaxVarintLen64]byte
	uvarint := func(v uint64) { bw.Write(buf[:binary.PutUvarint(buf[:], v)]) }
	varint := func(v int64) { bw.Write(buf[:binary.PutVarint(buf[:], v)]) }
	str := func(s string) { uvarint(uint64(len(s))); bw.WriteString(s) }

	bw.WriteString(snapshotMagic)
	uvarint(t.applied)
	index := make(map[*account]uint64, len(t.accounts))
	uvarint(uint64(len(t.accounts)))
	for _, a := range t.accounts {
		index[a] = uint64(len(index))
		str(a.name)
		bw.Write(a.head[:])
	}
	uvarint(uint64(len(t.byHash)))
	current := make(map[*token]events.Hash, len(t.rotated))
	for h, tok := range t.byHash {
		if len(t.rotated) > 0 {
			current[tok] = h
		}
		uvarint(index[tok.account])
		bw.Write(h[:])
		bw.Write(tok.id[:])
		str(tok.name)
		uvarint(tok.seq)
		varint(tok.created)
		varint(tok.expiresAt)
		flags := byte(0)
		if tok.revoked {
			flags |= 1
		}
		if tok.ext != nil {
			flags |= 2
		}
		bw.WriteByte(flags)
		if x := tok.ext; x != nil {
			varint(x.lastUsed)
			str(x.lastIP)
			uvarint(uint64(len(x.allowed)))
			for _, p := range x.allowed {
				str(p.String())
			}
		}
	}
	// Secrets replaced by a rotation, by the current hash of their token.
	uvarint(uint64(len(t.rotated)))
	for old, r := range t.rotated {
		cur := current[r.tok]
		bw.Write(old[:])
		bw.Write(cur[:])
		varint(r.until)
	}
	return t.applied, bw.Flush()
}

// DecodeTable reads what Encode wrote.
func DecodeTable(r io.Reader, warn time.Duration) (*Table, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	fail := func(what string, err error) (*Table, error) {
		return nil, fmt.Errorf("snapshot: %s: %w", what, err)
	}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return fail("header", errors.New("not a tokenledger table snapshot"))
	}
	var buf [1024]byte
	str := func() (string, error) {
		n, err := binary.ReadUvarint(br)
		if err != nil || n > uint64(len(buf)) {
			return "", errors.New("bad string")
		}
		_, err = io.ReadFull(br, buf[:n])
		return string(buf[:n]), err
	}
	t := NewTable(warn)
	var err error
	if t.applied, err = binary.ReadUvarint(br); err != nil {
		return fail("sequence", err)
	}
	nAccounts, err := binary.ReadUvarint(br)
	if err != nil || nAccounts > MaxSnapshot/20 {
		return fail("accounts", errors.New("bad count"))
	}
	accounts := make([]*account, nAccounts)
	for i := range accounts {
		a := &account{live: make(map[ulid.ULID]*token)}
		if a.name, err = str(); err != nil {
			return fail("account", err)
		}
		if _, err := io.ReadFull(br, a.head[:]); err != nil {
			return fail("account head", err)
		}
		accounts[i] = a
		t.accounts[a.name] = a
	}
	nTokens, err := binary.ReadUvarint(br)
	if err != nil || nTokens > MaxSnapshot/60 {
		return fail("tokens", errors.New("bad count"))
	}
	t.byHash = make(map[events.Hash]*token, nTokens)
	// One allocation for every token rather than one each: tokens live as
	// long as the table does (revoked ones stay in the index).
	slab := make([]token, nTokens)
	for i := range slab {
		ai, err := binary.ReadUvarint(br)
		if err != nil || ai >= nAccounts {
			return fail("token account", errors.New("bad index"))
		}
		var h events.Hash
		tok := &slab[i]
		tok.account = accounts[ai]
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return fail("token hash", err)
		}
		if _, err := io.ReadFull(br, tok.id[:]); err != nil {
			return fail("token id", err)
		}
		if tok.name, err = str(); err != nil {
			return fail("token name", err)
		}
		if tok.seq, err = binary.ReadUvarint(br); err != nil {
			return fail("token sequence", err)
		}
		if tok.created, err = binary.ReadVarint(br); err != nil {
			return fail("token time", err)
		}
		if tok.expiresAt, err = binary.ReadVarint(br); err != nil {
			return fail("token expiry", err)
		}
		flags, err := br.ReadByte()
		if err != nil || flags > 3 {
			return fail("token state", errors.New("bad flag"))
		}
		tok.revoked = flags&1 != 0
		if flags&2 != 0 {
			x := tok.extra()
			if x.lastUsed, err = binary.ReadVarint(br); err != nil {
				return fail("token use", err)
			}
			if x.lastIP, err = str(); err != nil {
				return fail("token use", err)
			}
			n, err := binary.ReadUvarint(br)
			if err != nil || n > events.MaxAllowedIPs {
				return fail("token allow-list", errors.New("bad count"))
			}
			for range n {
				ps, err := str()
				if err != nil {
					return fail("token allow-list", err)
				}
				p, err := netip.ParsePrefix(ps)
				if err != nil {
					return fail("token allow-list", err)
				}
				x.allowed = append(x.allowed, p)
			}
		}
		t.byHash[h] = tok
		if !tok.revoked {
			tok.account.live[tok.id] = tok
		}
	}
	nRotated, err := binary.ReadUvarint(br)
	if err != nil || nRotated > nTokens*16 {
		return fail("rotations", errors.New("bad count"))
	}
	for range nRotated {
		var old, cur events.Hash
		if _, err := io.ReadFull(br, old[:]); err != nil {
			return fail("rotation", err)
		}
		if _, err := io.ReadFull(br, cur[:]); err != nil {
			return fail("rotation", err)
		}
		until, err := binary.ReadVarint(br)
		tok := t.byHash[cur]
		if err != nil || tok == nil {
			return fail("rotation", errors.New("unknown token"))
		}
		t.rotated[old] = retired{tok: tok, until: until}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fail("trailer", errors.New("data after the last token"))
	}
	return t, nil
}

// Restore returns the table of the newest trusted snapshot, or an empty table
// when there is none or it cannot be trusted (it then says why in the log).
func Restore(ctx context.Context, store SnapshotStore, src DigestSource, trust *events.Trust, warn time.Duration, log *slog.Logger) *Table {
	t, err := restore(ctx, store, src, trust, warn)
	switch {
	case errors.Is(err, events.ErrNoSnapshot):
		log.Info("no snapshot: replaying the whole stream")
	case err != nil:
		log.Warn("snapshot not used: replaying the whole stream", "reason", err)
	default:
		log.Info("started from a snapshot", "seq", t.Applied())
		return t
	}
	return NewTable(warn)
}

func restore(ctx context.Context, store SnapshotStore, src DigestSource, trust *events.Trust, warn time.Duration) (*Table, error) {
	snap, body, err := store.Latest(ctx)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	raw, err := io.ReadAll(io.LimitReader(body, MaxSnapshot+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxSnapshot {
		return nil, errors.New("snapshot too large")
	}
	if events.Digest(raw) != snap.Body {
		return nil, errors.New("snapshot body does not match its digest")
	}
	if err := trust.VerifyDigest(snap.Signer, snap.Body, snap.Sig); err != nil {
		return nil, err
	}
	if snap.Seq > 0 {
		at, err := src.DigestAt(ctx, snap.Seq)
		if err != nil {
			return nil, fmt.Errorf("the message the snapshot covers: %w", err)
		}
		if at != snap.AtSeq {
			return nil, errors.New("the snapshot was made from another stream")
		}
	}
	t, err := DecodeTable(bytes.NewReader(raw), warn)
	if err != nil {
		return nil, err
	}
	if t.applied != snap.Seq {
		return nil, errors.New("the snapshot's sequence does not match its description")
	}
	return t, nil
}

// Snapshotter stores a snapshot of a table now and then, so that the next
// start is quick: when enough events were applied since the last one, or
// some were and enough time has passed.
type Snapshotter struct {
	Table    *Table
	Store    SnapshotStore
	Stream   DigestSource
	Signer   *events.Signer
	Events   uint64        // events between snapshots
	Interval time.Duration // at most this long between snapshots while events arrive
	Log      *slog.Logger
	last     uint64
	lastAt   time.Time
}

// Run checks every few seconds until ctx ends.
func (s *Snapshotter) Run(ctx context.Context) error {
	s.lastAt = time.Now()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		applied := s.Table.Applied()
		if applied == s.last || (applied-s.last < s.Events && time.Since(s.lastAt) < s.Interval) {
			continue
		}
		if err := s.Save(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn("snapshot failed", "err", err)
		}
	}
}

// Save stores a snapshot of the table as it is now.
func (s *Snapshotter) Save(ctx context.Context) error {
	start := time.Now()
	var buf bytes.Buffer
	seq, err := s.Table.Encode(&buf)
	if err != nil {
		return err
	}
	snap := events.Snapshot{Seq: seq, Body: events.Digest(buf.Bytes()), Signer: s.Signer.PublicKey()}
	if seq > 0 {
		if snap.AtSeq, err = s.Stream.DigestAt(ctx, seq); err != nil {
			return err
		}
	}
	if snap.Sig, err = s.Signer.SignDigest(snap.Body); err != nil {
		return err
	}
	size := buf.Len()
	if err := s.Store.Put(ctx, snap, &buf); err != nil {
		return err
	}
	s.last, s.lastAt = seq, time.Now()
	s.Log.Info("snapshot stored", "seq", seq, "bytes", size, "took", time.Since(start).Round(time.Millisecond))
	return nil
}
