package events

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"

	"github.com/oklog/ulid/v2"
)

// The values an event carries besides names and numbers, each a type with
// its text form: a hash, a token id, an address range. Each is parsed once,
// where it enters (a command's input check, the decoder), and travels typed
// from there through decide, the event and apply. Each text form is exactly
// the string the event held before it was typed, so that streams written
// then decode unchanged and events written now have the same bytes.

// hashPrefix marks the only form in which a secret is ever kept.
const hashPrefix = "sha256:"

// Hash is a secret's SHA-256, the only form in which the ledger keeps it.
type Hash [sha256.Size]byte

// HashSecret hashes a presented secret.
func HashSecret(secret string) Hash { return sha256.Sum256([]byte(secret)) }

// hashTextLen is the length of a hash's text form.
const hashTextLen = len(hashPrefix) + 2*sha256.Size

// String writes the hash as it travels in events: sha256:<64 lower-case hex>.
func (h Hash) String() string {
	var b [hashTextLen]byte
	return string(h.appendText(b[:0]))
}

// MarshalText writes String's form.
func (h Hash) MarshalText() ([]byte, error) { return h.appendText(make([]byte, 0, hashTextLen)), nil }

// UnmarshalText reads String's form, and only it.
func (h *Hash) UnmarshalText(b []byte) error {
	var err error
	*h, err = parseHash(b)
	return err
}

// IsZero says whether h is the zero Hash, which no secret has: an event's
// hash that was never set.
func (h Hash) IsZero() bool { return h == Hash{} }

func (h Hash) appendText(b []byte) []byte {
	b = append(b, hashPrefix...)
	return hex.AppendEncode(b, h[:])
}

// ParseHash reads the form String writes.
func ParseHash(s string) (Hash, error) { return parseHash(s) }

// parseHash reads the form String writes, from a string or from an event's
// bytes without copying them.
func parseHash[T string | []byte](s T) (Hash, error) {
	var h Hash
	if len(s) != hashTextLen || string(s[:len(hashPrefix)]) != hashPrefix {
		return Hash{}, Errorf(Invalid, "a token hash must be sha256:<64 lower-case hex>")
	}
	hexed := s[len(hashPrefix):]
	// By hand rather than with hex.Decode: every event applied passes here,
	// and this neither allocates nor accepts upper case.
	for i := range h {
		hi, lo := lowerHex(hexed[2*i]), lowerHex(hexed[2*i+1])
		if hi > 15 || lo > 15 {
			return Hash{}, Errorf(Invalid, "a token hash must be sha256:<64 lower-case hex>")
		}
		h[i] = hi<<4 | lo
	}
	return h, nil
}

// lowerHex is the value of a lower-case hex digit, or 255.
func lowerHex(c byte) byte { return hexValues[c] }

// hexValues maps each byte to its value as a lower-case hex digit, or 255.
var hexValues = func() (t [256]byte) {
	for c := range t {
		switch {
		case c >= '0' && c <= '9':
			t[c] = byte(c - '0')
		case c >= 'a' && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		default:
			t[c] = 255
		}
	}
	return t
}()

// Names says whether s is h as String writes it, without writing it.
func (h Hash) Names(s string) bool {
	g, err := ParseHash(s)
	return err == nil && g == h
}

// TokenID names a token for good: a ULID, drawn when the token is created
// and kept through renames and rotations.
type TokenID ulid.ULID

// NewTokenID draws a fresh token id.
func NewTokenID() TokenID { return TokenID(ulid.Make()) }

// ParseTokenID reads a token id: 26 characters of Crockford's base32.
func ParseTokenID(s string) (TokenID, error) {
	id, err := ulid.ParseStrict(s)
	if err != nil {
		return TokenID{}, Errorf(Invalid, "token id %q is not a ULID", clip(s))
	}
	return TokenID(id), nil
}

// String writes the id as it travels: 26 upper-case characters.
func (id TokenID) String() string { return ulid.ULID(id).String() }

// MarshalText writes String's form.
func (id TokenID) MarshalText() ([]byte, error) { return ulid.ULID(id).MarshalText() }

// AppendText appends String's form to b (encoding.TextAppender): a reply
// written by hand takes the id without a string made for it, which is one
// allocation fewer a validation (BenchmarkValidateHandler).
func (id TokenID) AppendText(b []byte) ([]byte, error) {
	n := len(b)
	b = slices.Grow(b, ulid.EncodedSize)[:n+ulid.EncodedSize]
	return b, ulid.ULID(id).MarshalTextTo(b[n:])
}

// UnmarshalText reads what ParseTokenID reads.
func (id *TokenID) UnmarshalText(b []byte) error {
	var err error
	*id, err = ParseTokenID(string(b))
	return err
}

// IsZero says whether id is the zero TokenID, which no token is given.
func (id TokenID) IsZero() bool { return id == TokenID{} }

// MaxAllowedIPs bounds a token's address allow-list.
const MaxAllowedIPs = 100

// Prefix is one entry of a token's address allow-list: an IPv4 or IPv6
// range, normalised (a bare address is a /32 or /128, host bits are clear,
// and an IPv4 range is never written mapped into IPv6), so that two spellings
// of one range are one Prefix.
type Prefix struct{ p netip.Prefix }

// ParsePrefix reads an address or a CIDR range, and normalises it.
func ParsePrefix(s string) (Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil || a.Zone() != "" {
			return Prefix{}, Errorf(Invalid, "%q is not an IP address or CIDR range", clip(s))
		}
		p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	}
	if p.Addr().Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			return Prefix{}, Errorf(Invalid, "%q mixes IPv4 and IPv6 in one range", clip(s))
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), bits)
	}
	return Prefix{p.Masked()}, nil
}

// String writes the range as it travels in events: CIDR, as 10.0.0.0/8.
func (p Prefix) String() string { return p.p.String() }

// MarshalText writes String's form.
func (p Prefix) MarshalText() ([]byte, error) { return p.p.MarshalText() }

// UnmarshalText reads what ParsePrefix reads.
func (p *Prefix) UnmarshalText(b []byte) error {
	var err error
	*p, err = ParsePrefix(string(b))
	return err
}

// Contains says whether ip is in the range; an IPv4 address mapped into IPv6
// is taken as the IPv4 address it is.
func (p Prefix) Contains(ip netip.Addr) bool { return p.p.Contains(ip.Unmap()) }

// ParsePrefixes reads an allow-list of IPv4 and IPv6 addresses and CIDR
// ranges, each normalised as ParsePrefix does, without repeats.
func ParsePrefixes(list []string) ([]Prefix, error) {
	if len(list) > MaxAllowedIPs {
		return nil, tooManyPrefixes()
	}
	out := make([]Prefix, 0, len(list))
	for _, s := range list {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// CheckPrefixes refuses an allow-list longer than MaxAllowedIPs, as
// ParsePrefixes does, and one with a zero Prefix, which no parse gives and
// no event could carry: a command's check of a list its transport parsed.
func CheckPrefixes(list []Prefix) error {
	if len(list) > MaxAllowedIPs {
		return tooManyPrefixes()
	}
	for _, p := range list {
		if !p.p.IsValid() {
			return Errorf(Invalid, "an allowed address or range is empty")
		}
	}
	return nil
}

func tooManyPrefixes() error {
	return Errorf(Invalid, "at most %d allowed addresses or ranges", MaxAllowedIPs)
}

// DistinctPrefixes is list without repeats, the first of each kept, in a
// slice of its own, or list's refusal by CheckPrefixes: the list an event
// keeps of one a transport parsed (an edge may keep repeats, to count them
// against the limit as given).
func DistinctPrefixes(list []Prefix) ([]Prefix, error) {
	return checkPrefixes(slices.Clone(list))
}

// checkPrefixes refuses an allow-list longer than MaxAllowedIPs and drops
// repeats, keeping the first of each: what ParsePrefixes does to a list whose
// entries are parsed already. It changes list in place.
func checkPrefixes(list []Prefix) ([]Prefix, error) {
	if err := CheckPrefixes(list); err != nil {
		return nil, err
	}
	out := list[:0]
	for _, p := range list {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// PrefixStrings writes prefixes as they travel in events.
func PrefixStrings(ps []Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
