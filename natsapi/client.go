package natsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"tokenledger/events"
)

// Client asks the nodes' `tokens` service; it is what the CLI and other Go
// programs use. Errors carry the ledger's codes.
type Client struct {
	nc     *nats.Conn
	prefix string
}

// NewClient returns a client for the service under prefix ("tokens").
func NewClient(nc *nats.Conn, prefix string) *Client { return &Client{nc: nc, prefix: prefix} }

// Create asks for a token and returns it with its secret.
func (c *Client) Create(ctx context.Context, r CreateRequest) (NewToken, error) {
	var rep reply
	if err := c.call(ctx, "cmd.create", r, &rep); err != nil {
		return NewToken{}, err
	}
	if rep.Token == nil {
		return NewToken{}, events.Errorf(events.Internal, "the node's reply holds no token")
	}
	return *rep.Token, nil
}

// Rename asks for a rename.
func (c *Client) Rename(ctx context.Context, r RenameRequest) error {
	return c.call(ctx, "cmd.rename", r, &reply{})
}

// Revoke asks for a revoke, all or nothing.
func (c *Client) Revoke(ctx context.Context, r RevokeRequest) error {
	return c.call(ctx, "cmd.revoke", r, &reply{})
}

// List returns the account's live tokens, oldest first.
func (c *Client) List(ctx context.Context, account string) ([]TokenInfo, error) {
	var rep reply
	if err := c.call(ctx, "cmd.list", ListRequest{Account: account}, &rep); err != nil {
		return nil, err
	}
	return rep.Tokens, nil
}

// Rotate asks for a new secret for a token and returns it.
func (c *Client) Rotate(ctx context.Context, r RotateRequest) (NewToken, error) {
	var rep reply
	if err := c.call(ctx, "cmd.rotate", r, &rep); err != nil {
		return NewToken{}, err
	}
	if rep.Token == nil {
		return NewToken{}, events.Errorf(events.Internal, "the node's reply holds no token")
	}
	return *rep.Token, nil
}

// SetAllowedIPs replaces a token's address allow-list.
func (c *Client) SetAllowedIPs(ctx context.Context, r SetAllowedIPsRequest) error {
	return c.call(ctx, "cmd.set-allowed-ips", r, &reply{})
}

// Validate asks whether secret is a valid token, of account if it is not empty.
func (c *Client) Validate(ctx context.Context, secret, account string) (ValidateReply, error) {
	return c.ValidateFrom(ctx, ValidateRequest{Token: secret, Account: account})
}

// ValidateFrom asks about a token used from an address (r.IP), for allow-lists.
func (c *Client) ValidateFrom(ctx context.Context, r ValidateRequest) (ValidateReply, error) {
	var rep ValidateReply
	body, _ := json.Marshal(r)
	msg, err := c.request(ctx, "validate", body)
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return rep, fmt.Errorf("validate: bad reply: %w", err)
	}
	return rep, nil
}

func (c *Client) call(ctx context.Context, endpoint string, req any, rep *reply) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	msg, err := c.request(ctx, endpoint, body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(msg.Data, rep); err != nil {
		return fmt.Errorf("%s: bad reply: %w", endpoint, err)
	}
	if !rep.OK {
		code := rep.Code
		if code == "" {
			code = events.Internal
		}
		return events.Errorf(code, "%s", rep.Error)
	}
	return nil
}

func (c *Client) request(ctx context.Context, endpoint string, body []byte) (*nats.Msg, error) {
	subject := c.prefix + "." + endpoint
	msg, err := c.nc.RequestWithContext(ctx, subject, body)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, events.Errorf(events.Unavailable, "no tokenledger node answers on %s: start one with `tokenledger serve`", subject)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, events.Errorf(events.Unavailable, "no answer on %s in time: is a tokenledger node running and caught up?", subject)
	case err != nil:
		return nil, events.Errorf(events.Unavailable, "%s: %v", subject, err)
	}
	return msg, nil
}
