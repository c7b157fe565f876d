package jetstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"tokenledger/events"
	"tokenledger/internal/retry"
)

// StreamConfig is the append-only stream: no delete, no purge, no limit that
// discards events. Atomic batches make a revoke of several names all or nothing.
func StreamConfig(c events.Config) natsjs.StreamConfig {
	return natsjs.StreamConfig{
		Name:               c.Stream,
		Description:        "tokenledger events: append-only",
		Subjects:           []string{c.AllFilter()},
		Storage:            natsjs.FileStorage,
		Retention:          natsjs.LimitsPolicy,
		Discard:            natsjs.DiscardNew,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxMsgsPerSubject:  -1,
		MaxMsgSize:         events.MaxEventSize,
		Duplicates:         2 * time.Minute,
		Replicas:           max(c.Replicas, 1),
		DenyDelete:         true,
		DenyPurge:          true,
		AllowAtomicPublish: true,
	}
}

// Stream is the ledger's event log on JetStream: the one place that appends
// and reads events.
type Stream struct {
	js      natsjs.JetStream
	stream  natsjs.Stream
	cfg     events.Config
	trouble func() error // see AskServer; nil: none
	// hubDomain is the hub's JetStream domain when this is a regional
	// mirror of its stream (see EnsureMirror); "" otherwise.
	hubDomain string
}

// AskServer lets Check and Append ask the NATS server that this node runs
// itself what keeps its JetStream from storing (embedded.JetStreamTrouble),
// set before either is used. A client sees less than the server: a stream
// whose store failed with a full disk still answers reads and its info, and
// takes writes without ever answering them; a store at its limit answers
// reads as usual.
func (s *Stream) AskServer(trouble func() error) { s.trouble = trouble }

// serverTrouble is what the server says keeps it from storing, or nil.
func (s *Stream) serverTrouble() error {
	if s.trouble == nil {
		return nil
	}
	return natsError(s.trouble())
}

// failed translates an append's failure. When JetStream gave no reason (no
// answer, or an error without a code), the server's own view, when there
// is one, says why.
func (s *Stream) failed(err error) error {
	err = natsError(err)
	said := errors.Is(err, events.ErrNoSpace) || errors.Is(err, events.ErrJetStreamDisabled)
	if code := events.ErrorCode(err); !said && (code == events.Unavailable || code == events.Internal) {
		if trouble := s.serverTrouble(); trouble != nil {
			return trouble
		}
	}
	return err
}

// Seen is what a node remembers of the stream it followed, so that it never
// takes a new empty stream, or one that lost events, for its history.
type Seen struct {
	Seq  uint64 // the last sequence the node has seen; 0: none
	File string // where the node keeps Seq, for the message that says how to forget it; "" when nowhere
}

// Ensure opens the stream, creating it if it is missing and no history of it
// has been seen: not by the node (seen), nor by the newest snapshot beside it.
// An existing stream whose configuration could lose or reject events is
// refused, never changed, and so is one that lost events: that ends before
// the seen sequence, or no longer starts at 1.
func Ensure(ctx context.Context, js natsjs.JetStream, cfg events.Config, seen Seen) (*Stream, error) {
	seen, snapshot := withSnapshot(ctx, js, cfg, seen)
	var s natsjs.Stream
	var err error
	if seen.Seq > 0 {
		// A node that has seen the stream never makes a new empty one in
		// its place: the lost history would look like a ledger without
		// tokens, and every revoke in it undone.
		if s, err = js.Stream(ctx, cfg.Stream); errors.Is(err, natsjs.ErrStreamNotFound) {
			return nil, lost(cfg, seen, snapshot, "is missing", "someone deleted it")
		}
	} else if s, err = create(ctx, js, cfg); errors.Is(err, natsjs.ErrStreamNameAlreadyInUse) {
		s, err = js.Stream(ctx, cfg.Stream)
	}
	if err == nil {
		err = compatible(s.CachedInfo().Config, cfg)
	}
	if err == nil {
		err = history(s.CachedInfo().State, cfg, seen, snapshot)
	}
	var apiErr *natsjs.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeSubjectOverlap {
		return nil, events.Errorf(events.Invalid, "stream %s cannot be created: another stream already takes subjects %s; tokenledger will not change it, remove that stream or its subjects by hand", cfg.Stream, cfg.AllFilter())
	}
	var coded *events.Error
	if errors.As(err, &coded) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Stream, natsError(err))
	}
	return &Stream{js: js, stream: s, cfg: cfg}, nil
}

// Check says whether the stream is still the history this node follows:
// there, configured to keep every event, starting at sequence 1 and holding
// at least up to seen, the last sequence the node has seen. It returns the
// stream's last sequence, and never creates or changes the stream. A stream
// that is wrong is NotFound (missing), Invalid (its configuration) or
// Conflict (events lost), each with what to do; a JetStream that does not
// answer, or cannot store (events.ErrNoSpace, events.ErrJetStreamDisabled: also as the
// server this node runs says, see AskServer), is Unavailable.
func (s *Stream) Check(ctx context.Context, seen uint64) (uint64, error) {
	if err := s.serverTrouble(); err != nil {
		return 0, err
	}
	info, err := retry.Do(ctx, apiRead, func(ctx context.Context) (*natsjs.StreamInfo, error) { return s.stream.Info(ctx) })
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		return 0, lost(s.cfg, Seen{Seq: seen}, false, "is missing", "someone deleted it")
	}
	if err != nil {
		return 0, natsError(err)
	}
	if err := s.compatible(info.Config); err != nil {
		return 0, err
	}
	if err := history(info.State, s.cfg, Seen{Seq: seen}, false); err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// history refuses a stream that lost events: one that ends before the
// sequence seen, or no longer starts at 1 (purged, or its first events
// deleted).
func history(state natsjs.StreamState, cfg events.Config, seen Seen, snapshot bool) error {
	if state.LastSeq < seen.Seq {
		return lost(cfg, seen, snapshot, fmt.Sprintf("ends at sequence %d", state.LastSeq),
			"it was replaced, or restored from an older backup")
	}
	if state.FirstSeq > 1 {
		return events.Errorf(events.Conflict, "stream %s starts at sequence %d, not 1: its first events were purged or deleted; restore the stream from a backup (see deploy/README.md)", cfg.Stream, state.FirstSeq)
	}
	return nil
}

// lost says that the stream does not hold the history seen, and what to do.
func lost(cfg events.Config, seen Seen, snapshot bool, what, why string) error {
	if seen.Seq == 0 {
		return events.Errorf(events.NotFound, "stream %s %s: %s; restore the stream from a backup (see deploy/README.md)", cfg.Stream, what, why)
	}
	witness := "this node has seen its history"
	if snapshot {
		witness = fmt.Sprintf("its newest snapshot (bucket %s) covers its history", snapshotBucket(cfg))
	}
	var forget []string
	if seen.File != "" {
		forget = append(forget, "remove "+seen.File)
	}
	if snapshot {
		forget = append(forget, fmt.Sprintf("delete the bucket %s (nats object del %s)", snapshotBucket(cfg), snapshotBucket(cfg)))
	}
	code, msg := events.Conflict, fmt.Sprintf("stream %s %s, but %s up to sequence %d: %s; restore the stream from a backup (see deploy/README.md)", cfg.Stream, what, witness, seen.Seq, why)
	if what == "is missing" {
		code = events.NotFound
	}
	if len(forget) > 0 {
		msg += ", or, to start a new empty ledger on purpose, " + strings.Join(forget, " and ")
	}
	return events.Errorf(code, "%s", msg)
}

// snapshotWait bounds Ensure's look at the newest snapshot: a start-up
// shortcut's witness, not worth a start that hangs.
const snapshotWait = 5 * time.Second

// withSnapshot raises seen to the sequence the newest snapshot beside the
// stream covers, and says whether it did: a memory of the history kept
// outside the node, for a node whose own record is gone. Any failure to
// read it counts as no snapshot.
func withSnapshot(ctx context.Context, js natsjs.JetStream, cfg events.Config, seen Seen) (Seen, bool) {
	ctx, cancel := context.WithTimeout(ctx, snapshotWait)
	defer cancel()
	store, err := js.ObjectStore(ctx, snapshotBucket(cfg))
	if err != nil {
		return seen, false
	}
	info, err := store.GetInfo(ctx, snapshotObject)
	if err != nil {
		return seen, false
	}
	seq, err := strconv.ParseUint(info.Metadata["seq"], 10, 64)
	if err != nil || seq <= seen.Seq {
		return seen, false
	}
	seen.Seq = seq
	return seen, true
}

// snapshotBucket is the object store beside the stream that OpenSnapshots
// keeps the newest snapshot in.
func snapshotBucket(cfg events.Config) string { return cfg.Stream + "_SNAPSHOTS" }

// JetStream error codes of stream placement that the nats.go client does not name.
const (
	errCodeNoPeers              = 10005 // the cluster has too few servers that can take a copy now
	errCodeClusterUnavailable   = 10008 // "JetStream system temporarily unavailable": no meta leader yet, or lost
	errCodeInsufficientResource = 10023
	errCodeSubjectOverlap       = 10065
	errCodeReplicasNotSupported = 10074 // a single server, not a cluster
)

// placementWait bounds how long Ensure keeps asking a cluster for three copies:
// just after a cluster starts, its leader may not yet know every server.
const placementWait = 5 * time.Second

// create makes the stream. With AutoReplicas it asks for three copies and
// settles for one where the server is not clustered or the cluster cannot
// place three; asking is the one way that needs no system-account rights.
func create(ctx context.Context, js natsjs.JetStream, cfg events.Config) (natsjs.Stream, error) {
	sc := StreamConfig(cfg)
	if cfg.Replicas != events.AutoReplicas {
		return js.CreateStream(ctx, sc)
	}
	sc.Replicas = 3
	deadline := time.Now().Add(placementWait)
	for {
		s, err := js.CreateStream(ctx, sc)
		var apiErr *natsjs.APIError
		if !errors.As(err, &apiErr) {
			return s, err
		}
		switch apiErr.ErrorCode {
		case errCodeReplicasNotSupported:
		case errCodeNoPeers, errCodeInsufficientResource:
			if time.Now().Before(deadline) {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(250 * time.Millisecond):
				}
				continue
			}
		default:
			return s, err
		}
		sc.Replicas = 1
		return js.CreateStream(ctx, sc)
	}
}

// Replicas is how many copies of the stream JetStream keeps.
func (s *Stream) Replicas() int { return s.stream.CachedInfo().Config.Replicas }

// Open opens an existing stream for reading: all an auditor needs.
func Open(ctx context.Context, js natsjs.JetStream, cfg events.Config) (*Stream, error) {
	s, err := js.Stream(ctx, cfg.Stream)
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		return nil, events.Errorf(events.Unavailable, "stream %s not found: has a node (tokenledger serve) run on this NATS?", cfg.Stream)
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Stream, natsError(err))
	}
	return &Stream{js: js, stream: s, cfg: cfg}, nil
}

// compatible refuses a stream that is not the one s stands for: the
// stream (see compatible), or a regional mirror of it (compatibleMirror).
func (s *Stream) compatible(have natsjs.StreamConfig) error {
	if s.hubDomain != "" {
		return compatibleMirror(have, s.cfg, s.hubDomain)
	}
	return compatible(have, s.cfg)
}

// compatible refuses a stream that would not keep every event, with a message
// that says which setting is wrong.
func compatible(have natsjs.StreamConfig, cfg events.Config) error {
	want := StreamConfig(cfg)
	var problems []string
	if !slices.Contains(have.Subjects, want.Subjects[0]) {
		problems = append(problems, fmt.Sprintf("subjects %v do not include %s", have.Subjects, want.Subjects[0]))
	}
	problems = append(problems, losesEvents(have)...)
	if have.Retention != natsjs.LimitsPolicy {
		problems = append(problems, "its retention is not limits")
	}
	if !have.AllowAtomicPublish {
		problems = append(problems, "it does not allow atomic publish")
	}
	if have.MaxMsgSize > 0 && have.MaxMsgSize < want.MaxMsgSize {
		problems = append(problems, fmt.Sprintf("it refuses events over %d bytes (want %d)", have.MaxMsgSize, want.MaxMsgSize))
	}
	if len(problems) > 0 {
		return events.Errorf(events.Invalid, "existing stream %s is not compatible (%v); fix or replace it by hand, tokenledger will not change it", cfg.Stream, problems)
	}
	return nil
}

// losesEvents says how a stream (the hub's, or a region's mirror of it)
// could lose or forget events; none: it keeps every one.
func losesEvents(have natsjs.StreamConfig) []string {
	var problems []string
	if !have.DenyDelete || !have.DenyPurge {
		problems = append(problems, "it allows delete or purge")
	}
	if have.MaxMsgs > 0 || have.MaxBytes > 0 || have.MaxAge > 0 || have.MaxMsgsPerSubject > 0 {
		problems = append(problems, "it has limits that discard events")
	}
	if have.Storage != natsjs.FileStorage {
		problems = append(problems, "it keeps events in memory only")
	}
	return problems
}

// Config returns the stream's names.
func (s *Stream) Config() events.Config { return s.cfg }

// Append stores evs, all about one account, as one atomic unit, on condition
// that the account's last event is still at sequence expect (0: none yet). It
// returns the sequence of the last stored event. A lost race is a Conflict.
// A signed event is stored as the bytes Sign sealed (events.Event.Sealed).
func (s *Stream) Append(ctx context.Context, account string, expect uint64, evs []events.Event) (uint64, error) {
	if len(evs) == 0 {
		return 0, events.Errorf(events.Invalid, "nothing to append")
	}
	msgs := make([]*nats.Msg, len(evs))
	for i, e := range evs {
		if e.Account != account {
			return 0, events.Errorf(events.Internal, "event for account %s appended to %s", e.Account, account)
		}
		b := e.Sealed() // as signed: the event is encoded once on its way here
		if b == nil {
			var err error
			if b, err = events.Encode(e); err != nil {
				return 0, err
			}
		}
		m := nats.NewMsg(s.cfg.Subject(e.Account, e.TokenID.String()))
		m.Data = b
		m.Header.Set(natsjs.MsgIDHeader, e.ID)
		msgs[i] = m
	}
	msgs[0].Header.Set(natsjs.ExpectedLastSubjSeqHeader, strconv.FormatUint(expect, 10))
	msgs[0].Header.Set(natsjs.ExpectedLastSubjSeqSubjHeader, s.cfg.AccountFilter(account))
	if len(msgs) == 1 {
		ack, err := s.publish(ctx, msgs[0])
		if err != nil {
			return 0, s.failed(err)
		}
		return ack.Sequence, nil
	}
	seq, err := s.appendBatch(ctx, msgs)
	if err != nil {
		return 0, s.failed(err)
	}
	return seq, nil
}

// ackWait bounds the wait for one acknowledgement before the message is sent
// again: a server lost with the message in flight never answers. (A
// variable for a test that sends copies on purpose.)
var ackWait = 3 * time.Second

// errCodeDuplicateInProcess: a message with this id is being stored right now.
const errCodeDuplicateInProcess = 10158

// publish sends m until JetStream acknowledges it or ctx ends. The message id
// makes a second copy of a stored message return the first one's sequence,
// so the retry can neither store an event twice nor lose a race it won. It
// stops early when the server says it cannot store (see AskServer): a
// stream whose disk filled never answers again.
//
// Two refusals say "not now" rather than no: 10158, a copy whose first is
// still being stored, and, on a clustered stream, 10164, a message under an
// expected-sequence filter that has one in flight. The leader acknowledges
// an event before it clears its filter's in-flight mark, so a writer's next
// event, sent on the acknowledgement, can meet its own previous one (seen in
// a loaded cluster test, and at once with copies sent after a millisecond);
// a copy meets its first. Both are asked again a moment later, up to
// inProcessTries times, until the answer is a sequence, or a conflict with
// a number when another writer's event was stored first.
func (s *Stream) publish(ctx context.Context, m *nats.Msg) (*natsjs.PubAck, error) {
	for tries := 0; ; {
		actx, cancel := context.WithTimeout(ctx, ackWait)
		ack, err := s.js.PublishMsg(actx, m)
		cancel()
		var apiErr *natsjs.APIError
		inProcess := errors.As(err, &apiErr) && (apiErr.ErrorCode == errCodeDuplicateInProcess ||
			apiErr.ErrorCode == natsjs.JSErrCodeStreamWrongLastSequenceConstant)
		if inProcess {
			tries++
		}
		if !errors.Is(err, context.DeadlineExceeded) && !inProcess || tries > inProcessTries || ctx.Err() != nil {
			return ack, err
		}
		if trouble := s.serverTrouble(); trouble != nil {
			return nil, trouble
		}
		if inProcess {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(inProcessPause):
			}
		}
	}
}

// inProcessPause and inProcessTries: how often, and how many times, publish
// asks again while the answer is "in flight" (about two seconds in all).
const (
	inProcessPause = 20 * time.Millisecond
	inProcessTries = 100
)

// appendBatch publishes msgs as one JetStream atomic batch: the server stores
// all of them or none, and says so in one acknowledgement, which jetstreamext
// checks names the whole batch. Only the first carries the concurrency check,
// and only it waits for the server's word before the rest follow, so that a
// lost race stops the batch at once.
func (s *Stream) appendBatch(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	flow := jetstreamext.BatchFlowControl{AckFirst: true, AckTimeout: s.js.Options().DefaultTimeout}
	if deadline, ok := ctx.Deadline(); ok {
		flow.AckTimeout = time.Until(deadline)
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, s.js, msgs, flow)
	if err != nil {
		return 0, natsError(err)
	}
	return ack.Sequence, nil
}

// natsError translates NATS failures once, at this edge: a lost race on the
// expected sequence (10071, or 10164 on a replicated stream) is a Conflict;
// a server that cannot store is Unavailable and says why (see events.ErrNoSpace);
// no server or no answer, or a cluster without a leader for the moment
// (10008), is Unavailable. An error that already has a code
// keeps it.
func natsError(err error) error {
	var coded *events.Error
	if err == nil || errors.As(err, &coded) {
		return err
	}
	var apiErr *natsjs.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case natsjs.JSErrCodeStreamWrongLastSequence, natsjs.JSErrCodeStreamWrongLastSequenceConstant:
			return fmt.Errorf("%w: %v", events.Errorf(events.Conflict, "another change to this account was stored first"), err)
		case errCodeInsufficientResource, errCodeStorageResourcesExceeded:
			return outage(events.ErrNoSpace, err)
		case natsjs.JSErrCodeJetStreamNotEnabled, natsjs.JSErrCodeJetStreamNotEnabledForAccount:
			return outage(events.ErrJetStreamDisabled, err)
		case errCodeClusterUnavailable:
			return fmt.Errorf("%w: %v", events.Errorf(events.Unavailable, "JetStream is not available for a moment"), err)
		}
	}
	// nats-server's own test for a full disk (isOutOfSpaceErr): the text of
	// ENOSPC, in a stream's store failure or the server's health.
	if strings.Contains(err.Error(), "no space left") {
		return outage(events.ErrNoSpace, err)
	}
	if apiErr != nil {
		return err
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, natsjs.ErrNoStreamResponse),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("%w: %v", events.Errorf(events.Unavailable, "JetStream did not answer"), err)
	}
	return err
}

// errCodeStorageResourcesExceeded (10047): the account's JetStream store is
// at its limit. Its sibling errCodeInsufficientResource (10023) is the
// server's: max_file_store, by default 75% of the disk's free space when the
// server started plus what it held then; or, creating a stream, no server
// with room for it.
const errCodeStorageResourcesExceeded = 10047

// outage is an Unavailable error that also matches events.ErrNoSpace or
// events.ErrJetStreamDisabled (kind), with NATS' own words in brackets.
func outage(kind, err error) error {
	return outageError{events.Errorf(events.Unavailable, "%v (%v)", kind, err), kind}
}

type outageError struct {
	coded *events.Error
	kind  error
}

func (e outageError) Error() string   { return e.coded.Error() }
func (e outageError) Unwrap() []error { return []error{e.coded, e.kind} }
