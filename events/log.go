package events

import (
	"errors"
	"time"
)

// The event log in plain terms: where events go, what a read gives back,
// and what is kept beside the stream. The JetStream adapter (package
// jetstream) speaks these, so that commands and projections read and append
// without a NATS type.

// Config names the stream and its subjects. The zero value is not usable;
// start from DefaultConfig.
type Config struct {
	Stream   string // TOKENS
	Prefix   string // tokens: events go on <Prefix>.events.<account>.<token_id>
	Replicas int    // copies kept by a JetStream cluster; 1 on a single server; AutoReplicas: let the adapter choose
}

// AutoReplicas asks the adapter to choose the copies of a stream it creates:
// three where the JetStream cluster can place three, else one.
const AutoReplicas = 0

// DefaultConfig is the contract's stream and subject prefix.
func DefaultConfig() Config { return Config{Stream: "TOKENS", Prefix: "tokens", Replicas: 1} }

// Subject is where an event about token tokenID of account goes.
func (c Config) Subject(account, tokenID string) string {
	return c.Prefix + ".events." + account + "." + tokenID
}

// AccountFilter matches every event of one account: the scope of optimistic
// concurrency, so that two nodes racing on one account cannot both win.
func (c Config) AccountFilter(account string) string { return c.Prefix + ".events." + account + ".*" }

// AllFilter matches every event.
func (c Config) AllFilter() string { return c.Prefix + ".events.>" }

// Msg is one stored event as read back: its stream sequence and time, the
// bytes exactly as stored, and the decoded event or why it could not be decoded.
type Msg struct {
	Seq     uint64
	Stored  time.Time
	Pending uint64 // messages after this one that match the read's filter
	Raw     []byte
	Digest  Hash // of Raw: what the account's next event names as prev
	Event   Event
	Err     error // set when Raw is not a valid event; Event is then zero
}

// Decode fills in Event, or Err when Raw is not a valid event, and Digest.
func (m *Msg) Decode() {
	m.Event, m.Err = Decode(m.Raw)
	m.Digest = Digest(m.Raw)
}

// DecodeForTable is Decode by DecodeForTable: Event has no id and no
// provenance, and its signature cannot be checked until Decode reads it again.
func (m *Msg) DecodeForTable() {
	m.Event, m.Err = DecodeForTable(m.Raw)
	m.Digest = Digest(m.Raw)
}

// ReadOptions narrow a read; the zero value reads the whole stream.
type ReadOptions struct {
	Account  string    // only this account's events
	AfterSeq uint64    // only events after this sequence
	Since    time.Time // only events stored at or after this instant
}

// Snapshot describes a stored image of a node's projections: the stream
// sequence it covers, the digest of the message at that sequence (so that it
// is only used on the stream it was made from), the digest of its body, and
// the signature of the node that made it. Size is the body's length in
// bytes, as the store holds it (read back; not signed, and not needed to
// store one).
type Snapshot struct {
	Seq    uint64
	AtSeq  Hash
	Body   Hash
	Signer string
	Sig    string
	Size   int64
}

// ErrNoSnapshot says that no snapshot has been stored yet.
var ErrNoSnapshot = errors.New("no snapshot")

// LastUse is when and from where a token was last seen to validate. It lives
// outside the stream, in a bucket beside it keyed <account>.<token_id>: a use
// is not a change of the table that an auditor replays, and written as an
// event it took the account's optimistic-concurrency sequence from real
// commands (a revoke lost five races in a row to use records).
type LastUse struct {
	Account string
	// TokenID is the id as the bucket's key holds it: the adapter
	// (jetstream.Used) checks it where it reads or writes a key, and
	// Table.NoteUse parses it. It is still a string because typing it
	// changes the adapter's key handling and its tests.
	TokenID string
	At      time.Time
	IP      string // "" when not known
	Node    string // the public key of the node that recorded it
}

// ErrNoSpace and ErrJetStreamDisabled are why a NATS server stores nothing
// until an operator acts: its disk (or its JetStream store limit) is full,
// or JetStream is switched off, which a clustered nats-server does by itself
// when a write finds its disk full. The adapter wraps them in an Unavailable
// error that says so; a node is not ready while either holds (see
// projections.Guard), and the README's known limits say what to do.
var (
	ErrNoSpace           = errors.New("the NATS server has no space left for JetStream")
	ErrJetStreamDisabled = errors.New("JetStream is disabled on the NATS server")
)
