package node

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// readiness is what the `tokens` service waits on (projections.Follower):
// WaitReady returns once the table may be answered from, and the channel
// Lost returns then is closed when that stops.
type readiness interface {
	WaitReady(ctx context.Context) error
	Lost() <-chan struct{}
}

// stopper is a running service (natsapi.Service).
type stopper interface{ Stop() error }

// serviceRetry is the wait before connecting the service again after a
// connection failed.
const serviceRetry = time.Second

// serviceLoop keeps the `tokens` service in the queue group while, and only
// while, the node's table may be answered from. The service has a connection
// of its own, made anew for each start and closed with each stop: when the
// table is lost (the node fell behind, was halted, or cannot vouch for it),
// or that connection closes (its server stalled), closing it takes every
// subscription of the service off NATS at once, and the service starts
// again on a new connection once the table is ready.
type serviceLoop struct {
	ready   readiness
	connect func() (nc *nats.Conn, closed <-chan struct{}, err error)
	start   func(*nats.Conn) (stopper, error)
	serving func() // called once, when the service first answers; nil: nothing
	retry   time.Duration
	log     *slog.Logger
}

// run starts and stops the service as the table is ready and lost, until
// ctx ends, and then stops it. Its error is one of starting the service.
func (l *serviceLoop) run(ctx context.Context) error {
	served := false
	for {
		if err := l.ready.WaitReady(ctx); err != nil {
			return nil
		}
		lost := l.ready.Lost()
		nc, closed, err := l.connect()
		if err != nil {
			l.log.Warn("cannot connect the service; trying again", "err", err)
			if !l.wait(ctx) {
				return nil
			}
			continue
		}
		svc, err := l.start(nc)
		if err != nil {
			lostConn := connectionLost(nc, err)
			nc.Close()
			if !lostConn {
				return err
			}
			// The server stalled or dropped the connection while the
			// service subscribed: a fault of the moment, like a failed
			// connect, not of the service.
			l.log.Warn("the service's connection failed while it started; trying again", "err", err)
			if !l.wait(ctx) {
				return nil
			}
			continue
		}
		if !served && l.serving != nil {
			l.serving()
		}
		served = true
		select {
		case <-ctx.Done():
			err := svc.Stop()
			nc.Close()
			return err
		case <-lost:
		case <-closed:
		}
		// The service's own connection goes with it, so that no
		// subscription of it can come back with a reconnect.
		nc.Close()
		svc.Stop()
	}
}

// wait waits l.retry before trying again, and says false if ctx ended first.
func (l *serviceLoop) wait(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(l.retry):
		return true
	}
}

// connectionLost says whether starting the service on nc failed because nc
// did (it closed, or its server did not answer a flush), rather than for a
// reason that starting again would meet again.
func connectionLost(nc *nats.Conn, err error) bool {
	return nc.IsClosed() || errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrStaleConnection)
}
