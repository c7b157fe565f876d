package commands

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"tokenledger/events"
)

// TestSeenPassesATokenOnOncePerEvery holds the validation path's side of use
// recording: however often a token validates, the recorder hears of it once
// per Every, and again once Every has passed; a note dropped for a full
// channel is not counted as passed on.
func TestSeenPassesATokenOnOncePerEvery(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	r := newUseRecorder(nil, func() time.Time { return now }, nil, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a, b := events.NewTokenID(), events.NewTokenID()
	drain := func() (ids []events.TokenID) {
		for {
			select {
			case u := <-r.notes:
				ids = append(ids, u.TokenID)
			default:
				return ids
			}
		}
	}
	for range 1000 {
		r.Seen("bob", a, "192.0.2.1")
	}
	r.Seen("bob", b, "192.0.2.1")
	if have := drain(); len(have) != 2 || have[0] != a || have[1] != b {
		t.Fatalf("notes after 1000 validations of a and one of b: %v, want [a b]", have)
	}
	for _, tt := range []struct {
		name  string
		after time.Duration
		want  int
	}{
		{"within the minute", 59 * time.Second, 0},
		{"a minute on", time.Minute, 1},
		{"three minutes on, past both generations", 3 * time.Minute, 1},
	} {
		now = now.Add(tt.after)
		for range 10 {
			r.Seen("bob", a, "192.0.2.1")
		}
		if have := drain(); len(have) != tt.want {
			t.Errorf("%s: %d notes, want %d", tt.name, len(have), tt.want)
		}
	}

	// A full channel drops the note, and the next validation tries again.
	for len(r.notes) < cap(r.notes) {
		r.notes <- Use{}
	}
	c := events.NewTokenID()
	r.Seen("bob", c, "")
	drain()
	r.Seen("bob", c, "")
	if have := drain(); len(have) != 1 || have[0] != c {
		t.Fatalf("after a dropped note: %v, want [c]", have)
	}
}
