package retry

import (
	"context"
	"time"
)

// Policy is how a caller asks again. The zero Policy asks once.
type Policy struct {
	// Attempt bounds one attempt. An attempt still unanswered when it
	// passes is asked again at once (while the caller's context lasts).
	// 0: an attempt has the caller's context alone, and is not asked again
	// for going unanswered.
	Attempt time.Duration
	// Pause is the wait before asking again after a failure that Again
	// accepts. It doubles after each such wait, up to MaxPause when that is
	// larger; otherwise it stays as it is.
	Pause, MaxPause time.Duration
	// For bounds the asking: once this long has passed since the first
	// attempt, the latest failure is returned. 0: until the caller's
	// context ends.
	For time.Duration
	// Again says whether an answered failure may pass, so that asking again
	// is worth it. nil: none is asked again.
	Again func(error) bool
	// Notify, when set, hears each failure that is about to be asked again,
	// so that the caller can log it.
	Notify func(error)
}

// Do runs op under p until it succeeds, fails in a way p does not ask again
// for, or ctx ends, and returns its latest result as it is. op is given a
// context bounded by p.Attempt.
func Do[T any](ctx context.Context, p Policy, op func(context.Context) (T, error)) (T, error) {
	return do(ctx, p, op, clock{now: time.Now, attempt: context.WithTimeout, pause: pause})
}

// clock is what Do needs of time, so that a test can run the policy
// without waiting.
type clock struct {
	now     func() time.Time
	attempt func(context.Context, time.Duration) (context.Context, context.CancelFunc)
	pause   func(context.Context, time.Duration) bool
}

func do[T any](ctx context.Context, p Policy, op func(context.Context) (T, error), c clock) (T, error) {
	start := c.now()
	wait := p.Pause
	for {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if p.Attempt > 0 {
			actx, cancel = c.attempt(ctx, p.Attempt)
		}
		v, err := op(actx)
		unanswered := actx.Err() != nil && ctx.Err() == nil // the attempt's own bound passed
		cancel()
		if err == nil || ctx.Err() != nil || p.For > 0 && c.now().Sub(start) > p.For {
			return v, err
		}
		if !unanswered && (p.Again == nil || !p.Again(err)) {
			return v, err
		}
		if p.Notify != nil {
			p.Notify(err)
		}
		if unanswered {
			continue
		}
		if !c.pause(ctx, wait) {
			return v, err
		}
		if p.MaxPause > wait {
			wait = min(2*wait, p.MaxPause)
		}
	}
}

// pause waits d, and says false when ctx ends first.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
