package events

import (
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
)

// Event types as they travel. They are fixed: auditors' tools match on them.
const (
	TypeCreated = "token.created"
	TypeRenamed = "token.renamed"
	TypeRevoked = "token.revoked"
	// Added after schema v1's first three; old streams simply lack them.
	TypeRotated    = "token.rotated"
	TypeAllowedIPs = "token.allowed_ips_set"
	TypeUsed       = "token.used"
	// Added with limited-access tokens (issue 18).
	TypeFeaturesSet = "token.features_set"
)

// Version is the envelope's schema version.
const Version = 1

// Event is one fact about one token of one account, as stored on the stream.
// Data is exactly one of TokenCreated, TokenRenamed, TokenRevoked,
// TokenRotated, AllowedIPsSet, FeaturesSet or TokenUsed.
type Event struct {
	ID      string    // a ULID, also the message's Nats-Msg-Id
	At      time.Time // when the node decided it
	Account string
	TokenID TokenID
	Actor   Actor
	Data    Data
	Prev    string // digest of the account's previous event; "" for its first
	Signer  string // public key of the node that signed it
	Sig     string // Ed25519 signature, base64url; see sign.go

	sealed []byte // the event's bytes as Sign sealed them; see Sealed
}

// Data is the type-specific part of an event. Each type below holds all
// that the package knows of it: its fields as they travel, its type string,
// how it is read by hand (scan, beside the JSON its struct tags describe),
// what it must be (check, which also puts its lists in the form the ledger
// keeps), and how it shows to a reader (Label, Bears). dataTypes lists them;
// doc.go says how to add one.
type Data interface {
	// Label is how the event names its token to a reader (history's NAME
	// column): the name it bore, or old->new for a rename; "" when the
	// event's data does not say.
	Label() string
	// Bears says whether the event shows its token bearing name, so that
	// a history by name finds every token that ever had it.
	Bears(name string) bool
	eventType() string
}

// dataTypes are the event types this package reads, by type string. A type
// is a struct with Data's methods, and scan and check on its pointer.
var dataTypes = register(
	typeOf[TokenCreated](),
	typeOf[TokenRenamed](),
	typeOf[TokenRevoked](),
	typeOf[TokenRotated](),
	typeOf[AllowedIPsSet](),
	typeOf[FeaturesSet](),
	typeOf[TokenUsed](),
)

// Types lists the event types, sorted: what a tool that shows every type
// of event, or a test of one, goes through.
func Types() []string {
	out := make([]string, 0, len(dataTypes))
	for name := range dataTypes {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// TokenCreated: a token was issued. Only its hash is ever recorded.
//
// Features and ReadOnly came later (issue 18) and are written only when
// set, so that an event without them keeps its bytes: a token created
// before them, or without them, has full access and may write. FullAccess
// is written as the same fact as an empty Features, for readers that look
// only at it. Decode refuses an event that claims full access and lists
// features; a token without features has full access whatever the event's
// full_access says.
type TokenCreated struct {
	Name       string   `json:"name"`
	TokenHash  Hash     `json:"token_hash"`
	ExpiresAt  *int64   `json:"expires_at"` // Unix seconds, nil for never
	FullAccess bool     `json:"full_access"`
	AllowedIPs []Prefix `json:"allowed_ips,omitempty"` // none means any address
	Features   []string `json:"features,omitempty"`    // what a limited token may do, sorted; none: full access
	ReadOnly   bool     `json:"readonly,omitempty"`    // it may only do what changes nothing
}

func (TokenCreated) eventType() string        { return TypeCreated }
func (d TokenCreated) Label() string          { return d.Name }
func (d TokenCreated) Bears(name string) bool { return d.Name == name }

func (TokenCreated) scan(s *scanner) (Data, error) {
	var d TokenCreated
	s.expect(`{"name":`)
	d.Name = s.str()
	s.expect(`,"token_hash":`)
	d.TokenHash = s.hash()
	s.expect(`,"expires_at":`)
	d.ExpiresAt = s.intOrNull()
	s.expect(`,"full_access":`)
	d.FullAccess = s.boolean()
	if s.skip(`,"allowed_ips":`) {
		d.AllowedIPs = s.prefixes()
	}
	if s.skip(`,"features":`) {
		d.Features = s.strs()
	}
	if s.skip(`,"readonly":`) {
		d.ReadOnly = s.boolean()
	}
	s.expect(`}`)
	err := d.check() // before d is boxed: check puts its lists in order
	return d, err
}

func (d *TokenCreated) check() (err error) {
	if err := firstError(CheckName(d.Name), checkHash(d.TokenHash)); err != nil {
		return err
	}
	if d.AllowedIPs, err = checkPrefixes(d.AllowedIPs); err != nil {
		return err
	}
	if d.Features, err = checkFeatures(d.Features); err != nil {
		return err
	}
	if d.FullAccess && len(d.Features) > 0 {
		return Errorf(Invalid, "a token created with full access has no features")
	}
	return nil
}

// TokenRenamed: a live token took a new name.
type TokenRenamed struct {
	OldName string `json:"old_name"`
	NewName string `json:"new_name"`
}

func (TokenRenamed) eventType() string        { return TypeRenamed }
func (d TokenRenamed) Label() string          { return d.OldName + "->" + d.NewName }
func (d TokenRenamed) Bears(name string) bool { return d.OldName == name || d.NewName == name }

func (TokenRenamed) scan(s *scanner) (Data, error) {
	var d TokenRenamed
	s.expect(`{"old_name":`)
	d.OldName = s.str()
	s.expect(`,"new_name":`)
	d.NewName = s.str()
	s.expect(`}`)
	err := d.check() // before d is boxed: check puts its lists in order
	return d, err
}

func (d *TokenRenamed) check() error { return firstError(CheckName(d.OldName), CheckName(d.NewName)) }

// TokenRevoked: a live token was removed for good.
type TokenRevoked struct {
	Name string `json:"name"`
}

func (TokenRevoked) eventType() string        { return TypeRevoked }
func (d TokenRevoked) Label() string          { return d.Name }
func (d TokenRevoked) Bears(name string) bool { return d.Name == name }

func (TokenRevoked) scan(s *scanner) (Data, error) {
	var d TokenRevoked
	s.expect(`{"name":`)
	d.Name = s.str()
	s.expect(`}`)
	err := d.check() // before d is boxed: check puts its lists in order
	return d, err
}

func (d *TokenRevoked) check() error { return CheckName(d.Name) }

// TokenRotated: a live token got a new secret; the old one stops working at
// GraceUntil (Unix seconds), or at once when it is nil.
type TokenRotated struct {
	Name         string `json:"name"`
	TokenHash    Hash   `json:"token_hash"`
	OldTokenHash Hash   `json:"old_token_hash"`
	GraceUntil   *int64 `json:"grace_until"`
}

func (TokenRotated) eventType() string        { return TypeRotated }
func (d TokenRotated) Label() string          { return d.Name }
func (d TokenRotated) Bears(name string) bool { return d.Name == name }

func (TokenRotated) scan(s *scanner) (Data, error) {
	var d TokenRotated
	s.expect(`{"name":`)
	d.Name = s.str()
	s.expect(`,"token_hash":`)
	d.TokenHash = s.hash()
	s.expect(`,"old_token_hash":`)
	d.OldTokenHash = s.hash()
	s.expect(`,"grace_until":`)
	d.GraceUntil = s.intOrNull()
	s.expect(`}`)
	err := d.check() // before d is boxed: check puts its lists in order
	return d, err
}

func (d *TokenRotated) check() error {
	return firstError(CheckName(d.Name), checkHash(d.TokenHash), checkHash(d.OldTokenHash))
}

// AllowedIPsSet: a live token's address allow-list was replaced (empty: any address).
type AllowedIPsSet struct {
	Name       string   `json:"name"`
	AllowedIPs []Prefix `json:"allowed_ips"`
}

func (AllowedIPsSet) eventType() string        { return TypeAllowedIPs }
func (d AllowedIPsSet) Label() string          { return d.Name }
func (d AllowedIPsSet) Bears(name string) bool { return d.Name == name }

func (AllowedIPsSet) scan(s *scanner) (Data, error) {
	var d AllowedIPsSet
	s.expect(`{"name":`)
	d.Name = s.str()
	s.expect(`,"allowed_ips":`)
	d.AllowedIPs = s.prefixes()
	s.expect(`}`)
	err := d.check() // before d is boxed: check puts its lists in order
	return d, err
}

func (d *AllowedIPsSet) check() (err error) {
	if err := CheckName(d.Name); err != nil {
		return err
	}
	d.AllowedIPs, err = checkPrefixes(d.AllowedIPs)
	return err
}

// FeaturesSet: a live token's features were replaced; none gives it full
// access again. Its read-only flag stays as it was created.
type FeaturesSet struct {
	Name     string   `json:"name"`
	Features []string `json:"features"` // sorted; [] for full access
}

func (FeaturesSet) eventType() string        { return TypeFeaturesSet }
func (d FeaturesSet) Label() string          { return d.Name }
func (d FeaturesSet) Bears(name string) bool { return d.Name == name }

func (FeaturesSet) scan(s *scanner) (Data, error) {
	var d FeaturesSet
	s.expect(`{"name":`)
	d.Name = s.str()
	s.expect(`,"features":`)
	d.Features = s.strs()
	s.expect(`}`)
	err := d.check() // before d is boxed: check puts its lists in order
	return d, err
}

func (d *FeaturesSet) check() (err error) {
	if err := CheckName(d.Name); err != nil {
		return err
	}
	d.Features, err = checkFeatures(d.Features)
	return err
}

// TokenUsed: a token validated, at the event's time, from IP if known. Nodes
// write at most one per token per --used-every. Its data does not name the
// token: history shows no NAME for it.
//
// IP stays a string: the decoder takes any string here, as it always has,
// and an address type would refuse (and write back differently) events it
// reads today. Record a use with the address already checked.
type TokenUsed struct {
	IP string `json:"ip,omitempty"`
}

func (TokenUsed) eventType() string { return TypeUsed }
func (TokenUsed) Label() string     { return "" }
func (TokenUsed) Bears(string) bool { return false }
func (d *TokenUsed) check() error   { return nil }

func (TokenUsed) scan(s *scanner) (Data, error) {
	var d TokenUsed
	if s.skip(`{"ip":`) {
		d.IP = s.str()
	} else {
		s.expect(`{`)
	}
	s.expect(`}`)
	err := d.check() // before d is boxed: check puts its lists in order
	return d, err
}

// Actor says who caused an event.
type Actor struct {
	Kind string `json:"kind"` // operator, account or token
	Name string `json:"name"`
	// TokenID is the acting token's id, "" when no token acts. It stays a
	// string: the decoder reads the actor as any strings (only a command's
	// CheckActor holds it to a ULID), and a TokenID would refuse, or write
	// back in other bytes, events that decode today. A command parses it
	// once, to find the token acting.
	TokenID string `json:"token_id,omitempty"`
	Remote  string `json:"remote,omitempty"`
	// Via is the authenticated identity that delivered the command, set by
	// the node, never taken from the request: nats:<user> for a command over
	// NATS. It is written after the fields above, so events without it keep
	// their bytes (and signatures) as they were.
	Via string `json:"via,omitempty"`
}

// Actor kinds.
const (
	ActorOperator = "operator"
	ActorAccount  = "account"
	ActorToken    = "token"
)

// Type is the event's type string.
func (e Event) Type() string { return e.Data.eventType() }

// NewID returns a fresh ULID for an event.
func NewID() string { return ulid.Make().String() }

// atLayout is the envelope's time format: RFC 3339, UTC, milliseconds.
const atLayout = "2006-01-02T15:04:05.000Z07:00"

// envelope is the wire form, schema v1.
type envelope struct {
	V       int             `json:"v"`
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	At      string          `json:"at"`
	Account string          `json:"account"`
	TokenID string          `json:"token_id"`
	Actor   Actor           `json:"actor"`
	Data    json.RawMessage `json:"data"`
	Prev    string          `json:"prev,omitempty"`
	Signer  string          `json:"signer,omitempty"`
	Sig     string          `json:"sig,omitempty"` // always last: the signature covers what precedes it
}

// MaxEventSize bounds what the decoder accepts; a real event is a few hundred bytes.
const MaxEventSize = 64 << 10

// Encode writes an event as one JSON object.
func Encode(e Event) ([]byte, error) {
	data, err := json.Marshal(e.Data)
	if err != nil {
		return nil, err
	}
	return json.Marshal(envelope{
		V: Version, ID: e.ID, Type: e.Type(), At: e.At.UTC().Format(atLayout),
		Account: e.Account, TokenID: e.TokenID.String(), Actor: e.Actor, Data: data,
		Prev: e.Prev, Signer: e.Signer, Sig: e.Sig,
	})
}

// Decode reads one event and checks that it is well formed: a known version
// and type, a valid account, ULIDs and the fields its type requires. An event
// that fails here is never applied. The event's lists are as the ledger keeps
// them: allow-lists without repeats, features sorted and without repeats.
//
// An event in the exact layout Encode writes is read by hand (see
// scanCanonical); any other input goes through encoding/json. Both give the
// same event, or the same error, for every input.
func Decode(b []byte) (Event, error) { return decode(b, true) }

// DecodeForTable is Decode for replaying the stream into a projection. It
// accepts and refuses exactly what Decode does, and gives the same event
// without what no projection reads, its id and its provenance: ID, Actor,
// Signer and Sig are empty. Copying those is over a third of the bytes that
// decoding a signed event allocates, and a node that starts replays every
// event on the stream. A signature is checked on the event as Decode gives it.
func DecodeForTable(b []byte) (Event, error) { return decode(b, false) }

func decode(b []byte, whole bool) (Event, error) {
	if len(b) > MaxEventSize {
		return Event{}, Errorf(Invalid, "event too large: %d bytes", len(b))
	}
	e, dataErr, ok := scanCanonical(b, whole)
	if !ok {
		e, err := unmarshalEvent(b)
		if !whole {
			e.ID, e.Actor, e.Signer, e.Sig = "", Actor{}, "", ""
		}
		return e, err
	}
	// What encoding/json's path would say first: the envelope's fault, then the data's.
	if err := CheckAccount(e.Account); err != nil {
		return Event{}, err
	}
	if dataErr != nil {
		return Event{}, dataErr
	}
	return e, nil
}

// unmarshalEvent is Decode with encoding/json, for any input: what the
// canonical reader must agree with.
func unmarshalEvent(b []byte) (Event, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return Event{}, Errorf(Invalid, "event is not JSON: %v", err)
	}
	if env.V != Version {
		return Event{}, Errorf(Invalid, "event schema version %d is not supported", env.V)
	}
	at, err := time.Parse(time.RFC3339Nano, env.At)
	if err != nil {
		return Event{}, Errorf(Invalid, "event time %q is not RFC 3339", clip(env.At))
	}
	e := Event{ID: env.ID, At: at, Account: env.Account, Actor: env.Actor,
		Prev: env.Prev, Signer: env.Signer, Sig: env.Sig}
	if err := CheckAccount(e.Account); err != nil {
		return Event{}, err
	}
	if _, err := ulid.ParseStrict(e.ID); err != nil {
		return Event{}, Errorf(Invalid, "event id %q is not a ULID", clip(e.ID))
	}
	if e.TokenID, err = ParseTokenID(env.TokenID); err != nil {
		return Event{}, err
	}
	t, ok := dataTypes[env.Type]
	if !ok {
		return Event{}, Errorf(Invalid, "unknown event type %q", clip(env.Type))
	}
	if e.Data, err = t.unmarshal(env.Data); err != nil {
		return Event{}, err
	}
	return e, nil
}

// dataType is how the decoder reads one event type's data, either way.
type dataType struct {
	name string
	// scan reads the data in Encode's layout (see scanCanonical) and checks
	// it; when the scanner declines the layout, its result means nothing.
	scan func(*scanner) (Data, error)
	// unmarshal reads the data from any JSON and checks it.
	unmarshal func(json.RawMessage) (Data, error)
}

// typeOf is what the decoder knows of the event type T. Its data is read
// by hand by T's own scan, not through the type parameter: a value reached
// through one escapes to the heap, and reading it so cost an allocation an
// event.
func typeOf[T interface {
	Data
	scan(*scanner) (Data, error)
}, P interface {
	*T
	check() error
}]() dataType {
	var zero T
	return dataType{
		name: zero.eventType(),
		scan: zero.scan,
		unmarshal: func(raw json.RawMessage) (Data, error) {
			var d T
			if err := decodeData(raw, &d); err != nil {
				return nil, err
			}
			if err := P(&d).check(); err != nil {
				return nil, err
			}
			return d, nil
		},
	}
}

func register(types ...dataType) map[string]dataType {
	m := make(map[string]dataType, len(types))
	for _, t := range types {
		m[t.name] = t
	}
	return m
}

// checkHash refuses a hash that was never set: the zero Hash, which is
// what a missing token_hash reads as, and which no secret has.
func checkHash(h Hash) error {
	if h.IsZero() {
		return Errorf(Invalid, "a token hash must be sha256:<64 lower-case hex>")
	}
	return nil
}

// checkFeatures checks a token's features and returns them sorted and
// without repeats, as ParseFeatures does; a list that is so already (every
// list a node writes) is returned as it is, [] staying [].
func checkFeatures(list []string) ([]string, error) {
	if len(list) > MaxFeatures {
		return nil, Errorf(Invalid, "at most %d features a token", MaxFeatures)
	}
	for i, f := range list {
		if err := CheckFeature(f); err != nil {
			return nil, err
		}
		if i > 0 && list[i-1] >= f {
			return ParseFeatures(list)
		}
	}
	return list, nil
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeData reads an event's data with encoding/json. A value that its
// type refuses (a hash, an address) is refused in that type's words.
func decodeData(b []byte, v any) error {
	if len(b) == 0 {
		return Errorf(Invalid, "event has no data")
	}
	if err := json.Unmarshal(b, v); err != nil {
		if e := (*Error)(nil); errors.As(err, &e) {
			return e
		}
		return Errorf(Invalid, "event data: %v", err)
	}
	return nil
}
