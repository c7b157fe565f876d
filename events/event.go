package events

import (
	"encoding/json"
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
	TokenID string
	Actor   Actor
	Data    Data
	Prev    string // digest of the account's previous event; "" for its first
	Signer  string // public key of the node that signed it
	Sig     string // Ed25519 signature, base64url; see sign.go
}

// Data is the type-specific part of an event. check says whether it is
// what its type requires; Decode refuses an event whose data fails it.
type Data interface {
	eventType() string
	check() error
	// Label is how the event names its token to a reader (history's NAME
	// column): the name it bore, or old->new for a rename; "" when the
	// event's data does not say.
	Label() string
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
	TokenHash  string   `json:"token_hash"`
	ExpiresAt  *int64   `json:"expires_at"` // Unix seconds, nil for never
	FullAccess bool     `json:"full_access"`
	AllowedIPs []string `json:"allowed_ips,omitempty"` // CIDRs; none means any address
	Features   []string `json:"features,omitempty"`    // what a limited token may do, sorted; none: full access
	ReadOnly   bool     `json:"readonly,omitempty"`    // it may only do what changes nothing
}

// TokenRenamed: a live token took a new name.
type TokenRenamed struct {
	OldName string `json:"old_name"`
	NewName string `json:"new_name"`
}

// TokenRevoked: a live token was removed for good.
type TokenRevoked struct {
	Name string `json:"name"`
}

// TokenRotated: a live token got a new secret; the old one stops working at
// GraceUntil (Unix seconds), or at once when it is nil.
type TokenRotated struct {
	Name         string `json:"name"`
	TokenHash    string `json:"token_hash"`
	OldTokenHash string `json:"old_token_hash"`
	GraceUntil   *int64 `json:"grace_until"`
}

// AllowedIPsSet: a live token's address allow-list was replaced (empty: any address).
type AllowedIPsSet struct {
	Name       string   `json:"name"`
	AllowedIPs []string `json:"allowed_ips"`
}

// FeaturesSet: a live token's features were replaced; none gives it full
// access again. Its read-only flag stays as it was created.
type FeaturesSet struct {
	Name     string   `json:"name"`
	Features []string `json:"features"` // sorted; [] for full access
}

// TokenUsed: a token validated, at the event's time, from IP if known. Nodes
// write at most one per token per --used-every.
type TokenUsed struct {
	IP string `json:"ip,omitempty"`
}

func (d TokenCreated) Label() string  { return d.Name }
func (d TokenRotated) Label() string  { return d.Name }
func (d AllowedIPsSet) Label() string { return d.Name }
func (d FeaturesSet) Label() string   { return d.Name }
func (TokenUsed) Label() string       { return "" }
func (d TokenRenamed) Label() string  { return d.OldName + "->" + d.NewName }
func (d TokenRevoked) Label() string  { return d.Name }

func (TokenCreated) eventType() string  { return TypeCreated }
func (TokenRotated) eventType() string  { return TypeRotated }
func (AllowedIPsSet) eventType() string { return TypeAllowedIPs }
func (FeaturesSet) eventType() string   { return TypeFeaturesSet }
func (TokenUsed) eventType() string     { return TypeUsed }
func (TokenRenamed) eventType() string  { return TypeRenamed }
func (TokenRevoked) eventType() string  { return TypeRevoked }

// Actor says who caused an event.
type Actor struct {
	Kind    string `json:"kind"` // operator, account or token
	Name    string `json:"name"`
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

// NewID returns a fresh ULID for an event or a token.
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
		Account: e.Account, TokenID: e.TokenID, Actor: e.Actor, Data: data,
		Prev: e.Prev, Signer: e.Signer, Sig: e.Sig,
	})
}

// Decode reads one event and checks that it is well formed: a known version
// and type, a valid account, ULIDs and the fields its type requires. An event
// that fails here is never applied.
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
	e, ok := scanCanonical(b, whole)
	if !ok {
		e, err := unmarshalEvent(b)
		if !whole {
			e.ID, e.Actor, e.Signer, e.Sig = "", Actor{}, "", ""
		}
		return e, err
	}
	if err := checkEnvelope(e, true); err != nil {
		return Event{}, err
	}
	if err := e.Data.check(); err != nil {
		return Event{}, err
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
	e := Event{ID: env.ID, At: at, Account: env.Account, TokenID: env.TokenID, Actor: env.Actor,
		Prev: env.Prev, Signer: env.Signer, Sig: env.Sig}
	if err := checkEnvelope(e, false); err != nil {
		return Event{}, err
	}
	decode, ok := decoders[env.Type]
	if !ok {
		return Event{}, Errorf(Invalid, "unknown event type %q", clip(env.Type))
	}
	if e.Data, err = decode(env.Data); err != nil {
		return Event{}, err
	}
	return e, nil
}

// checkEnvelope checks what every event has, whichever way it was read;
// idChecked says that the reader has found the id a ULID already.
func checkEnvelope(e Event, idChecked bool) error {
	if err := CheckAccount(e.Account); err != nil {
		return err
	}
	if !idChecked {
		if _, err := ulid.ParseStrict(e.ID); err != nil {
			return Errorf(Invalid, "event id %q is not a ULID", clip(e.ID))
		}
	}
	if _, err := ulid.ParseStrict(e.TokenID); err != nil {
		return Errorf(Invalid, "token id %q is not a ULID", clip(e.TokenID))
	}
	return nil
}

// decoders read each type's data and check it.
var decoders = map[string]func(json.RawMessage) (Data, error){
	TypeCreated:     decodeAs[TokenCreated],
	TypeRenamed:     decodeAs[TokenRenamed],
	TypeRevoked:     decodeAs[TokenRevoked],
	TypeRotated:     decodeAs[TokenRotated],
	TypeAllowedIPs:  decodeAs[AllowedIPsSet],
	TypeFeaturesSet: decodeAs[FeaturesSet],
	TypeUsed:        decodeAs[TokenUsed],
}

func decodeAs[T Data](raw json.RawMessage) (Data, error) {
	var d T
	if err := decodeData(raw, &d); err != nil {
		return nil, err
	}
	return d, d.check()
}

// check says whether the data is what its type requires.
func (d TokenCreated) check() error {
	if err := firstError(CheckName(d.Name), checkHash(d.TokenHash), checkPrefixes(d.AllowedIPs), checkFeatures(d.Features)); err != nil {
		return err
	}
	if d.FullAccess && len(d.Features) > 0 {
		return Errorf(Invalid, "a token created with full access has no features")
	}
	return nil
}

func (d TokenRenamed) check() error { return firstError(CheckName(d.OldName), CheckName(d.NewName)) }
func (d TokenRevoked) check() error { return CheckName(d.Name) }
func (d TokenUsed) check() error    { return nil }

func (d TokenRotated) check() error {
	return firstError(CheckName(d.Name), checkHash(d.TokenHash), checkHash(d.OldTokenHash))
}

func (d AllowedIPsSet) check() error {
	return firstError(CheckName(d.Name), checkPrefixes(d.AllowedIPs))
}

func (d FeaturesSet) check() error {
	return firstError(CheckName(d.Name), checkFeatures(d.Features))
}

func checkHash(s string) error {
	_, err := ParseHash(s)
	return err
}

func checkFeatures(list []string) error {
	_, err := ParseFeatures(list)
	return err
}

func checkPrefixes(list []string) error {
	_, err := ParsePrefixes(list)
	return err
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func decodeData(b []byte, v any) error {
	if len(b) == 0 {
		return Errorf(Invalid, "event has no data")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return Errorf(Invalid, "event data: %v", err)
	}
	return nil
}
