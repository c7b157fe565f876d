package retry

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

var (
	errPassing = errors.New("refused for now")
	errFinal   = errors.New("refused for good")
)

// unanswered, as a step of a script, is an attempt that runs out its bound.
var unanswered = errors.New("unanswered")

// script plays an op's attempts in turn on a fake clock: each step is the
// attempt's error (nil: success), and an unanswered step lets the attempt's
// bound pass, moving the clock on by it. It records what Do asked of it.
type script struct {
	t      *testing.T
	steps  []error
	cancel context.CancelFunc // ends the caller's context after step endAt, when set
	endAt  int
	now    time.Time
	expire context.CancelFunc // the current attempt's, to let its bound pass
	bound  time.Duration
	calls  int
	pauses []time.Duration
}

func (s *script) clock() clock {
	return clock{
		now: func() time.Time { return s.now },
		attempt: func(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
			actx, cancel := context.WithCancel(ctx)
			s.expire, s.bound = cancel, d
			return actx, cancel
		},
		pause: func(ctx context.Context, d time.Duration) bool {
			s.pauses = append(s.pauses, d)
			s.now = s.now.Add(d)
			return ctx.Err() == nil
		},
	}
}

func (s *script) op(ctx context.Context) (int, error) {
	s.t.Helper()
	if s.calls >= len(s.steps) {
		s.t.Fatalf("attempt %d: the script has only %d steps", s.calls+1, len(s.steps))
	}
	err := s.steps[s.calls]
	s.calls++
	if err == unanswered {
		if s.expire == nil {
			s.t.Fatalf("attempt %d: unanswered, but the attempt has no bound", s.calls)
		}
		s.expire()
		s.now = s.now.Add(s.bound)
		err = context.DeadlineExceeded
	}
	if s.cancel != nil && s.calls == s.endAt {
		s.cancel()
	}
	if err != nil {
		return 0, err
	}
	return s.calls, nil
}

func TestDo(t *testing.T) {
	passing := func(err error) bool { return errors.Is(err, errPassing) }
	tests := []struct {
		name       string
		policy     Policy
		steps      []error
		endAt      int // the caller's context ends during this attempt
		want       error
		wantCalls  int
		wantPauses []time.Duration
	}{
		{
			name:      "answered at once",
			policy:    Policy{Attempt: time.Second, Pause: time.Second, Again: passing},
			steps:     []error{nil},
			wantCalls: 1,
		},
		{
			name:      "the zero policy asks once",
			steps:     []error{errPassing},
			want:      errPassing,
			wantCalls: 1,
		},
		{
			name:      "unanswered attempts are asked again at once",
			policy:    Policy{Attempt: 2 * time.Second},
			steps:     []error{unanswered, unanswered, nil},
			wantCalls: 3,
		},
		{
			name:       "a passing refusal is asked again after a pause that doubles up to its cap",
			policy:     Policy{Attempt: time.Second, Pause: 20 * time.Millisecond, MaxPause: 50 * time.Millisecond, Again: passing},
			steps:      []error{errPassing, errPassing, errPassing, errPassing, nil},
			wantCalls:  5,
			wantPauses: []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond},
		},
		{
			name:       "without a cap the pause stays",
			policy:     Policy{Pause: 250 * time.Millisecond, Again: passing},
			steps:      []error{errPassing, errPassing, nil},
			wantCalls:  3,
			wantPauses: []time.Duration{250 * time.Millisecond, 250 * time.Millisecond},
		},
		{
			name:       "an unanswered attempt neither pauses nor grows the pause",
			policy:     Policy{Attempt: time.Second, Pause: 20 * time.Millisecond, MaxPause: time.Second, Again: passing},
			steps:      []error{errPassing, unanswered, errPassing, nil},
			wantCalls:  4,
			wantPauses: []time.Duration{20 * time.Millisecond, 40 * time.Millisecond},
		},
		{
			name:       "a refusal that does not pass ends it",
			policy:     Policy{Attempt: time.Second, Pause: time.Millisecond, Again: passing},
			steps:      []error{errPassing, errFinal},
			want:       errFinal,
			wantCalls:  2,
			wantPauses: []time.Duration{time.Millisecond},
		},
		{
			name:       "For ends it with the latest failure",
			policy:     Policy{Attempt: 2 * time.Second, Pause: 250 * time.Millisecond, For: time.Second, Again: passing},
			steps:      []error{errPassing, errPassing, errPassing, errPassing, errPassing, errPassing},
			want:       errPassing,
			wantCalls:  6, // at 0, 0.25, 0.5, 0.75, 1 and 1.25 s, past the second
			wantPauses: []time.Duration{250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond},
		},
		{
			name:      "For counts unanswered attempts too",
			policy:    Policy{Attempt: 2 * time.Second, For: 3 * time.Second},
			steps:     []error{unanswered, unanswered},
			want:      context.DeadlineExceeded,
			wantCalls: 2,
		},
		{
			name:      "the caller's end ends it, with the attempt's result",
			policy:    Policy{Attempt: time.Second, Pause: time.Millisecond, Again: passing},
			steps:     []error{errPassing, errPassing},
			endAt:     2,
			want:      errPassing,
			wantCalls: 2, wantPauses: []time.Duration{time.Millisecond},
		},
		{
			name:      "an attempt that the caller's end cut short is not unanswered",
			policy:    Policy{Attempt: time.Second},
			steps:     []error{context.Canceled},
			endAt:     1,
			want:      context.Canceled,
			wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := &script{t: t, steps: tt.steps, now: time.Unix(0, 0)}
			if tt.endAt > 0 {
				s.cancel, s.endAt = cancel, tt.endAt
			}
			var notified int
			tt.policy.Notify = func(error) { notified++ }
			have, err := do(ctx, tt.policy, s.op, s.clock())
			if !errors.Is(err, tt.want) {
				t.Errorf("err: want %v, have %v", tt.want, err)
			}
			if err == nil && have != tt.wantCalls {
				t.Errorf("result: want that of attempt %d, have %d", tt.wantCalls, have)
			}
			if s.calls != tt.wantCalls {
				t.Errorf("attempts: want %d, have %d", tt.wantCalls, s.calls)
			}
			if !slices.Equal(s.pauses, tt.wantPauses) {
				t.Errorf("pauses: want %v, have %v", tt.wantPauses, s.pauses)
			}
			wantNotified := tt.wantCalls - 1
			if err != nil {
				wantNotified = len(tt.wantPauses) + countUnanswered(tt.steps[:tt.wantCalls-1])
			}
			if notified != wantNotified {
				t.Errorf("notified: want %d, have %d", wantNotified, notified)
			}
		})
	}
}

func countUnanswered(steps []error) int {
	n := 0
	for _, err := range steps {
		if err == unanswered {
			n++
		}
	}
	return n
}

// TestDoBoundsEachAttempt checks that op gets a context bounded by
// Attempt, and the caller's own without one.
func TestDoBoundsEachAttempt(t *testing.T) {
	tests := []struct {
		name    string
		attempt time.Duration
		want    bool
	}{
		{name: "bounded", attempt: time.Hour, want: true},
		{name: "unbounded", attempt: 0, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var have bool
			_, err := Do(context.Background(), Policy{Attempt: tt.attempt}, func(ctx context.Context) (struct{}, error) {
				_, have = ctx.Deadline()
				return struct{}{}, nil
			})
			if err != nil || have != tt.want {
				t.Errorf("deadline: want %v, have %v (err %v)", tt.want, have, err)
			}
		})
	}
}

// TestPause checks the real clock's pause: cut short by the caller's end,
// and over at once when it is zero.
func TestPause(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want bool
	}{
		{name: "the caller's end cuts it short", ctx: ended, d: time.Hour, want: false},
		{name: "zero", ctx: context.Background(), d: 0, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if have := pause(tt.ctx, tt.d); have != tt.want {
				t.Errorf("want %v, have %v", tt.want, have)
			}
		})
	}
}
