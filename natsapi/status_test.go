package natsapi

import (
	"testing"

	"tokenledger/events"
)

// Every error code has its micro status, of the right class: 4xx when the
// caller must change the request, 5xx when the node could not carry it out.
func TestErrorStatus(t *testing.T) {
	for _, tt := range []struct{ code, class string }{
		{events.Invalid, "4"}, {events.NotFound, "4"}, {events.Duplicate, "4"}, {events.Conflict, "4"},
		{events.Unauthorized, "4"}, {events.Unavailable, "5"}, {events.Internal, "5"},
	} {
		if have := errorStatus[tt.code]; len(have) != 3 || have[:1] != tt.class {
			t.Errorf("%s: status %q, want %sxx", tt.code, have, tt.class)
		}
	}
}
