package embedded

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStreamTrouble says what keeps s's JetStream from storing, or nil, as
// errors the stream's edge translates (the adapter's Stream.AskServer, in
// tokenledger/jetstream): the API's own where it has one. Its clients cannot tell (nats-server v2.15.2):
// once a write finds the disk full, the stream's store fails for good
// (until the server restarts) and takes every later write without an
// answer, while reads and the stream's info go on as usual; a store at its
// limit refuses writes with 10023 but answers everything else. Only the
// server knows: its health names the failed write, and its totals show the
// store over its limit.
func JetStreamTrouble(s *server.Server) error {
	jsz, err := s.Jsz(nil)
	if err != nil {
		return nil // the server cannot say; the stream's own answers count
	}
	if jsz.Disabled {
		return jetstream.ErrJetStreamNotEnabled
	}
	if limit := jsz.Config.MaxStore; limit > 0 && jsz.Store > uint64(limit) {
		return &jetstream.APIError{Code: 503, ErrorCode: 10023,
			Description: fmt.Sprintf("insufficient resources: JetStream's store holds %d bytes, over its limit of %d", jsz.Store, limit)}
	}
	// Its words name the store's file, which users of the API need not see.
	for _, e := range s.Healthz(&server.HealthzOptions{Details: true}).Errors {
		if strings.Contains(e.Error, "no space left") {
			return fmt.Errorf("a write to stream %s found the disk full: no space left on device", e.Stream)
		}
	}
	return nil
}
