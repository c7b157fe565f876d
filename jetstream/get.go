package jetstream

import (
	"context"
	"errors"
	"fmt"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
	"tokenledger/internal/retry"
)

// get reads r, or its first most events, with one message get per event,
// each answered by the stream's leader: the first event on r.filter at or
// after a sequence ($JS.API.STREAM.MSG.GET with next_by_subj). It returns
// the last sequence it handed over (or skipped as before r.since): r.last
// once done. Unlike a consumer, it leaves nothing on the server and costs
// the cluster no consumer to place and delete, which a busy cluster at its
// default of 1,000 consumers per stream could not keep up with when every
// command's catch-up made one.
func (s *Stream) get(ctx context.Context, r span, most int, fn func(events.Msg) error) (uint64, error) {
	done := r.from - 1
	for n := 0; done < r.last && n < most; n++ {
		seq := done + 1
		rm, err := retry.Do(ctx, apiRead, func(ctx context.Context) (*natsjs.RawStreamMsg, error) {
			return s.stream.GetMsg(ctx, seq, natsjs.WithGetMsgSubject(r.filter))
		})
		if errors.Is(err, natsjs.ErrMsgNotFound) {
			err = fmt.Errorf("the stream's leader has no event on %s at or after sequence %d", r.filter, seq)
		}
		if err != nil {
			return done, r.short(done, natsError(err))
		}
		if rm.Sequence > r.last {
			return r.last, nil // cannot happen on a stream without deletes: r.last is on r.filter
		}
		m := events.Msg{Seq: rm.Sequence, Stored: rm.Time, Raw: rm.Data}
		if m.Seq < r.last {
			m.Pending = 1 // at least; a get does not count them
		}
		done = m.Seq
		if r.skip(m) {
			continue
		}
		m.Decode()
		if err := fn(m); err != nil {
			return done, err
		}
	}
	return done, nil
}

// maxGets is how many events of an account a read takes by gets before it
// reads the rest with a consumer. A get costs a round trip per event where
// a consumer streams them, but a consumer costs its making and deleting,
// which on a cluster go through the meta leader and its log. On this 2-core
// machine (go test -run '^$' -bench AccountRead -benchtime 2s ./events; an
// account of n events, one in ten of the stream's; time per read, two runs):
//
//	                       n=1        n=10       n=100      n=1000
//	one server  gets       54 µs      0.57 ms    4.5 ms     45 ms
//	            consumer   0.38 ms    0.45 ms    1.1 ms     6.8 ms
//	3 servers   gets       66-79 µs   0.8-1 ms   6.5-9.4 ms 70-86 ms
//	            consumer   21-82 ms   40-61 ms   23-62 ms   7-30 ms
//
// On a cluster, where the limit on consumers bites, a catch-up after a lost
// race (a few events) is hundreds of times cheaper by gets, and an
// account's first read on a node is cheaper by gets up to a few hundred
// events. Past maxGets, about what a consumer costs spent in gets, the read
// takes the rest at a consumer's speed.
//
// JetStream's batched direct get would fetch many events a request, but
// needs AllowDirect, which the stream does not set (a node never changes an
// existing stream), and any copy of the stream answers it, current or not.
const maxGets = 256
