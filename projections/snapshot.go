package projections

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"tokenledger/events"
)

// A node starts from the newest snapshot of its table plus the events stored
// after it, rather than replaying (and verifying) the whole stream. A snapshot
// is trusted only when a trusted key signed its digest and the message at the
// sequence it covers is the one it names; the events after it must then
// continue the chains whose heads it holds, or they are not applied.

// SnapshotStore is what snapshots need of storage (*jetstream.Snapshots).
type SnapshotStore interface {
	Put(ctx context.Context, snap events.Snapshot, body io.Reader) error
	Newest(ctx context.Context) (events.Snapshot, error) // the description only
	Latest(ctx context.Context) (events.Snapshot, io.ReadCloser, error)
}

// DigestSource tells the digest of the message at a sequence (*jetstream.Stream).
type DigestSource interface {
	DigestAt(ctx context.Context, seq uint64) (events.Hash, error)
}

// snapshotMagic names the format. A snapshot of another version is not
// read: the node replays the stream instead, and stores a snapshot of its
// own soon after (v3, before features, would give every limited token full
// access).
const snapshotMagic = "tokenledger table v4\n"

// MaxSnapshot bounds what Restore reads: about ten million tokens.
const MaxSnapshot = 2 << 30

// The format, v4, in order: the magic line; the applied sequence; the number
// of accounts and of tokens; every token's name, one after another, as one
// block (a start makes one string of them all rather than a million); the
// sets of features tokens have (v4), each its number of names and the
// names; then each account: its name, chain head and number of tokens,
// revoked ones too, and those tokens; then the secrets a rotation replaced;
// last, the events applied ahead of the sequence (see ApplyOwn). Numbers are
// varints. A token's flags say whether it is revoked (1), has extras (2), is
// read-only (4, v4) and has features (8, v4: the number of its set, from 1,
// follows its extras).
// Grouping tokens by account lets a start size each account's map once, and
// keeps the account out of every token.
//
// It is written by hand for start-up time, which is what a snapshot is for:
// a million tokens decode in about 0.2 s (BenchmarkDecodeTable, 2 CPUs), and
// a node is ready from such a snapshot in about 0.3 s (make bench), against
// 13 s replaying the 3,000,000 events behind it; from one of ten million, in
// 2.7 s, against 2 min 32 s (the scale run, bench/RESULTS.md).

// Encode writes the table in a compact binary form. Changes wait while it
// runs (it holds changing, not mu); readers such as validations do not.
func (t *Table) Encode(w io.Writer) (seq uint64, err error) {
	t.changing.Lock()
	defer t.changing.Unlock()
	accounts, grouped, from := t.groupByAccount()

	bw := bufio.NewWriterSize(w, 1<<16)
	var buf [binary.MaxVarintLen64]byte
	uvarint := func(v uint64) { bw.Write(buf[:binary.PutUvarint(buf[:], v)]) }
	varint := func(v int64) { bw.Write(buf[:binary.PutVarint(buf[:], v)]) }
	str := func(s string) { uvarint(uint64(len(s))); bw.WriteString(s) }

	bw.WriteString(snapshotMagic)
	uvarint(t.applied)
	uvarint(uint64(len(accounts)))
	uvarint(uint64(len(grouped)))
	names := 0
	for _, r := range grouped {
		names += int(t.tokens.at(r).nameLen)
	}
	uvarint(uint64(names))
	for _, r := range grouped {
		tok := t.tokens.at(r)
		bw.Write(tok.name[:tok.nameLen])
	}
	// Only the sets that tokens have, numbered anew from 1 in the order
	// first met: sets that no token has any more are left behind.
	renumbered := make(map[uint32]uint64)
	var sets [][]string
	for _, r := range grouped {
		if id := t.tokens.at(r).features; id != 0 && renumbered[id] == 0 {
			sets = append(sets, t.features.of(id))
			renumbered[id] = uint64(len(sets))
		}
	}
	uvarint(uint64(len(sets)))
	for _, set := range sets {
		uvarint(uint64(len(set)))
		for _, f := range set {
			str(f)
		}
	}
	for i, a := range accounts {
		str(a.name)
		bw.Write(a.head[:])
		uvarint(uint64(from[i+1] - from[i]))
		for _, r := range grouped[from[i]:from[i+1]] {
			tok := t.tokens.at(r)
			bw.Write(tok.hash[:])
			bw.Write(tok.id[:])
			uvarint(uint64(tok.nameLen))
			uvarint(tok.seq)
			varint(tok.created)
			varint(tok.expiresAt)
			flags := byte(0)
			if tok.revoked() {
				flags |= snapRevoked
			}
			if tok.ext != 0 {
				flags |= snapExtra
			}
			if tok.readOnly() {
				flags |= snapReadOnly
			}
			if tok.features != 0 {
				flags |= snapFeatures
			}
			bw.WriteByte(flags)
			if tok.ext != 0 {
				x := &t.extras[tok.ext-1]
				varint(x.lastUsed)
				str(x.lastIP)
				uvarint(uint64(len(x.allowed)))
				for _, p := range x.allowed {
					str(p.String())
				}
			}
			if tok.features != 0 {
				uvarint(renumbered[tok.features])
			}
		}
	}
	// Secrets replaced by a rotation, by the current hash of their token.
	uvarint(uint64(len(t.rotated)))
	for old, r := range t.rotated {
		cur := t.tokens.at(r.tok).hash
		bw.Write(old[:])
		bw.Write(cur[:])
		varint(r.until)
	}
	// Events applied ahead of the sequence (see ApplyOwn): the image holds
	// them, so a start from it must not apply them again.
	uvarint(uint64(len(t.ahead)))
	for seq, account := range t.ahead {
		uvarint(seq)
		str(account)
	}
	return t.applied, bw.Flush()
}

// A token's flags in a snapshot.
const (
	snapRevoked  = 1
	snapExtra    = 2
	snapReadOnly = 4
	snapFeatures = 8
	snapAll      = snapRevoked | snapExtra | snapReadOnly | snapFeatures
)

// groupByAccount lists the accounts, and every token grouped by account:
// the tokens of accounts[i] are grouped[from[i]:from[i+1]]. The caller
// holds changing.
func (t *Table) groupByAccount() (accounts []*account, grouped []ref, from []int) {
	accounts = make([]*account, 0, len(t.accounts))
	index := make([]int, len(t.numbered)) // account number -> place in accounts
	for _, a := range t.accounts {
		index[a.num] = len(accounts)
		accounts = append(accounts, a)
	}
	from = make([]int, len(accounts)+1)
	for r := ref(1); int(r) <= t.tokens.n; r++ {
		if n := t.tokens.at(r).account; n != dropped {
			from[index[n]+1]++
		}
	}
	for i := range accounts {
		from[i+1] += from[i]
	}
	next := slices.Clone(from[:len(accounts)])
	grouped = make([]ref, from[len(accounts)])
	for r := ref(1); int(r) <= t.tokens.n; r++ {
		if n := t.tokens.at(r).account; n != dropped {
			i := index[n]
			grouped[next[i]] = r
			next[i]++
		}
	}
	return accounts, grouped, from
}

// The fewest bytes Encode writes for an account (its name's length and one
// byte of it, its head, its count of tokens) and for a token (hash, id, and
// five one-byte fields at the least): what a body of a given size can hold.
const (
	minAccountBytes = 1 + 1 + len(events.Hash{}) + 1
	minTokenBytes   = len(events.Hash{}) + len(events.TokenID{}) + 5
)

// DecodeTable reads what Encode wrote, size bytes. It reads r as it
// arrives, so that decoding overlaps a download, and builds the two indexes
// at once. The counts in the header must fit in size: a body whose digest
// is checked only once it is read cannot, by its header alone, make a node
// set aside more memory than its own length calls for (a forged count of
// thirty million tokens in 27 bytes set aside 1.2 GB for nothing).
func DecodeTable(r io.Reader, size int64, warn time.Duration) (*Table, error) {
	d := &snapshotReader{src: r, buf: make([]byte, 1<<16)}
	fail := func(what string, err error) (*Table, error) {
		if d.err != nil && d.err != errShort {
			err = d.err
		}
		return nil, fmt.Errorf("snapshot: %s: %w", what, err)
	}
	if string(d.bytes(len(snapshotMagic))) != snapshotMagic {
		return fail("header", errors.New("not a tokenledger table snapshot"))
	}
	t := NewTable(warn)
	t.applied = d.uvarint()
	nAccounts, nTokens, nameBytes := d.uvarint(), d.uvarint(), d.uvarint()
	size = min(max(size, 0), MaxSnapshot)
	if d.err != nil || nAccounts > uint64(size)/uint64(minAccountBytes) || nTokens > uint64(size)/uint64(minTokenBytes) || nameBytes > uint64(size) {
		return fail("counts", errors.New("bad count"))
	}
	names, err := d.block(int(nameBytes))
	if err != nil {
		return fail("names", err)
	}
	nSets := d.uvarint()
	if d.err != nil || nSets > nTokens {
		return fail("feature sets", errors.New("bad count"))
	}
	for range nSets {
		set, err := d.features()
		if err != nil {
			return fail("feature set", err)
		}
		if t.features.intern(set) != uint32(len(t.features.sets)-1) {
			return fail("feature set", errors.New("a set appears twice"))
		}
	}

	// The hash index is built as the tokens come, on a core of its own.
	t.tokens.reserve(int(nTokens))
	feed := t.byHash.feeding(&t.tokens, int(nTokens))
	defer feed.stop()
	accounts := make([]*account, nAccounts)
	lives := make([]int, nAccounts) // live tokens of each account
	nameAt := 0
	for ai := range accounts {
		name, err := d.str()
		if err != nil {
			return fail("account", err)
		}
		if t.accounts[name] != nil {
			return fail("account", errors.New("an account appears twice"))
		}
		a := t.newAccount(name)
		copy(a.head[:], d.bytes(len(a.head)))
		count := d.uvarint()
		if d.err != nil || count > nTokens-uint64(t.tokens.n) {
			return fail("account", errors.New("bad account"))
		}
		accounts[ai] = a
		for range count {
			_, tok := t.tokens.add()
			tok.key, tok.account = a.key, a.num
			copy(tok.hash[:], d.bytes(len(tok.hash)))
			copy(tok.id[:], d.bytes(len(tok.id)))
			n := d.uvarint()
			if n > uint64(len(names)-nameAt) || !tok.setName(names[nameAt:nameAt+int(n)]) {
				return fail("token name", errors.New("past the names, or too long"))
			}
			nameAt += int(n)
			tok.seq = d.uvarint()
			tok.created = d.varint()
			tok.expiresAt = d.varint()
			flags := d.byte()
			if d.err != nil || flags&^snapAll != 0 {
				return fail("token", errors.New("truncated or bad flags"))
			}
			if flags&snapRevoked != 0 {
				tok.flags |= flagRevoked
			} else {
				lives[ai]++
			}
			if flags&snapReadOnly != 0 {
				tok.flags |= flagReadOnly
			}
			if flags&snapExtra != 0 {
				if err := d.extra(t.extraOf(tok)); err != nil {
					return fail("token extras", err)
				}
			}
			if flags&snapFeatures != 0 {
				id := d.uvarint()
				if d.err != nil || id == 0 || id > nSets {
					return fail("token features", errors.New("no such set"))
				}
				tok.features = uint32(id)
			}
			feed.filled(&t.tokens)
		}
	}
	if t.tokens.n != int(nTokens) || nameAt != len(names) {
		return fail("tokens", errors.New("counts do not add up"))
	}

	// The hash index is put in place, and each account's live tokens are
	// mapped meanwhile. The tokens of an account lie together in the slab,
	// in the order of accounts.
	feed.end(&t.tokens)
	next := ref(1)
	for ai, a := range accounts {
		a.live = make(map[events.TokenID]ref, lives[ai])
		for ; int(next) <= t.tokens.n && t.tokens.at(next).account == a.num; next++ {
			if tok := t.tokens.at(next); !tok.revoked() {
				a.live[tok.id] = next
			}
		}
	}
	unique := feed.wait()
	if !unique {
		return fail("tokens", errors.New("a hash appears twice"))
	}

	nRotated := d.uvarint()
	if d.err != nil || nRotated > nTokens*16 {
		return fail("rotations", errors.New("bad count"))
	}
	for range nRotated {
		var old, cur events.Hash
		copy(old[:], d.bytes(len(old)))
		copy(cur[:], d.bytes(len(cur)))
		until := d.varint()
		r := t.byHash.find(&t.tokens, cur)
		if d.err != nil || r == 0 {
			return fail("rotation", errors.New("unknown token"))
		}
		t.rotated[old] = retired{tok: r, until: until}
	}
	nAhead := d.uvarint()
	if d.err != nil || nAhead > 1<<20 {
		return fail("events ahead", errors.New("bad count"))
	}
	for range nAhead {
		seq := d.uvarint()
		account, err := d.str()
		if err != nil || seq <= t.applied || t.accounts[account] == nil {
			return fail("events ahead", errors.New("bad event"))
		}
		t.ahead[seq] = account
	}
	if !d.atEOF() {
		return fail("trailer", errors.New("data after the last token"))
	}
	return t, nil
}

// snapshotReader reads the snapshot format from a stream through a window of
// its own: faster than a byte at a time, and it never needs the whole
// snapshot in memory. Its first error sticks; reads after it give zeros.
type snapshotReader struct {
	src      io.Reader
	buf      []byte
	off, end int // buf[off:end] is read but not yet used
	eof      bool
	err      error
}

// errShort: the snapshot ended in the middle of something.
var errShort = errors.New("truncated")

// fill makes n bytes available, if the stream holds that many more.
func (d *snapshotReader) fill(n int) bool {
	if d.end-d.off >= n {
		return true
	}
	if n > len(d.buf) {
		return false // nothing the format holds is that long
	}
	d.end = copy(d.buf, d.buf[d.off:d.end])
	d.off = 0
	for d.end < n && !d.eof && d.err == nil {
		k, err := d.src.Read(d.buf[d.end:])
		d.end += k
		if err == io.EOF {
			d.eof = true
		} else if err != nil {
			d.err = err
		}
	}
	return d.end >= n
}

func (d *snapshotReader) bytes(n int) []byte {
	if d.err != nil || !d.fill(n) {
		if d.err == nil {
			d.err = errShort
		}
		return make([]byte, n)
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

func (d *snapshotReader) byte() byte { return d.bytes(1)[0] }

func (d *snapshotReader) uvarint() uint64 {
	d.fill(binary.MaxVarintLen64) // fewer at the end of the stream
	v, k := binary.Uvarint(d.buf[d.off:d.end])
	if d.err == nil && k <= 0 {
		d.err = errShort
	}
	if d.err != nil {
		return 0
	}
	d.off += k
	return v
}

func (d *snapshotReader) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// str reads a short length-prefixed string.
func (d *snapshotReader) str() (string, error) {
	n := d.uvarint()
	if n > 1024 {
		return "", errors.New("bad string")
	}
	s := string(d.bytes(int(n)))
	return s, d.err
}

// block reads n bytes as one string, a window at a time.
func (d *snapshotReader) block(n int) (string, error) {
	var b strings.Builder
	b.Grow(n)
	for b.Len() < n && d.err == nil {
		d.fill(1)
		if d.end == d.off {
			d.err = errShort
			break
		}
		k := min(n-b.Len(), d.end-d.off)
		b.Write(d.buf[d.off : d.off+k])
		d.off += k
	}
	return b.String(), d.err
}

// extra reads a token's rarer attributes.
func (d *snapshotReader) extra(x *extra) error {
	x.lastUsed = d.varint()
	var err error
	if x.lastIP, err = d.str(); err != nil {
		return err
	}
	n := d.uvarint()
	if d.err != nil || n > events.MaxAllowedIPs {
		return errors.New("bad allow-list")
	}
	for range n {
		ps, err := d.str()
		if err != nil {
			return err
		}
		p, err := events.ParsePrefix(ps)
		if err != nil {
			return err
		}
		x.allowed = append(x.allowed, p)
	}
	return nil
}

// features reads a set of features, as events.ParseFeatures gives it.
func (d *snapshotReader) features() ([]string, error) {
	n := d.uvarint()
	if d.err != nil || n == 0 || n > events.MaxFeatures {
		return nil, errors.New("bad number of features")
	}
	set := make([]string, n)
	for i := range set {
		f, err := d.str()
		if err != nil {
			return nil, err
		}
		set[i] = f
	}
	if parsed, err := events.ParseFeatures(set); err != nil || len(parsed) != len(set) || !slices.Equal(parsed, set) {
		return nil, errors.New("features not valid, sorted and each once")
	}
	return set, nil
}

// atEOF says whether the stream ended right here.
func (d *snapshotReader) atEOF() bool { return d.err == nil && !d.fill(1) && d.err == nil }

// Restore returns the table of the newest trusted snapshot, or an empty table
// when there is none or it cannot be trusted (it then says why in the log).
// With kept (nil: none), the node's own copy of the snapshot it stored last
// is read instead of the store's when it is at least as new: the reading
// kept.Prefetch started, if it did, which Restore ends in any case.
func Restore(ctx context.Context, store SnapshotStore, kept *SnapshotCopy, src DigestSource, trust *events.Trust, warn time.Duration, log *slog.Logger) *Table {
	if kept != nil {
		defer kept.Stop()
	}
	t, from, err := restore(ctx, store, kept, src, trust, warn, log)
	switch {
	case errors.Is(err, events.ErrNoSnapshot):
		log.Info("no snapshot: replaying the whole stream")
	case err != nil:
		log.Warn("snapshot not used: replaying the whole stream", "reason", err)
	default:
		log.Info("started from a snapshot", "seq", t.Applied(), "from", from)
		return t
	}
	return NewTable(warn)
}

// Where Restore's table came from, as its log line says.
const (
	FromCopy  = "the node's copy"
	FromStore = "the store"
)

// restore returns the table and where it came from.
func restore(ctx context.Context, store SnapshotStore, kept *SnapshotCopy, src DigestSource, trust *events.Trust, warn time.Duration, log *slog.Logger) (*Table, string, error) {
	newest, err := store.Newest(ctx)
	if err != nil && !errors.Is(err, events.ErrNoSnapshot) {
		return nil, "", err
	}
	if kept != nil {
		if t, ok := restoreCopy(ctx, kept, newest.Seq, src, trust, warn, log); ok {
			return t, FromCopy, nil
		}
	}
	if err != nil {
		return nil, "", err
	}
	snap, body, err := store.Latest(ctx)
	if err != nil {
		return nil, "", err
	}
	t, err := decodeSnapshot(ctx, snap, body, src, trust, warn)
	return t, FromStore, err
}

// restoreCopy returns the table of the node's copy of its snapshot, unless
// there is none, it is older than stored (another node stored a newer), or
// it fails a check (said in the log).
func restoreCopy(ctx context.Context, kept *SnapshotCopy, stored uint64, src DigestSource, trust *events.Trust, warn time.Duration, log *slog.Logger) (*Table, bool) {
	snap, t, err := kept.read(stored, trust, warn)
	if errors.Is(err, events.ErrNoSnapshot) || err == nil && t == nil {
		return nil, false
	}
	if err == nil {
		err = covers(ctx, snap, src)
	}
	if err != nil {
		log.Warn("the node's copy of its snapshot not used", "reason", err)
		return nil, false
	}
	return t, true
}

// decodeSnapshot decodes body, the body of snap, into a table if snap is
// trusted, covers src's stream, and the body is the one it describes. It
// closes body.
func decodeSnapshot(ctx context.Context, snap events.Snapshot, body io.ReadCloser, src DigestSource, trust *events.Trust, warn time.Duration) (*Table, error) {
	err := vouched(snap, trust)
	if err == nil {
		err = covers(ctx, snap, src)
	}
	if err != nil {
		body.Close()
		return nil, err
	}
	return decodeBody(snap, body, warn)
}

// vouched checks what snap's description says by itself: a trusted key
// signed its body's digest, and the body is not too large.
func vouched(snap events.Snapshot, trust *events.Trust) error {
	if err := trust.VerifyDigest(snap.Signer, snap.Body, snap.Sig); err != nil {
		return err
	}
	if snap.Size > MaxSnapshot {
		return errors.New("snapshot too large")
	}
	return nil
}

// covers checks that snap was made from src's stream: the message at its
// sequence is the one it names.
func covers(ctx context.Context, snap events.Snapshot, src DigestSource) error {
	if snap.Seq == 0 {
		return nil
	}
	at, err := src.DigestAt(ctx, snap.Seq)
	if err != nil {
		return fmt.Errorf("the message the snapshot covers: %w", err)
	}
	if at != snap.AtSeq {
		return errors.New("the snapshot was made from another stream")
	}
	return nil
}

// decodeBody decodes body, the body of snap (vouched for), into a table if
// it is the body snap describes. It closes body.
func decodeBody(snap events.Snapshot, body io.ReadCloser, warn time.Duration) (*Table, error) {
	// Closed once: at the end, or at a failed decoding, whose reading ahead
	// may be waiting for more of the body.
	closeBody := sync.OnceFunc(func() { body.Close() })
	defer closeBody()
	// Decode as the body arrives, and trust the table only once the body's
	// digest, taken on the way, is the one signed.
	digest := sha256.New()
	limited := &io.LimitedReader{R: body, N: MaxSnapshot + 1}
	ahead := startReadAhead(limited, digest)
	t, err := DecodeTable(ahead, snap.Size, warn)
	if err != nil {
		closeBody()
	}
	ahead.stop()
	if limited.N == 0 {
		return nil, errors.New("snapshot too large")
	}
	if err != nil {
		return nil, err
	}
	if events.Hash(digest.Sum(nil)) != snap.Body {
		return nil, errors.New("snapshot body does not match its digest")
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
	Copy     *SnapshotCopy // where the node keeps its own copy of each snapshot it stores; nil: nowhere
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
	if s.Copy != nil {
		// Before Put reads buf; a copy of a snapshot the store then
		// failed to take is still one the next start may use.
		snap.Size = int64(size)
		if err := s.Copy.Write(snap, buf.Bytes()); err != nil {
			s.Log.Warn("the snapshot's copy on disk not written: the next start downloads the snapshot", "err", err)
		}
	}
	if err := s.Store.Put(ctx, snap, &buf); err != nil {
		return err
	}
	s.last, s.lastAt = seq, time.Now()
	s.Log.Info("snapshot stored", "seq", seq, "bytes", size, "took", time.Since(start).Round(time.Millisecond))
	return nil
}
