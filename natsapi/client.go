package natsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"tokenledger/events"
	"tokenledger/internal/retry"
)

// Client asks the nodes' `tokens` service; it is what the CLI and other Go
// programs use. Errors carry the ledger's codes.
//
// Each request goes to one member of the queue group, chosen by the NATS
// servers, and a member may have stalled (its process or its NATS server
// paused: the cluster goes on sending it a share of the requests until it
// notices, which takes minutes with nats-server's default pings), or may
// refuse because it cannot vouch that its table is current. What a caller
// should do, and what Client does for it:
//
//   - Validations and lists change nothing, so Client asks again whenever an
//     attempt goes unanswered for AttemptTimeout or a node refuses as not
//     current: each new request may reach another member, so a stalled one
//     costs an attempt, not the caller's deadline. It asks until ctx ends.
//     Give ctx a few attempts' worth: two to ten seconds.
//   - A command is sent once, and waits for its reply until ctx ends
//     (CommandTimeout when ctx has no deadline). A command that went
//     unanswered may have been stored all the same, and a create's secret
//     exists only in the reply of the node that made it: sent again, it
//     would fail as a duplicate (or, renamed, make a second token) and the
//     first token's secret would be lost. So give ctx more time than for a
//     validation (the CLI gives ten seconds), and when a command times out,
//     its outcome is unknown: list the account to see whether it took effect
//     before trying again, and rotate a token whose create took effect
//     unseen to get a secret. Client sends a command again by itself only
//     when it certainly was not carried out: no member listened, or a member
//     refused it before doing anything because its table was not current.
type Client struct {
	nc     *nats.Conn
	prefix string
}

// AttemptTimeout bounds one attempt of a validation or a list. A node
// answers either from memory in well under a millisecond on a healthy
// cluster; an attempt unanswered for this long went to a member that
// stalled, and the next goes elsewhere.
const AttemptTimeout = time.Second

// CommandTimeout bounds a command whose ctx has no deadline: a node gives up
// on a command after 30 s.
const CommandTimeout = 30 * time.Second

// noListenerWait is how long Client goes on asking while no node listens at
// all: a node leaves the queue group while its table is not current, and
// comes back a moment later; all of them do while the cluster chooses a new
// stream leader. Past it, no node is running.
const noListenerWait = 3 * time.Second

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

// List returns the account's live tokens, oldest first, however many: it
// asks for every page (see ListRequest). When the token a page ended with
// is revoked before the next page is asked for, it starts again, a few
// times at most.
func (c *Client) List(ctx context.Context, account string) ([]TokenInfo, error) {
	// Not a retry.Policy: a Conflict is an answer about the listing, not a
	// node that stayed silent, and the remedy is the domain's, to list anew
	// from the first page, bounded by count like a command's decide-again
	// loop (commands' maxAttempts). Each page is asked under askRead.
	const restarts = 3
	for attempt := 0; ; attempt++ {
		all, err := c.listAll(ctx, account)
		if events.ErrorCode(err) == events.Conflict && attempt < restarts {
			continue
		}
		return all, err
	}
}

func (c *Client) listAll(ctx context.Context, account string) ([]TokenInfo, error) {
	var all []TokenInfo
	r := ListRequest{Account: account, Limit: ListPageSize}
	for {
		page, next, err := c.ListPage(ctx, r)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if next == "" {
			return all, nil
		}
		if next == r.After || len(page) == 0 {
			return nil, events.Errorf(events.Internal, "list %s: the node's reply goes no further than %q", account, next)
		}
		r.After = next
	}
}

// ListPage returns one page of the account's live tokens and the cursor of
// the next page, "" after the last (see ListRequest).
func (c *Client) ListPage(ctx context.Context, r ListRequest) ([]TokenInfo, string, error) {
	var rep reply
	if err := c.call(ctx, "cmd.list", r, &rep); err != nil {
		return nil, "", err
	}
	return rep.Tokens, rep.Next, nil
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

// SetFeatures replaces a token's features; none gives it full access again
// (sent as [], as the service asks).
func (c *Client) SetFeatures(ctx context.Context, r SetFeaturesRequest) error {
	if r.Features == nil {
		r.Features = []string{}
	}
	return c.call(ctx, "cmd.set-features", r, &reply{})
}

// Validate asks whether secret is a valid token, of account if it is not empty.
func (c *Client) Validate(ctx context.Context, secret, account string) (ValidateReply, error) {
	return c.ValidateFrom(ctx, ValidateRequest{Token: secret, Account: account})
}

// ValidateFrom asks about a token used from an address (r.IP), for allow-lists.
func (c *Client) ValidateFrom(ctx context.Context, r ValidateRequest) (ValidateReply, error) {
	var rep ValidateReply
	body, _ := json.Marshal(r)
	msg, err := c.request(ctx, "validate", body, true)
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return rep, fmt.Errorf("validate: bad reply: %w", err)
	}
	return rep, nil
}

// call sends a command, or a list when endpoint is "cmd.list" (see request).
func (c *Client) call(ctx context.Context, endpoint string, req any, rep *reply) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	msg, err := c.request(ctx, endpoint, body, endpoint == "cmd.list")
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

// refusedNotCurrent says whether a node refused the request before doing
// anything, as not current (see notCurrent).
func refusedNotCurrent(msg *nats.Msg) bool {
	return msg.Header.Get(micro.ErrorCodeHeader) == errorStatus[events.Unavailable] && msg.Header.Get(micro.ErrorHeader) == notCurrent
}

// request asks endpoint and returns the first answer of a node that could
// vouch for its table, under askRead when the request changes nothing
// (again) and askCommand otherwise (see Client).
func (c *Client) request(ctx context.Context, endpoint string, body []byte, again bool) (*nats.Msg, error) {
	subject := c.prefix + "." + endpoint
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, CommandTimeout)
		defer cancel()
	}
	var (
		start   = time.Now()
		refused error // why the latest attempt that got an answer, or none, failed
		stale   bool  // a node answered that it could not vouch for its table
	)
	unanswered := events.Errorf(events.Unavailable, "no answer on %s in time: is a tokenledger node running and caught up?", subject)
	policy := askCommand
	if again {
		policy = askRead
	}
	msg, err := retry.Do(ctx, policy, func(ctx context.Context) (*nats.Msg, error) {
		msg, err := c.nc.RequestWithContext(ctx, subject, body)
		switch {
		case err == nil && !refusedNotCurrent(msg):
			return msg, nil
		case err == nil:
			stale = true
			refused = events.Errorf(events.Unavailable, "no tokenledger node on %s could vouch that its table is current in time: is the NATS cluster whole, or this region cut off from its hub?", subject)
			return nil, notCarriedOut{refused}
		case errors.Is(err, nats.ErrNoResponders):
			// A node that could not vouch for its table leaves the queue
			// group: no responder after such a refusal is the same news
			// (a stale region, a cluster not whole), not a missing node.
			if !stale {
				refused = events.Errorf(events.Unavailable, "no tokenledger node answers on %s: start one with `tokenledger serve`", subject)
			}
			if time.Since(start) > noListenerWait {
				return nil, refused
			}
			return nil, notCarriedOut{refused}
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			if refused == nil {
				return nil, unanswered
			}
			return nil, refused
		default:
			return nil, events.Errorf(events.Unavailable, "%s: %v", subject, err)
		}
	})
	if n, ok := err.(notCarriedOut); ok {
		err = n.error
	}
	return msg, err
}

// askRead is how a validation or a list is asked: again at once when an
// attempt goes unanswered for AttemptTimeout (that member stalled: the next
// request may reach another), and again after a short pause when no node
// took it (see notCarriedOut), until ctx ends.
var askRead = retry.Policy{Attempt: AttemptTimeout, Pause: refusedPause, MaxPause: refusedMaxPause, Again: wasNotCarriedOut}

// askCommand is how a command is asked: once, waiting for its reply until
// ctx ends, and again only when no node took it (see notCarriedOut), after
// the same pauses as askRead.
var askCommand = retry.Policy{Pause: refusedPause, MaxPause: refusedMaxPause, Again: wasNotCarriedOut}

// refusedPause, doubling up to refusedMaxPause, is the wait before asking
// again when no node took a request: a node that refused as not current is
// usually a moment from current, and one that left the queue group a moment
// from coming back, so the first pauses are short; the cap keeps a client
// asking twice a second while the cluster chooses a new stream leader.
const (
	refusedPause    = 20 * time.Millisecond
	refusedMaxPause = 500 * time.Millisecond
)

// notCarriedOut marks a request that no node carried out (one refused it as
// not current, or none listened, for up to noListenerWait): safe to send
// again, even a command.
type notCarriedOut struct{ error }

func (n notCarriedOut) Unwrap() error { return n.error }

func wasNotCarriedOut(err error) bool {
	var n notCarriedOut
	return errors.As(err, &n)
}
