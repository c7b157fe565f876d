package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
)

// TestNATSErrors: each failure NATS reports is translated once, at the
// JetStream edge, into the code and words a user acts on. The API errors are
// the ones nats-server v2.15.2 sends: 10023 for a server whose store is at
// its limit, 10047 for an account's, 10076 and 10039 for JetStream switched
// off, 10008 for a cluster between meta leaders; and the text of ENOSPC in a
// store's failure or the server's health.
func TestNATSErrors(t *testing.T) {
	api := func(code natsjs.ErrorCode, desc string) error {
		return fmt.Errorf("nats: %w", &natsjs.APIError{Code: 503, ErrorCode: code, Description: desc})
	}
	for _, tt := range []struct {
		name string
		have error
		code string
		says string // the start of the message
		kind error  // events.ErrNoSpace, events.ErrJetStreamDisabled or nil
	}{
		{"server store at its limit", api(10023, "insufficient resources"), events.Unavailable,
			"the NATS server has no space left for JetStream (nats: nats: API error: code=503 err_code=10023 description=insufficient resources)", events.ErrNoSpace},
		{"account store at its limit", api(10047, "insufficient storage resources available"), events.Unavailable,
			"the NATS server has no space left for JetStream (", events.ErrNoSpace},
		{"store failed", api(10049, "write /data/jetstream/$G/streams/TOKENS/msgs/1.blk: no space left on device"), events.Unavailable,
			"the NATS server has no space left for JetStream (", events.ErrNoSpace},
		{"server health", errors.New("JetStream stream '$G > TOKENS' write error: write 1.blk: no space left on device"), events.Unavailable,
			"the NATS server has no space left for JetStream (JetStream stream '$G > TOKENS' write error", events.ErrNoSpace},
		{"JetStream off", natsjs.ErrJetStreamNotEnabled, events.Unavailable,
			"JetStream is disabled on the NATS server (nats: API error: code=503 err_code=10076 description=jetstream not enabled)", events.ErrJetStreamDisabled},
		{"JetStream off for the account", api(10039, "jetstream not enabled for account"), events.Unavailable,
			"JetStream is disabled on the NATS server (", events.ErrJetStreamDisabled},
		{"lost race", api(10071, "wrong last sequence: 3"), events.Conflict, "another change to this account was stored first", nil},
		{"lost race, replicated", api(10164, "wrong last sequence"), events.Conflict, "another change to this account was stored first", nil},
		{"cluster without a leader", api(10008, "JetStream system temporarily unavailable"), events.Unavailable,
			"JetStream is not available for a moment", nil},
		{"no answer", context.DeadlineExceeded, events.Unavailable, "JetStream did not answer", nil},
		{"no stream", natsjs.ErrNoStreamResponse, events.Unavailable, "JetStream did not answer", nil},
		{"no server", nats.ErrConnectionClosed, events.Unavailable, "JetStream did not answer", nil},
		{"already coded", events.Errorf(events.NotFound, "token x not found"), events.NotFound, "token x not found", nil},
		{"other API error", api(10059, "stream not found"), events.Internal, "internal error", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := natsError(tt.have)
			if code := events.ErrorCode(err); code != tt.code {
				t.Errorf("code %q, want %q (%v)", code, tt.code, err)
			}
			if msg := events.ErrorMessage(err); !strings.HasPrefix(msg, tt.says) {
				t.Errorf("says %q, want it to start %q", msg, tt.says)
			}
			for _, kind := range []error{events.ErrNoSpace, events.ErrJetStreamDisabled} {
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
