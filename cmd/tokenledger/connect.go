package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/events"
	"tokenledger/jetstream"
	"tokenledger/natsapi"
	"tokenledger/node"
)

// requestTimeout bounds one client request, so that with no node running a
// command fails within seconds with exit status 3.
const requestTimeout = 10 * time.Second

// connect reaches NATS as the client's identity, or fails fast with a
// message that says what to start or which credentials to give. Once
// connected, it leaves a server that stalls for another of those it was
// given or has learnt of, so that a client's requests (each asked again on
// its own, see natsapi.Client) are not all sent into the stalled one.
func (c *clientConfig) connect() (*nats.Conn, error) {
	return c.connectDenied(func(error) {})
}

// connectDenied is connect that tells denied of each act the server refused
// this identity (a publish or subscribe it has no permission for), which
// NATS reports apart from the act itself.
func (c *clientConfig) connectDenied(denied func(error)) (*nats.Conn, error) {
	id, found, err := access.Client(c.NKey, c.DataDir)
	if err != nil {
		return nil, err
	}
	role := access.Operator
	if found {
		role = id.Role
	}
	opts := append(node.StallPings(), nats.Name("tokenledger cli"), nats.Timeout(3*time.Second),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), // bounded by the command's deadline
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				denied(events.Errorf(events.Unauthorized, "NATS refused the %s identity: %v", role, err))
			}
		}))
	switch {
	case found:
		opts = append(opts, id.Options()...)
	case c.User != "":
		opts = append(opts, nats.CustomInboxPrefix(access.InboxPrefix(c.User)))
	default: // a NATS without authentication: still a private prefix of the role
		opts = append(opts, nats.CustomInboxPrefix(access.InboxPrefix(access.Operator)))
	}
	nc, err := nats.Connect(c.NATS, append(opts, c.authOptions()...)...)
	switch {
	case err == nil:
		return nc, nil
	case errors.Is(err, nats.ErrAuthorization), strings.Contains(strings.ToLower(err.Error()), "authorization violation"):
		who := "no credentials"
		if found {
			who = "the " + id.Role + " identity"
		}
		return nil, events.Errorf(events.Unavailable, "NATS at %s refused %s: run where the node's --data-dir is (it holds the operator's credentials), or give --nkey FILE (see `tokenledger creds`)", c.NATS, who)
	}
	return nil, events.Errorf(events.Unavailable, "cannot reach NATS at %s: start a node with `tokenledger serve`, or point --nats at one", c.NATS)
}

// withClient connects, runs fn with a service client and a deadline, and
// closes. Within the deadline, the client asks again where that is safe: a
// validation or a list after a second unanswered, a command only when no
// node took it (see natsapi.Client).
func (c *clientConfig) withClient(ctx context.Context, fn func(context.Context, *natsapi.Client) error) error {
	ctx, cancel := context.WithTimeoutCause(ctx, requestTimeout, events.Errorf(events.Unavailable, "no answer in %v: is a tokenledger node running and caught up?", requestTimeout))
	defer cancel()
	ctx, deny := context.WithCancelCause(ctx)
	defer deny(nil)
	nc, err := c.connectDenied(deny)
	if err != nil {
		return err
	}
	defer nc.Close()
	err = fn(ctx, natsapi.NewClient(nc, c.Prefix))
	if cause := context.Cause(ctx); err != nil && cause != nil && events.ErrorCode(cause) == events.Unauthorized {
		return cause
	}
	return err
}

// withStream connects and opens the stream for reading only: an auditor needs
// no node and no write permission.
func (c *clientConfig) withStream(ctx context.Context, fn func(context.Context, *jetstream.Stream) error) error {
	nc, err := c.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, auditTimeout)
	defer cancel()
	stream, err := jetstream.Open(ctx, js, c.streamConfig())
	if err != nil {
		return err
	}
	return fn(ctx, stream)
}

// authOptions are the credentials and TLS settings of a NATS connection.
func (c *clientConfig) authOptions() []nats.Option {
	var opts []nats.Option
	if c.NKey != "" {
		id, err := access.ReadIdentity(c.NKey)
		if err != nil {
			opts = append(opts, func(*nats.Options) error { return fmt.Errorf("--nkey: %w", err) })
		} else {
			opts = append(opts, id.Options()...)
		}
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.CA != "" {
		opts = append(opts, nats.RootCAs(c.CA))
	}
	return opts
}
