// Package reqbench drives NATS request-reply load for the benchmarks: a
// fixed number of requests from a number of concurrent requesters, with each
// request's round trip timed. The Go benchmarks and `make bench` share it so
// that a service and its baseline are measured the same way.
package reqbench

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Result is one load run.
type Result struct {
	Requests int
	Elapsed  time.Duration
	P50, P99 time.Duration
}

// PerSecond is the run's throughput.
func (r Result) PerSecond() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Run sends n requests to subject from concurrency goroutines on nc, cycling
// through bodies, and checks each reply with check (nil: any reply).
func Run(nc *nats.Conn, subject string, bodies [][]byte, concurrency, n int, check func([]byte) error) (Result, error) {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		failed  error
	)
	lat := make([][]time.Duration, concurrency)
	start := time.Now()
	for g := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, n/concurrency+1)
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				t := time.Now()
				msg, err := nc.Request(subject, bodies[i%len(bodies)], 10*time.Second)
				mine = append(mine, time.Since(t))
				if err == nil && check != nil {
					err = check(msg.Data)
				}
				if err != nil {
					errOnce.Do(func() { failed = fmt.Errorf("%s: request %d: %w", subject, i, err) })
					next.Store(int64(n))
					break
				}
			}
			lat[g] = mine
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed != nil {
		return Result{}, failed
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := Result{Requests: len(all), Elapsed: elapsed}
	if len(all) > 0 {
		r.P50, r.P99 = all[len(all)*50/100], all[min(len(all)-1, len(all)*99/100)]
	}
	return r, nil
}

// Compare loads a baseline subject and a service subject alike, in
// alternating rounds of n requests each so that both meet the same machine
// noise. It keeps each side's best round (highest throughput; lowest p99),
// and each round's ratio of the service's throughput to the baseline's.
//
// Each side of a round starts from a collected heap. A process holding
// millions of tokens takes seconds to mark, and a collection that one
// side's garbage set off would otherwise run on into what came next: at ten
// million tokens, with a collection at each round's start only, the rounds'
// ratios split by order, 0.53 to 0.66 where the echo went first and 1.23 to
// 1.35 where the service did, the second side each time the slower (after
// the first side's garbage, it grows the heap into memory not touched
// before, which on a virtual machine costs the host's work, or meets a
// collection that garbage set off); and the median of ten such rounds fell
// between the two groups.
//
// Where a side's garbage outgrows the heap's headroom (a million tokens:
// 256 MiB or so), collections still fall within sides, on both alike; the
// service makes some 8% more garbage than the echo (1,580 bytes a request
// against 1,460, client and server included).
func Compare(nc *nats.Conn, baseline, service string, bodies [][]byte, concurrency, n, rounds int, check func([]byte) error) (base, svc Result, ratios []float64, err error) {
	for r := range rounds {
		order := []string{baseline, service}
		if r%2 == 1 {
			order[0], order[1] = service, baseline
		}
		var b, s Result
		for _, subject := range order {
			runtime.GC()
			res, err := Run(nc, subject, bodies, concurrency, n, check)
			if err != nil {
				return Result{}, Result{}, nil, err
			}
			if subject == baseline {
				b, base = res, best(base, res)
			} else {
				s, svc = res, best(svc, res)
			}
		}
		ratios = append(ratios, s.PerSecond()/b.PerSecond())
	}
	return base, svc, ratios, nil
}

// Median is the middle of xs (the mean of the two middle ones for an even
// count): the figure of a set of paired rounds, which one lucky or unlucky
// round does not move.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func best(have, r Result) Result {
	if have.Requests == 0 {
		return r
	}
	if r.PerSecond() > have.PerSecond() {
		have.Requests, have.Elapsed, have.P50 = r.Requests, r.Elapsed, r.P50
	}
	have.P99 = min(have.P99, r.P99)
	return have
}

// Echo answers every request on subject with reply, on nc, until the
// returned subscription is unsubscribed: the bare responder a service is
// compared with.
func Echo(nc *nats.Conn, subject, queue string, reply []byte) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(subject, queue, func(m *nats.Msg) { m.Respond(reply) })
	if err != nil {
		return nil, err
	}
	// The server knows of the subscription once the flush returns.
	return sub, nc.Flush()
}
