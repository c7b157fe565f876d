package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNATSErrors: each failure NATS reports is translated once, at the
// JetStream edge, into the code and words a user acts on. The API errors are
// the ones nats-server v2.15.2 sends: 10023 for a server whose store is at
// its limit, 10047 for an account's, 10076 and 10039 for JetStream switched
// off; and the text of ENOSPC in a store's failure or the server's health.
func TestNATSErrors(t *testing.T) {
	api := func(code jetstream.ErrorCode, desc string) error {
		return fmt.Errorf("nats: %w", &jetstream.APIError{Code: 503, ErrorCode: code, Description: desc})
	}
	for _, tt := range []struct {
		name string
		have error
		code string
		says string // the start of the message
		kind error  // ErrNoSpace, ErrJetStreamDisabled or nil
	}{
		{"server store at its limit", api(10023, "insufficient resources"), Unavailable,
			"the NATS server has no space left for JetStream (nats: nats: API error: code=503 err_code=10023 description=insufficient resources)", ErrNoSpace},
		{"account store at its limit", api(10047, "insufficient storage resources available"), Unavailable,
			"the NATS server has no space left for JetStream (", ErrNoSpace},
		{"store failed", api(10049, "write /data/jetstream/$G/streams/TOKENS/msgs/1.blk: no space left on device"), Unavailable,
			"the NATS server has no space left for JetStream (", ErrNoSpace},
		{"server health", errors.New("JetStream stream '$G > TOKENS' write error: write 1.blk: no space left on device"), Unavailable,
			"the NATS server has no space left for JetStream (JetStream stream '$G > TOKENS' write error", ErrNoSpace},
		{"JetStream off", jetstream.ErrJetStreamNotEnabled, Unavailable,
			"JetStream is disabled on the NATS server (nats: API error: code=503 err_code=10076 description=jetstream not enabled)", ErrJetStreamDisabled},
		{"JetStream off for the account", api(10039, "jetstream not enabled for account"), Unavailable,
			"JetStream is disabled on the NATS server (", ErrJetStreamDisabled},
		{"lost race", api(10071, "wrong last sequence: 3"), Conflict, "another change to this account was stored first", nil},
		{"lost race, replicated", api(10164, "wrong last sequence"), Conflict, "another change to this account was stored first", nil},
		{"no answer", context.DeadlineExceeded, Unavailable, "JetStream did not answer", nil},
		{"no stream", jetstream.ErrNoStreamResponse, Unavailable, "JetStream did not answer", nil},
		{"no server", nats.ErrConnectionClosed, Unavailable, "JetStream did not answer", nil},
		{"already coded", Errorf(NotFound, "token x not found"), NotFound, "token x not found", nil},
		{"other API error", api(10059, "stream not found"), Internal, "internal error", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := natsError(tt.have)
			if code := ErrorCode(err); code != tt.code {
				t.Errorf("code %q, want %q (%v)", code, tt.code, err)
			}
			if msg := ErrorMessage(err); !strings.HasPrefix(msg, tt.says) {
				t.Errorf("says %q, want it to start %q", msg, tt.says)
			}
			for _, kind := range []error{ErrNoSpace, ErrJetStreamDisabled} {
				if errors.Is(err, kind) != (kind == tt.kind) {
					t.Errorf("errors.Is(%v, %v) = %v", err, kind, !(kind == tt.kind))
				}
			}
			if again := natsError(err); again != err {
				t.Errorf("translated twice: %v", again)
			}
		})
	}
}

// TestErrorAbout: an error says which tokens it is about through every
// wrapping, so that a transport words its reply without reading the text,
// and the text stays what the error was made with.
func TestErrorAbout(t *testing.T) {
	made := Errorf(NotFound, "no token named %q", "b").About("bob", "b", "c")
	for _, tt := range []struct {
		name string
		have error
		want []string
		says string
		code string
	}{
		{"as made", made, []string{"b", "c"}, `no token named "b"`, NotFound},
		{"wrapped", fmt.Errorf("revoke: %w", made), []string{"b", "c"}, `no token named "b"`, NotFound},
		{"about nothing", Errorf(Invalid, "bad"), nil, "bad", Invalid},
		{"not ours", errors.New("boom"), nil, "internal error", Internal},
		{"none", nil, nil, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if have := ErrorNames(tt.have); !slices.Equal(have, tt.want) {
				t.Errorf("names %q, want %q", have, tt.want)
			}
			if have := ErrorMessage(tt.have); have != tt.says {
				t.Errorf("says %q, want %q", have, tt.says)
			}
			if have := ErrorCode(tt.have); have != tt.code {
				t.Errorf("code %q, want %q", have, tt.code)
			}
		})
	}
	if made.Account != "bob" {
		t.Errorf("account %q, want bob", made.Account)
	}
}
