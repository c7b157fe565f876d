package node

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"tokenledger/access"
	"tokenledger/events"
)

// Pings that notice a stalled server: nats.go pings every two minutes by
// default, and a connection to a server that stopped answering (a paused
// process, a hung machine, a partition that drops packets) looks healthy all
// that time. With a ping each second and at most two unanswered, the
// connection is given up within about three seconds, and one that may
// reconnect moves to another server of the cluster.
const (
	pingInterval = time.Second
	maxPingsOut  = 2
)

// StallPings are the ping settings of every connection tokenledger makes,
// the CLI's as well as a node's, so that none waits on a stalled server for
// longer than about three seconds.
func StallPings() []nats.Option {
	return []nats.Option{nats.PingInterval(pingInterval), nats.MaxPingsOutstanding(maxPingsOut)}
}

// reconnectWait is how soon a joined node's own connection tries another
// server once it lost one.
const reconnectWait = 250 * time.Millisecond

// joinOptions are the node's own connection to a NATS it joins: it never
// gives up reconnecting (watchConnection makes the outage visible meanwhile),
// and receives replies on the node role's private inbox prefix.
func joinOptions() []nats.Option {
	return append(StallPings(), nats.MaxReconnects(-1), nats.ReconnectWait(reconnectWait),
		nats.CustomInboxPrefix(access.InboxPrefix(access.Node)))
}

// dial connects a node to an existing NATS at urls (comma separated) with
// policy, then auth (the credentials and TLS the node was given), which win
// where both set the same thing.
func dial(urls string, auth []nats.Option, policy ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{nats.Name("tokenledger node"), nats.Timeout(5 * time.Second)}, policy...)
	opts = append(opts, auth...)
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, events.Errorf(events.Unavailable, "cannot reach NATS at %s: %v", urls, err)
	}
	return nc, nil
}

// serviceConn is the connection the `tokens` service answers on when the
// node joins a NATS: a connection of its own that never reconnects. When the
// node falls behind, closing it takes every subscription of the service off
// the cluster at once, which stopping the service while NATS is reconnecting
// would not (a subscription drained then comes back with the reconnect and
// takes requests it never answers). Its pings give up on a server that
// stalls within seconds (see StallPings); the service then starts again on
// the server the node's own connection nc moved to, which it tries first,
// then every server nc has learnt of. closed is closed with the connection.
func serviceConn(nc *nats.Conn, auth []nats.Option) (snc *nats.Conn, closed <-chan struct{}, err error) {
	done := make(chan struct{})
	urls := strings.Join(append([]string{nc.ConnectedUrl()}, nc.Servers()...), ",")
	policy := append(StallPings(), nats.NoReconnect(), nats.DontRandomize(), nats.ClosedHandler(func(*nats.Conn) { close(done) }))
	if snc, err = dial(urls, auth, policy...); err != nil {
		return nil, nil, err
	}
	return snc, done, nil
}

// behind is what watchConnection tells of a lost connection
// (projections.Follower).
type behind interface{ Behind() }

// watchConnection makes a lost NATS connection visible: while disconnected
// the node may miss events (a revoke on another node), so it stops answering
// at once, and on each reconnect the returned channel asks it to catch up
// (see catchUp).
func watchConnection(nc *nats.Conn, f behind, log *slog.Logger) <-chan struct{} {
	reconnected := make(chan struct{}, 1)
	nc.SetDisconnectErrHandler(func(nc *nats.Conn, err error) {
		if nc.IsClosed() {
			return
		}
		f.Behind()
		log.Warn("NATS connection lost: not answering until reconnected and caught up", "err", err)
	})
	nc.SetReconnectHandler(func(nc *nats.Conn) {
		log.Info("NATS reconnected: catching up with the stream", "server", nc.ConnectedUrlRedacted())
		select {
		case reconnected <- struct{}{}:
		default:
		}
	})
	return reconnected
}

// catcher is what catchUp asks of the follower (projections.Follower).
type catcher interface {
	CatchUp(ctx context.Context) error
}

// catchUp has f catch up with the stream after each reconnect, until ctx
// ends or a catch-up is cut short by it.
func catchUp(ctx context.Context, reconnected <-chan struct{}, f catcher) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reconnected:
		}
		if f.CatchUp(ctx) != nil {
			return nil
		}
	}
}
