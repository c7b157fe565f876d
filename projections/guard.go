package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"tokenledger/events"

	"tokenledger/internal/atomicfile"
)

// StreamCheck is what the guard needs of the stream (*jetstream.Stream).
type StreamCheck interface {
	Check(ctx context.Context, seen uint64) (uint64, error)
	DigestAt(ctx context.Context, seq uint64) (events.Hash, error)
}

// DefaultGuardInterval is how often a Guard looks at the stream.
const DefaultGuardInterval = 5 * time.Second

// guardWait bounds one look at the stream.
const guardWait = 10 * time.Second

// Guard watches the stream a node follows. The stream is the ledger: if it
// is deleted, changed so that it could lose events, or loses events (its last
// sequence below what the node applied, its first past 1, another event
// where the node applied one), the node must not go on answering as if
// nothing happened, nor take a new empty stream for its history. The guard
// then halts the Follower and raises an ALERT; it resumes the follower once
// the stream is back as the node saw it. A NATS server that stores nothing
// until an operator acts (a full disk, JetStream switched off) halts the
// follower too, with an ERROR that says what to do, until a look finds
// JetStream storing again. It never creates or changes the stream. It also
// records the last sequence the node has seen in Seen, so that the next
// start can refuse a stream that lost it (see jetstream.Ensure).
type Guard struct {
	Stream   StreamCheck
	Follower *Follower
	Seen     *SeenFile     // where the node records what it has seen; nil: nowhere
	Interval time.Duration // between looks; DefaultGuardInterval when zero
	Log      *slog.Logger

	seen uint64    // the highest sequence seen
	mark seenEvent // the newest applied event the guard has looked at
}

// seenEvent is a stored event as the node applied it: the guard checks that
// the stream still holds it, so that a stream replaced by another with as
// many events is not taken for the one the node followed.
type seenEvent struct {
	seq    uint64
	digest events.Hash
}

// Run looks at the stream every Interval, and at once when following it
// fails, until ctx ends; then it records what the node has seen a last time.
func (g *Guard) Run(ctx context.Context) error {
	interval := g.Interval
	if interval <= 0 {
		interval = DefaultGuardInterval
	}
	if g.Seen != nil {
		g.seen = g.Seen.Seq()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		g.check(ctx)
		g.record()
		select {
		case <-ctx.Done():
			g.record()
			return nil
		case <-tick.C:
		case <-g.Follower.Failed():
		}
	}
}

// check looks at the stream once, and halts or resumes the follower.
func (g *Guard) check(ctx context.Context) {
	f := g.Follower
	g.seen = max(g.seen, f.table.Applied())
	cctx, cancel := context.WithTimeout(ctx, guardWait)
	defer cancel()
	_, err := g.Stream.Check(cctx, g.seen)
	if err == nil && g.mark.seq > 0 {
		err = g.sameAt(cctx, g.mark)
	}
	switch events.ErrorCode(err) {
	case "":
	case events.NotFound, events.Invalid, events.Conflict:
		reason := events.ErrorMessage(err)
		if f.Halted() != reason {
			g.Log.Error("ALERT: the stream this node follows changed: "+reason+"; this node does not answer until the stream is back as it was",
				"stream_seen", g.seen)
			f.Halt(reason)
		}
		return
	case events.Unavailable:
		if remedy := cannotStore(err); remedy != "" {
			reason := events.ErrorMessage(err)
			if f.Halted() != reason {
				g.Log.Error(reason+"; this node is not ready and takes no command until JetStream stores again: "+remedy+" (see the README's known limits)",
					"stream_seen", g.seen)
				f.Halt(reason)
			}
			return
		}
		fallthrough
	default:
		if ctx.Err() == nil {
			g.Log.Warn("cannot look at the stream; looking again later", "err", err)
		}
		return
	}
	if f.Halted() != "" {
		g.Log.Info("the stream is back as this node saw it, and JetStream stores: catching up before answering again", "stream_seen", g.seen)
		f.Resume()
		return
	}
	if applied := f.table.Applied(); applied > g.mark.seq {
		if d, err := g.Stream.DigestAt(cctx, applied); err == nil {
			g.mark = seenEvent{applied, d}
		}
	}
}

// cannotStore says what an operator does about a NATS server that stores
// nothing until they act (see events.ErrNoSpace); "" for any other failure,
// which may pass by itself.
func cannotStore(err error) string {
	switch {
	case errors.Is(err, events.ErrNoSpace):
		return "free space on the NATS server's disk (or raise its max_file_store), then restart it; with the embedded server, restart this node"
	case errors.Is(err, events.ErrJetStreamDisabled):
		return "a NATS server switches JetStream off when a write finds its disk full: free space, then reload (nats-server --signal reload) or restart it; with the embedded server, restart this node"
	}
	return ""
}

// sameAt says whether the stream still holds the event at e.seq that the node
// applied.
func (g *Guard) sameAt(ctx context.Context, e seenEvent) error {
	d, err := g.Stream.DigestAt(ctx, e.seq)
	if err != nil {
		return err
	}
	if d != e.digest {
		return events.Errorf(events.Conflict, "the stream holds another event at sequence %d than the one this node applied: it is not the history this node followed (replaced?); restore the stream from a backup (see deploy/README.md)", e.seq)
	}
	return nil
}

// record writes the highest sequence seen to Seen, when it grew.
func (g *Guard) record() {
	if g.Seen == nil {
		return
	}
	g.seen = max(g.seen, g.Follower.table.Applied())
	if err := g.Seen.Store(g.seen); err != nil {
		g.Log.Warn("cannot record the last sequence this node has seen", "err", err)
	}
}

// SeenFile records, in a node's data directory, the last sequence of the
// stream that the node has seen: one line, the stream's name and the
// sequence. It outlives the stream, so that a node that finds its stream
// missing or shorter than it saw refuses to start over it.
type SeenFile struct {
	path   string
	stream string

	mu  sync.Mutex
	seq uint64 // as stored
}

// OpenSeen reads the record at path of stream; a missing file, or one about
// another stream, has seen nothing.
func OpenSeen(path, stream string) (*SeenFile, error) {
	s := &SeenFile{path: path, stream: stream}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	name, seq, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil {
		return nil, fmt.Errorf("%s: not a stream name and a sequence (%q); remove it only if this node should forget the history it has seen", path, b)
	}
	if name == stream {
		s.seq = n
	}
	return s, nil
}

// Path is where the record is kept.
func (s *SeenFile) Path() string { return s.path }

// Seq is the sequence recorded.
func (s *SeenFile) Seq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// Store records seq when it is above the sequence recorded, atomically: a
// crash leaves the old record or the new one, never a torn one.
func (s *SeenFile) Store(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq <= s.seq {
		return nil
	}
	if err := atomicfile.Write(s.path, fmt.Appendf(nil, "%s %d\n", s.stream, seq), 0o600); err != nil {
		return err
	}
	s.seq = seq
	return nil
}
