package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
	"tokenledger/internal/retry"
)

// A regional node keeps, in its own JetStream domain, a mirror of the hub's
// stream: the same events at the same sequences, copied by the regional
// server from the hub over the leaf connection. The node follows the mirror
// as any node follows the stream; the hub's stream stays the only one
// written (see Hub).

// APIPrefix is the JetStream API of domain, as seen from another domain
// across a leaf connection.
func APIPrefix(domain string) string { return "$JS." + domain + ".API" }

// MirrorConfig is the regional mirror of the hub's stream: kept on disk,
// never deleted or purged, without limits, and written only by the server's
// copying from the stream of the same name in hubDomain.
func MirrorConfig(c events.Config, hubDomain string) natsjs.StreamConfig {
	sc := StreamConfig(c)
	sc.Description = "tokenledger events: a mirror of the hub's (domain " + hubDomain + ")"
	sc.Subjects = nil
	sc.Replicas = 1
	sc.Duplicates = 0
	sc.AllowAtomicPublish = false
	sc.Mirror = &natsjs.StreamSource{Name: c.Stream, External: &natsjs.ExternalStream{APIPrefix: APIPrefix(hubDomain)}}
	return sc
}

// EnsureMirror opens the regional mirror, creating it if it is missing and
// no history of it was seen. The hub need not be reachable: the server
// starts copying once it is. A stream of that name that is not a mirror of
// the hub's, or could lose events, is refused, never changed.
func EnsureMirror(ctx context.Context, js natsjs.JetStream, cfg events.Config, hubDomain string, seen Seen) (*Stream, error) {
	var s natsjs.Stream
	var err error
	if seen.Seq > 0 {
		if s, err = js.Stream(ctx, cfg.Stream); errors.Is(err, natsjs.ErrStreamNotFound) {
			return nil, lost(cfg, seen, false, "is missing", "someone deleted the regional mirror")
		}
	} else if s, err = js.CreateStream(ctx, MirrorConfig(cfg, hubDomain)); errors.Is(err, natsjs.ErrStreamNameAlreadyInUse) {
		s, err = js.Stream(ctx, cfg.Stream)
	}
	if err != nil {
		return nil, fmt.Errorf("regional mirror %s: %w", cfg.Stream, natsError(err))
	}
	st := &Stream{js: js, stream: s, cfg: cfg, hubDomain: hubDomain}
	if err := st.compatible(s.CachedInfo().Config); err != nil {
		return nil, err
	}
	if err := history(s.CachedInfo().State, cfg, seen, false); err != nil {
		return nil, err
	}
	return st, nil
}

// compatibleMirror refuses a regional stream that is not a mirror of the
// hub's stream, or would not keep every event.
func compatibleMirror(have natsjs.StreamConfig, cfg events.Config, hubDomain string) error {
	want := MirrorConfig(cfg, hubDomain)
	var problems []string
	switch m := have.Mirror; {
	case m == nil:
		problems = append(problems, "it is not a mirror")
	case m.Name != want.Mirror.Name || m.External == nil || m.External.APIPrefix != want.Mirror.External.APIPrefix:
		problems = append(problems, fmt.Sprintf("it does not mirror %s of domain %s", cfg.Stream, hubDomain))
	case m.FilterSubject != "" || len(m.SubjectTransforms) > 0 || m.OptStartSeq > 1 || m.OptStartTime != nil:
		problems = append(problems, "it mirrors only part of the stream")
	}
	problems = append(problems, losesEvents(have)...)
	if len(problems) > 0 {
		return events.Errorf(events.Invalid, "existing regional stream %s is not compatible (%v); fix or replace it by hand, tokenledger will not change it", cfg.Stream, problems)
	}
	return nil
}

// MirrorState is how far a regional mirror is behind the hub, as its
// server knows it.
type MirrorState struct {
	Last uint64 // the mirror's last sequence
	// Lag is how many events the hub held that the mirror did not, when the
	// hub last delivered one.
	Lag uint64
	// Silence is how long since the mirror last heard from the hub (an
	// event or the hub's heartbeat, each second while idle); negative:
	// never since the server started.
	Silence time.Duration
}

// Mirror says how far the regional mirror is behind the hub. The regional
// server answers, whether the hub is reachable or not.
func (s *Stream) Mirror(ctx context.Context) (MirrorState, error) {
	info, err := retry.Do(ctx, apiRead, func(ctx context.Context) (*natsjs.StreamInfo, error) { return s.stream.Info(ctx) })
	if err != nil {
		return MirrorState{}, natsError(err)
	}
	st := MirrorState{Last: info.State.LastSeq, Silence: -1}
	if m := info.Mirror; m != nil {
		st.Lag, st.Silence = m.Lag, m.Active
	}
	return st, nil
}

// ErrHubUnreachable is a regional node's answer to a command while its link
// to the hub is down: the hub is the only writer, and validations go on
// from the regional table.
var ErrHubUnreachable = events.Errorf(events.Unavailable, "the hub is unreachable from this region: commands need the hub, and fail until the link returns (validations go on from the regional table)")

// Hub is the hub's stream as a regional node writes and reads it: through a
// JetStream context on the hub's domain, across the leaf connection. The
// node's commands decide on the hub's stream and append there, under
// optimistic concurrency on the one stream. It opens the stream at its
// first use, so that a region starts while the hub is away, and refuses at
// once while the link is down (linked), rather than wait out a timeout.
type Hub struct {
	js     natsjs.JetStream
	cfg    events.Config
	linked func() bool

	mu     sync.Mutex
	stream *Stream
}

// OpenHub is the hub's stream seen from a region: js is a JetStream context
// on the hub's domain; linked says whether the leaf connection is up now
// (nil: assume so, and learn otherwise from NATS' refusals).
func OpenHub(js natsjs.JetStream, cfg events.Config, linked func() bool) *Hub {
	return &Hub{js: js, cfg: cfg, linked: linked}
}

// open is the hub's stream, opened once the link allows.
func (h *Hub) open(ctx context.Context) (*Stream, error) {
	if h.linked != nil && !h.linked() {
		return nil, ErrHubUnreachable
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stream != nil {
		return h.stream, nil
	}
	s, err := Open(ctx, h.js, h.cfg)
	if err != nil {
		return nil, h.failed(err)
	}
	s.AskServer(func() error {
		if h.linked != nil && !h.linked() {
			return ErrHubUnreachable
		}
		return nil
	})
	h.stream = s
	return s, nil
}

// failed says that the hub is unreachable when NATS found no one to answer
// (the link dropped between the look at it and the request).
func (h *Hub) failed(err error) error {
	if err == nil || errors.Is(err, ErrHubUnreachable) || events.ErrorCode(err) != events.Unavailable {
		return err
	}
	return fmt.Errorf("%w (%v)", ErrHubUnreachable, err)
}

// Append appends to the hub's stream (see Stream.Append).
func (h *Hub) Append(ctx context.Context, account string, expect uint64, evs []events.Event) (uint64, error) {
	s, err := h.open(ctx)
	if err != nil {
		return 0, err
	}
	seq, err := s.Append(ctx, account, expect, evs)
	return seq, h.failed(err)
}

// Read reads the hub's stream (see Stream.Read).
func (h *Hub) Read(ctx context.Context, opts events.ReadOptions, fn func(events.Msg) error) error {
	s, err := h.open(ctx)
	if err != nil {
		return err
	}
	return h.failed(s.Read(ctx, opts, fn))
}

// LastSeq asks the hub for the last sequence of its stream, or of an
// account's events (see Stream.LastSeq): the proof a regional table is
// current is against the hub's stream, not the mirror that may lag it.
func (h *Hub) LastSeq(ctx context.Context, account string) (uint64, error) {
	s, err := h.open(ctx)
	if err != nil {
		return 0, err
	}
	seq, err := s.LastSeq(ctx, account)
	return seq, h.failed(err)
}
