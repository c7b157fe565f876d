package natsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/projections"
)

// ServiceName and QueueGroup are fixed by the contract: `nats micro ls` shows
// the service by this name, and every node answers a share of the requests.
const (
	ServiceName = "tokens"
	QueueGroup  = "tokens"
	// MaxRequest bounds every request body; a real one is under a kilobyte.
	MaxRequest = 16 << 10
	// commandTimeout bounds one command from receipt to reply.
	commandTimeout = 30 * time.Second
	// maxInFlight bounds the commands a node works on at once.
	maxInFlight = 256
)

// Config wires the service to the node's write and read sides.
type Config struct {
	Prefix  string // subject prefix, "tokens"
	Ledger  *commands.Ledger
	Table   *projections.Table
	Now     func() time.Time
	Log     *slog.Logger
	Version string
	// Uses hears of each valid token, to record its last use; nil: not recorded.
	Uses *commands.UseRecorder
	// Failed hears of each refused validation and the address it named (the
	// zero Addr when none), so that guessing shows in metrics; nil: not counted.
	Failed func(ip netip.Addr)
	// Ready says whether the table may be answered from: caught up, and
	// known to be current within the node's --max-staleness
	// (projections.Follower.Ready). Every request asks it before it reads
	// the table or takes a command, so that a node that stalled, or whose
	// process wakes from a freeze, says "unavailable" rather than answer from
	// an old table in the moments before it leaves the queue group. nil:
	// always ready.
	Ready func() bool
}

// Service is a running `tokens` micro service.
type Service struct {
	svc      micro.Service
	cfg      Config
	inFlight sync.WaitGroup
	slots    chan struct{}
	// reply is the validate handler's buffer. The endpoint is one
	// subscription, whose callback NATS runs one message at a time, and
	// Respond copies the bytes out before it returns.
	reply []byte
}

// Start registers the service and its endpoints on nc. Validation is answered
// in the subscription's own goroutine, since it is a memory lookup; commands
// wait on JetStream, so each runs in a goroutine of its own.
func Start(nc *nats.Conn, cfg Config) (*Service, error) {
	s := &Service{cfg: cfg, slots: make(chan struct{}, maxInFlight)}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        ServiceName,
		Version:     cfg.Version,
		Description: "tokenledger: API token validation and commands",
		QueueGroup:  QueueGroup,
	})
	if err != nil {
		return nil, err
	}
	s.svc = svc
	root := svc.AddGroup(cfg.Prefix)
	cmd := root.AddGroup("cmd")
	for _, e := range []struct {
		group   micro.Group
		name    string
		handler micro.HandlerFunc
	}{
		{root, "validate", s.validate},
		{cmd, "create", s.async(s.create)},
		{cmd, "rename", s.async(s.rename)},
		{cmd, "revoke", s.async(s.revoke)},
		{cmd, "list", s.list},
		{cmd, "rotate", s.async(s.rotate)},
		{cmd, "set-allowed-ips", s.async(s.setAllowedIPs)},
	} {
		if err := e.group.AddEndpoint(e.name, e.handler); err != nil {
			svc.Stop()
			return nil, err
		}
	}
	// Once the server has the subscriptions, requests from any connection reach them.
	if err := nc.Flush(); err != nil {
		svc.Stop()
		return nil, err
	}
	return s, nil
}

// Stop stops taking requests and waits for the commands in flight.
func (s *Service) Stop() error {
	err := s.svc.Stop()
	s.inFlight.Wait()
	return err
}

// validate answers in the endpoint's subscription goroutine, one request at
// a time like any NATS responder, so it is kept to a parse, a hash, a map
// lookup and an append: see parseValidate and appendValidateReply. A node
// that cannot vouch for its table answers {"valid":false,"reason":
// "unavailable"} as a service error (see notCurrent): never "valid" from a
// table that may miss a revoke, and at once, so that the caller asks again
// and reaches another node.
func (s *Service) validate(req micro.Request) {
	if !replyable(req.Reply()) {
		return
	}
	if !s.ready() {
		req.Error(notCurrentCode, notCurrent, unavailableReply)
		return
	}
	r := projections.Result{Reason: projections.ReasonMalformed}
	if v, ok := parseValidate(req.Data()); ok {
		var ip netip.Addr
		if v.IP != "" {
			ip, ok = parseIP(v.IP)
		}
		if ok {
			r = s.cfg.Table.ValidateFrom(v.Token, v.Account, ip, s.cfg.Now())
		}
		if r.Valid && s.cfg.Uses != nil {
			s.cfg.Uses.Seen(r.Account, r.TokenID, v.IP)
		}
		if !r.Valid && s.cfg.Failed != nil {
			s.cfg.Failed(ip)
		}
	} else if s.cfg.Failed != nil {
		s.cfg.Failed(netip.Addr{})
	}
	s.reply = appendValidateReply(s.reply[:0], validateReply(r))
	req.Respond(s.reply)
}

// parseValidate reads a JSON request or a bare secret. Anything else, too
// large or not JSON, is malformed. The common request, a flat object of
// plain strings, is read by hand; anything unusual goes to encoding/json,
// which is the reference (FuzzParseValidate holds the two to the same answer).
func parseValidate(body []byte) (ValidateRequest, bool) {
	if len(body) > MaxRequest {
		return ValidateRequest{}, false
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return ValidateRequest{Token: string(trimmed)}, true
	}
	v, simple := parseFlatRequest(bytes.Trim(body, " \t\r\n")) // JSON's own white space
	if !simple {
		v = ValidateRequest{}
		if err := json.Unmarshal(body, &v); err != nil {
			return ValidateRequest{}, false
		}
	}
	if v.Account != "" && events.CheckAccount(v.Account) != nil {
		return ValidateRequest{}, false
	}
	return v, true
}

// parseIP reads the address a validation says the token is used from.
func parseIP(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	return ip.Unmap(), err == nil && ip.Zone() == ""
}

// ReasonUnavailable is the reason of a validation that a node refused
// without looking at the token: it cannot vouch that its table is current.
// It says nothing of the token; ask again (Client does).
const ReasonUnavailable = "unavailable"

// notCurrentCode and notCurrent are the Nats-Service-Error headers of a
// request a node refused before doing anything, because it cannot vouch
// that its table is current: asking again, of another node, is safe for
// every endpoint, commands included (see Client).
const (
	notCurrentCode = "503"
	notCurrent     = "this node cannot vouch that its table is current; ask again"
)

var (
	unavailableReply, _ = json.Marshal(ValidateReply{Reason: ReasonUnavailable})
	notCurrentReply, _  = json.Marshal(reply{Code: events.Unavailable, Error: notCurrent})
)

func (s *Service) ready() bool { return s.cfg.Ready == nil || s.cfg.Ready() }

// async runs a command handler in a goroutine the service owns, with a
// deadline, at most maxInFlight at once. A node that cannot vouch for its
// table takes no command (see notCurrent).
func (s *Service) async(h func(context.Context, micro.Request)) micro.HandlerFunc {
	return func(req micro.Request) {
		if !replyable(req.Reply()) {
			return
		}
		if !s.ready() {
			req.Error(notCurrentCode, notCurrent, notCurrentReply)
			return
		}
		s.slots <- struct{}{}
		s.inFlight.Add(1)
		go func() {
			defer func() { <-s.slots; s.inFlight.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
			defer cancel()
			h(ctx, req)
		}()
	}
}

func (s *Service) create(ctx context.Context, req micro.Request) {
	var r CreateRequest
	if !s.decode(req, &r) {
		return
	}
	who, ok := s.actor(req, r.Actor)
	if !ok {
		return
	}
	c, err := s.cfg.Ledger.Create(ctx, commands.Create{Account: r.Account, Name: r.Name, ExpiresAt: r.ExpiresAt,
		AllowedIPs: r.AllowedIPs, Actor: who})
	if err != nil {
		s.fail(req, err)
		return
	}
	t := NewTokenOf(c)
	s.respond(req, reply{OK: true, Token: &t})
}

func (s *Service) rename(ctx context.Context, req micro.Request) {
	var r RenameRequest
	if !s.decode(req, &r) {
		return
	}
	who, ok := s.actor(req, r.Actor)
	if !ok {
		return
	}
	err := s.cfg.Ledger.Rename(ctx, commands.Rename{Account: r.Account, Name: r.Name, NewName: r.NewName, Actor: who})
	if err != nil {
		s.fail(req, err)
		return
	}
	s.respond(req, reply{OK: true})
}

func (s *Service) revoke(ctx context.Context, req micro.Request) {
	var r RevokeRequest
	if !s.decode(req, &r) {
		return
	}
	who, ok := s.actor(req, r.Actor)
	if !ok {
		return
	}
	err := s.cfg.Ledger.Revoke(ctx, commands.Revoke{Account: r.Account, Names: r.Names, Actor: who})
	if err != nil {
		s.fail(req, err)
		return
	}
	s.respond(req, reply{OK: true})
}

func (s *Service) rotate(ctx context.Context, req micro.Request) {
	var r RotateRequest
	if !s.decode(req, &r) {
		return
	}
	who, ok := s.actor(req, r.Actor)
	if !ok {
		return
	}
	c, err := s.cfg.Ledger.Rotate(ctx, commands.Rotate{Account: r.Account, Name: r.Name,
		Grace: time.Duration(r.GraceSeconds) * time.Second, Actor: who})
	if err != nil {
		s.fail(req, err)
		return
	}
	// The ledger has applied the rotation to the table: it tells the rest.
	t := NewToken{Name: r.Name, TokenID: c.Event.TokenID, Token: c.Secret, HasFullAccess: 1}
	for _, row := range s.cfg.Table.List(r.Account, s.cfg.Now()) {
		if row.TokenID == t.TokenID {
			t.Name, t.CreateTime, t.ExpiresAt = row.Name, row.Created.Unix(), row.ExpiresAt
		}
	}
	s.respond(req, reply{OK: true, Token: &t})
}

func (s *Service) setAllowedIPs(ctx context.Context, req micro.Request) {
	var r SetAllowedIPsRequest
	if !s.decode(req, &r) {
		return
	}
	who, ok := s.actor(req, r.Actor)
	if !ok {
		return
	}
	err := s.cfg.Ledger.SetAllowedIPs(ctx, commands.SetAllowedIPs{Account: r.Account, Name: r.Name, AllowedIPs: r.AllowedIPs, Actor: who})
	if err != nil {
		s.fail(req, err)
		return
	}
	s.respond(req, reply{OK: true})
}

func (s *Service) list(req micro.Request) {
	if !replyable(req.Reply()) {
		return
	}
	if !s.ready() {
		req.Error(notCurrentCode, notCurrent, notCurrentReply)
		return
	}
	var r ListRequest
	if !s.decode(req, &r) {
		return
	}
	if err := events.CheckAccount(r.Account); err != nil {
		s.fail(req, err)
		return
	}
	s.respond(req, listReply{OK: true, Tokens: TokenInfos(s.cfg.Table.List(r.Account, s.cfg.Now()))})
}

// actor is who a command records: the operator the request claims to be
// (a person's name, by default the sender's), and, set here and never taken
// from the request, the NATS user that sent it. That user is the one whose
// private inbox the request names for its reply: only that user may
// subscribe there (see package access), so a sender that names another's
// inbox never learns the outcome. A command over NATS acts as an operator;
// a claim to be an account or a token would contradict the connection and
// is refused.
func (s *Service) actor(req micro.Request, claimed *events.Actor) (events.Actor, bool) {
	user, ok := sender(req.Reply())
	if !ok {
		s.fail(req, events.Errorf(events.Invalid, "a command must ask for its reply on its sender's own inbox, _INBOX_<user>. (nats --inbox-prefix _INBOX_<user>)"))
		return events.Actor{}, false
	}
	a := events.Actor{Kind: events.ActorOperator, Name: user}
	if claimed != nil {
		if claimed.Kind != "" && claimed.Kind != events.ActorOperator {
			s.fail(req, events.Errorf(events.Invalid, "a command over NATS acts as an operator; it cannot claim to be %s %q", safeText(claimed.Kind), safeText(claimed.Name)))
			return events.Actor{}, false
		}
		if claimed.TokenID != "" || claimed.Remote != "" {
			s.fail(req, events.Errorf(events.Invalid, "a command over NATS names no token_id or remote in its actor"))
			return events.Actor{}, false
		}
		if claimed.Name != "" {
			a.Name = claimed.Name
		}
	}
	a.Via = "nats:" + user
	return a, true
}

// sender is the user whose private inbox reply is in: _INBOX_<user>.<...>.
func sender(reply string) (string, bool) {
	rest, ok := strings.CutPrefix(reply, "_INBOX_")
	if !ok {
		return "", false
	}
	user, _, ok := strings.Cut(rest, ".")
	if !ok || user == "" || len(user) > 64 {
		return "", false
	}
	for _, r := range user {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return "", false
		}
	}
	return user, true
}

// replyable says whether the service answers a request at all: only into an
// inbox. Any other reply subject (a stream's, an API's) would make the node
// publish where the requester chose; such a request gets no answer.
func replyable(reply string) bool {
	return strings.HasPrefix(reply, "_INBOX.") || strings.HasPrefix(reply, "_INBOX_")
}

// safeText quotes what a request said when it holds anything unprintable, so
// that an error message cannot carry control characters to a terminal.
func safeText(v string) string {
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return strconv.Quote(v)
		}
	}
	return v
}

func (s *Service) decode(req micro.Request, v any) bool {
	if len(req.Data()) > MaxRequest {
		s.fail(req, events.Errorf(events.Invalid, "request larger than %d bytes", MaxRequest))
		return false
	}
	if err := json.Unmarshal(req.Data(), v); err != nil {
		s.fail(req, events.Errorf(events.Invalid, "request is not valid JSON: %v", err))
		return false
	}
	return true
}

func (s *Service) fail(req micro.Request, err error) {
	code := events.ErrorCode(err)
	if code == events.Internal {
		s.cfg.Log.Error("command failed", "subject", req.Subject(), "err", err)
	}
	b, _ := json.Marshal(reply{Code: code, Error: events.ErrorMessage(err)})
	if code == events.Internal || code == events.Unavailable {
		// Counted as errors in `nats micro stats`; the body is still the JSON reply.
		req.Error("500", events.ErrorMessage(err), b)
		return
	}
	req.Respond(b)
}

func (s *Service) respond(req micro.Request, v any) {
	b, _ := json.Marshal(v)
	req.Respond(b)
}
