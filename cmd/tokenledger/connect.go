package main

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"tokenledger/events"
	"tokenledger/natsapi"
)

// requestTimeout bounds one client request, so that with no node running a
// command fails within seconds with exit status 3.
const requestTimeout = 10 * time.Second

// connect reaches NATS, or fails fast with a message that says what to start.
func (c *clientConfig) connect() (*nats.Conn, error) {
	nc, err := c.connectWith(nats.Name("tokenledger cli"), nats.Timeout(3*time.Second), nats.NoReconnect())
	if err != nil {
		return nil, events.Errorf(events.Unavailable, "cannot reach NATS at %s: start a node with `tokenledger serve`, or point --nats at one", c.NATS)
	}
	return nc, nil
}

// withClient connects, runs fn with a service client and a deadline, and closes.
func (c *clientConfig) withClient(ctx context.Context, fn func(context.Context, *natsapi.Client) error) error {
	nc, err := c.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return fn(ctx, natsapi.NewClient(nc, c.Prefix))
}

// connectWith connects a node to an existing NATS with cfg's credentials.
func (c *clientConfig) connectWith(extra ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{nats.Name("tokenledger node"), nats.Timeout(5 * time.Second)}, extra...)
	opts = append(opts, c.authOptions()...)
	nc, err := nats.Connect(c.NATS, opts...)
	if err != nil {
		return nil, events.Errorf(events.Unavailable, "cannot reach NATS at %s: %v", c.NATS, err)
	}
	return nc, nil
}

// authOptions are the credentials and TLS settings of a NATS connection.
func (c *clientConfig) authOptions() []nats.Option {
	var opts []nats.Option
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
