package events

import (
	"crypto/rand"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
)

// The domain rules (docs/cli.md and docs/events.md), checked the same way by the
// CLI, every transport and the command layer, so bad input never reaches NATS.

const (
	// MaxNameLen is the longest token name.
	MaxNameLen = 50
	// SecretLen is the length of a token secret.
	SecretLen = 32
	// secretAlphabet is the secret's alphabet: 36 symbols, about 5.17 bits each.
	secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
)

// CheckAccount refuses anything but ^[a-z][a-z0-9]{0,15}$. An account is part
// of a subject, so '.', '*', '>', spaces and upper case must never get through.
func CheckAccount(account string) error {
	if account == "" {
		return Errorf(Invalid, "an account is required")
	}
	ok := len(account) <= 16 && account[0] >= 'a' && account[0] <= 'z'
	for i := 1; ok && i < len(account); i++ {
		c := account[i]
		ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
	}
	if !ok {
		return Errorf(Invalid, "the account %q is not valid: it must start with a lower-case letter and have at most 16 lower-case letters and digits", clip(account))
	}
	return nil
}

// CheckName accepts 1 to 50 characters of A-Z a-z 0-9 - _.
func CheckName(name string) error {
	if name == "" {
		return Errorf(Invalid, "a token name is required")
	}
	if len(name) > MaxNameLen {
		return Errorf(Invalid, "the token name %q is too long: at most %d characters", clip(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return Errorf(Invalid, "the token name %q is not valid: use only letters, digits, hyphens and underscores", clip(name))
		}
	}
	return nil
}

// clip keeps a refused value short enough to quote in a one-line message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// NewSecret draws a 32-character A-Z0-9 secret from crypto/rand (about 165
// bits). Rejection sampling keeps every symbol equally likely.
func NewSecret() string {
	var out [SecretLen]byte
	var buf [64]byte
	n := 0
	for n < SecretLen {
		rand.Read(buf[:]) // never fails (crypto/rand panics rather than return short)
		for _, b := range buf {
			if b >= 252 { // 252 = 7*36: the largest multiple of 36 below 256
				continue
			}
			out[n] = secretAlphabet[b%36]
			if n++; n == SecretLen {
				break
			}
		}
	}
	return string(out[:])
}

// IsSecretShaped says whether s could be a secret at all: 32 characters of A-Z0-9.
func IsSecretShaped(s string) bool {
	if len(s) != SecretLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// ParseDate reads an expiry date YYYY-MM-DD as 23:59:59 of that day in loc.
func ParseDate(date string, loc *time.Location) (time.Time, error) {
	d, err := time.ParseInLocation(time.DateOnly, date, loc)
	if err != nil {
		return time.Time{}, Errorf(Invalid, "the date %q is not valid: use YYYY-MM-DD", clip(date))
	}
	return time.Date(d.Year(), d.Month(), d.Day(), 23, 59, 59, 0, loc), nil
}

// MaxExpiresAt is the latest expiry a token may have: 9999-12-31T23:59:59Z.
// Beyond it an instant no longer fits time.Time's arithmetic (an expiry of
// 1<<63-1 seconds wraps round, and its token would be born expired), and no
// date can show it.
const MaxExpiresAt = 253402300799

// CheckExpiry refuses an expiry (Unix seconds) that is not after now, or
// later than MaxExpiresAt. A refused instant is written in now's location.
func CheckExpiry(expiresAt int64, now time.Time) error {
	if expiresAt > MaxExpiresAt {
		return Errorf(Invalid, "the expiry %d is too far away: at most %d (the end of year 9999 UTC)", expiresAt, int64(MaxExpiresAt))
	}
	if expiresAt <= now.Unix() {
		return Errorf(Invalid, "the expiry %s is not in the future", time.Unix(expiresAt, 0).In(now.Location()).Format(time.RFC3339))
	}
	return nil
}

// MaxActorName bounds an actor's name, in characters.
const MaxActorName = 64

// viaPrefix starts an actor's Via: the only transport that sets it is NATS.
const viaPrefix = "nats:"

// CheckActor refuses an actor that an audit could not show as it is: a kind
// other than operator, account or token; a name that is empty, longer than
// 64 characters, not UTF-8, or holds a character that is not printable (a
// control character could rewrite the terminal or the CSV of whoever reads
// the history); a token id that is not a ULID; a remote that is not an IP
// address; a via other than nats:<user>.
func CheckActor(a Actor) error {
	switch a.Kind {
	case ActorOperator, ActorAccount, ActorToken:
	default:
		return Errorf(Invalid, "actor kind %q is not operator, account or token", clip(a.Kind))
	}
	if a.Name == "" || !utf8.ValidString(a.Name) || utf8.RuneCountInString(a.Name) > MaxActorName {
		return Errorf(Invalid, "actor name %q is not 1 to %d characters of UTF-8", clip(a.Name), MaxActorName)
	}
	for _, r := range a.Name {
		if !unicode.IsPrint(r) {
			return Errorf(Invalid, "actor name %q holds a character that is not printable (%U)", clip(a.Name), r)
		}
	}
	if a.TokenID != "" {
		if _, err := ulid.ParseStrict(a.TokenID); err != nil {
			return Errorf(Invalid, "actor token id %q is not a ULID", clip(a.TokenID))
		}
	}
	if a.Remote != "" {
		if _, err := netip.ParseAddr(a.Remote); err != nil {
			return Errorf(Invalid, "actor remote %q is not an IP address", clip(a.Remote))
		}
	}
	if a.Via != "" && !validVia(a.Via) {
		return Errorf(Invalid, "actor via %q is not nats:<user> (1 to 64 of A-Z a-z 0-9 _ -)", clip(a.Via))
	}
	return nil
}

// validVia says whether via is nats: and 1 to 64 of A-Z a-z 0-9 _ -.
func validVia(via string) bool {
	user, ok := strings.CutPrefix(via, viaPrefix)
	if !ok || user == "" || len(user) > 64 {
		return false
	}
	for i := 0; i < len(user); i++ {
		c := user[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// MaxFeatures bounds the features of one token, and MaxFeatureLen the
// length of a feature's name.
const (
	MaxFeatures   = 64
	MaxFeatureLen = 64
)

// CheckFeature accepts a feature name: [a-z0-9][a-z0-9_.:-]{0,63}. Names
// are compared exactly, so there is one spelling of each (no upper case),
// and none holds a comma, a space or a quote that a list or a header would
// have to escape.
func CheckFeature(f string) error {
	ok := f != "" && len(f) <= MaxFeatureLen
	for i := 0; ok && i < len(f); i++ {
		c := f[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '.' || c == ':' || c == '-')
	}
	if !ok {
		return Errorf(Invalid, "the feature %q is not valid: 1 to %d of a-z 0-9 _ . : - starting with a letter or digit", clip(f), MaxFeatureLen)
	}
	return nil
}

// ParseFeatures reads a token's features: each name checked, at most
// MaxFeatures given, returned sorted and without repeats (nil for none,
// which is full access). A list is refused whole when one name is bad: a
// limit is never dropped in silence.
func ParseFeatures(list []string) ([]string, error) {
	if len(list) > MaxFeatures {
		return nil, Errorf(Invalid, "at most %d features a token", MaxFeatures)
	}
	if len(list) == 0 {
		return nil, nil
	}
	for _, f := range list {
		if err := CheckFeature(f); err != nil {
			return nil, err
		}
	}
	out := slices.Clone(list)
	slices.Sort(out)
	return slices.Clip(slices.Compact(out)), nil
}
