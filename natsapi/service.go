package natsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"slices"
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
	// maxReply is the largest reply body the node sends: a NATS message
	// larger than the server's max_payload is refused whole (see list).
	maxReply int
	// late counts, by command endpoint, the refusals that micro's own stats
	// cannot (see commandStats).
	lateMu sync.Mutex
	late   map[string]*commandStats
	// reply is the validate handler's buffer. The endpoint is one
	// subscription, whose callback NATS runs one message at a time, and
	// Respond copies the bytes out before it returns.
	reply []byte
	// need is the validate handler's list of the features a request needs,
	// kept for the same reason.
	need []string
}

// Start registers the service and its endpoints on nc. Validation is answered
// in the subscription's own goroutine, since it is a memory lookup; commands
// wait on JetStream, so each runs in a goroutine of its own.
func Start(nc *nats.Conn, cfg Config) (*Service, error) {
	s := &Service{cfg: cfg, slots: make(chan struct{}, maxInFlight), late: map[string]*commandStats{},
		maxReply: int(nc.MaxPayload()) - replyHeadroom}
	svc, err := micro.AddService(nc, micro.Config{
		Name:         ServiceName,
		Version:      cfg.Version,
		Description:  "tokenledger: API token validation and commands",
		QueueGroup:   QueueGroup,
		StatsHandler: s.endpointData,
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
		handler micro.HandlerFunc // answered in the endpoint's goroutine
		command command           // checked there, carried out in its own
	}{
		{root, "validate", s.validate, nil},
		{cmd, "create", nil, s.create},
		{cmd, "rename", nil, s.rename},
		{cmd, "revoke", nil, s.revoke},
		{cmd, "list", s.list, nil},
		{cmd, "rotate", nil, s.rotate},
		{cmd, "set-allowed-ips", nil, s.setAllowedIPs},
		{cmd, "set-features", nil, s.setFeatures},
	} {
		h := e.handler
		if e.command != nil {
			s.lateMu.Lock() // micro may already ask endpointData
			s.late[e.name] = &commandStats{}
			s.lateMu.Unlock()
			h = s.async(e.name, e.command)
		}
		if err := e.group.AddEndpoint(e.name, h); err != nil {
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
		req.Error(errorStatus[events.Unavailable], notCurrent, unavailableReply)
		return
	}
	r := projections.Result{Reason: projections.ReasonMalformed}
	if v, ok := parseValidate(req.Data()); ok {
		var ip netip.Addr
		if v.IP != "" {
			ip, ok = parseIP(v.IP)
		}
		var need projections.Need
		if ok {
			need, ok = s.needOf(v)
		}
		if ok {
			r = s.cfg.Table.ValidateFor(v.Token, v.Account, ip, need, s.cfg.Now())
		}
		if r.Valid && s.cfg.Uses != nil {
			s.cfg.Uses.Seen(r.Account, r.TokenID, v.IP)
		}
		// A token denied a feature or a write is a credential that worked:
		// not a failure to count against its address.
		if !r.Valid && r.Reason != projections.ReasonFeatureDenied && r.Reason != projections.ReasonReadOnly && s.cfg.Failed != nil {
			s.cfg.Failed(ip)
		}
	} else if s.cfg.Failed != nil {
		s.cfg.Failed(netip.Addr{})
	}
	s.reply = appendValidateReply(s.reply[:0], validateReply(r))
	req.Respond(s.reply)
}

// needOf is what the request v asks of its token, or false when it names a
// feature that cannot be one, or more than a token may have. Its Features
// are the service's own buffer (see Service.need), good until the next call.
func (s *Service) needOf(v ValidateRequest) (projections.Need, bool) {
	need := projections.Need{Write: v.Write}
	if v.Feature == "" && len(v.Features) == 0 {
		return need, true
	}
	s.need = s.need[:0]
	if v.Feature != "" {
		s.need = append(s.need, v.Feature)
	}
	s.need = append(s.need, v.Features...)
	if len(s.need) > events.MaxFeatures {
		return need, false
	}
	for _, f := range s.need {
		if events.CheckFeature(f) != nil {
			return need, false
		}
	}
	need.Features = s.need
	return need, true
}

// parseValidate reads a JSON request or a bare secret. Anything else, too
// large, not JSON, with a member it does not know or an empty "feature", is
// malformed. The common request, a flat object of plain strings, is read by
// hand; anything unusual goes to encoding/json, which is the reference
// (FuzzParseValidate holds the two to the same answer).
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
		var ok bool
		if v, ok = unmarshalValidate(body); !ok {
			return ValidateRequest{}, false
		}
	}
	if v.Account != "" && events.CheckAccount(v.Account) != nil {
		return ValidateRequest{}, false
	}
	return v, true
}

// unmarshalValidate reads a JSON validation request with encoding/json,
// refusing members it does not know and an empty "feature".
func unmarshalValidate(body []byte) (ValidateRequest, bool) {
	var w validateJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return ValidateRequest{}, false
	}
	if _, err := dec.Token(); err != io.EOF { // JSON's own white space, and nothing else, may follow
		return ValidateRequest{}, false
	}
	v := ValidateRequest{Token: w.Token, Account: w.Account, IP: w.IP, Features: w.Features, Write: w.Write}
	if w.Feature != nil {
		if *w.Feature == "" {
			return ValidateRequest{}, false
		}
		v.Feature = *w.Feature
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

// notCurrent is the Nats-Service-Error header (with code 503) of a request a
// node refused before doing anything, because it cannot vouch that its table
// is current: asking again, of another node, is safe for every endpoint,
// commands included (see Client). Other refusals may be 503 too (a command
// whose outcome JetStream left unknown), so Client tells this one by its
// description.
const notCurrent = "this node cannot vouch that its table is current; ask again"

var unavailableReply, _ = json.Marshal(ValidateReply{Reason: ReasonUnavailable})

func (s *Service) ready() bool { return s.cfg.Ready == nil || s.cfg.Ready() }

// command checks a request in the endpoint's own goroutine, where a
// refusal still counts in micro's stats, and returns the work that waits on
// JetStream.
type command func(req micro.Request) (run func(context.Context) (any, error), err error)

// async checks a command at once and runs the rest in a goroutine the
// service owns, with a deadline, at most maxInFlight at once. A node that
// cannot vouch for its table takes no command (see notCurrent).
func (s *Service) async(endpoint string, c command) micro.HandlerFunc {
	return func(req micro.Request) {
		if !replyable(req.Reply()) {
			return
		}
		if !s.ready() {
			s.refuse(req, events.Errorf(events.Unavailable, notCurrent))
			return
		}
		run, err := c(req)
		if err != nil {
			s.refuse(req, err)
			return
		}
		s.slots <- struct{}{}
		s.inFlight.Add(1)
		go func() {
			defer func() { <-s.slots; s.inFlight.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
			defer cancel()
			rep, err := run(ctx)
			if err != nil {
				s.refuseLater(req, endpoint, err)
				return
			}
			s.respond(req, rep)
		}()
	}
}

func (s *Service) create(req micro.Request) (func(context.Context) (any, error), error) {
	var r CreateRequest
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	who, err := s.actor(req, r.Actor)
	if err != nil {
		return nil, err
	}
	c := commands.Create{Account: r.Account, Name: r.Name, ExpiresAt: r.ExpiresAt, AllowedIPs: r.AllowedIPs,
		Features: r.Features, ReadOnly: r.ReadOnly, Actor: who}
	if err := c.Check(s.cfg.Now()); err != nil {
		return nil, err
	}
	if err := c.CheckLifetime(s.cfg.Now(), s.cfg.Ledger.MaxLifetime); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		made, err := s.cfg.Ledger.Create(ctx, c)
		if err != nil {
			return nil, err
		}
		t := NewTokenOf(made)
		return reply{OK: true, Token: &t}, nil
	}, nil
}

func (s *Service) rename(req micro.Request) (func(context.Context) (any, error), error) {
	var r RenameRequest
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	who, err := s.actor(req, r.Actor)
	if err != nil {
		return nil, err
	}
	c := commands.Rename{Account: r.Account, Name: r.Name, NewName: r.NewName, Actor: who}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		return reply{OK: true}, s.cfg.Ledger.Rename(ctx, c)
	}, nil
}

func (s *Service) revoke(req micro.Request) (func(context.Context) (any, error), error) {
	var r RevokeRequest
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	who, err := s.actor(req, r.Actor)
	if err != nil {
		return nil, err
	}
	c := commands.Revoke{Account: r.Account, Names: r.Names, Actor: who}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		return reply{OK: true}, s.cfg.Ledger.Revoke(ctx, c)
	}, nil
}

func (s *Service) rotate(req micro.Request) (func(context.Context) (any, error), error) {
	var r RotateRequest
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	who, err := s.actor(req, r.Actor)
	if err != nil {
		return nil, err
	}
	c := commands.Rotate{Account: r.Account, Name: r.Name, Grace: time.Duration(r.GraceSeconds) * time.Second, Actor: who}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		made, err := s.cfg.Ledger.Rotate(ctx, c)
		if err != nil {
			return nil, err
		}
		// The ledger has applied the rotation to the table: it tells the rest.
		t := NewToken{Name: r.Name, TokenID: made.Event.TokenID, Token: made.Secret, HasFullAccess: 1, Features: noFeatures}
		for _, row := range s.cfg.Table.List(r.Account, s.cfg.Now()) {
			if row.TokenID == t.TokenID {
				t.Name, t.CreateTime, t.ExpiresAt = row.Name, row.Created.Unix(), row.ExpiresAt
				t.HasFullAccess, t.Features, t.ReadOnly = flag(len(row.Features) == 0), listed(row.Features), flag(row.ReadOnly)
			}
		}
		return reply{OK: true, Token: &t}, nil
	}, nil
}

func (s *Service) setAllowedIPs(req micro.Request) (func(context.Context) (any, error), error) {
	var r SetAllowedIPsRequest
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	who, err := s.actor(req, r.Actor)
	if err != nil {
		return nil, err
	}
	c := commands.SetAllowedIPs{Account: r.Account, Name: r.Name, AllowedIPs: r.AllowedIPs, Actor: who}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		return reply{OK: true}, s.cfg.Ledger.SetAllowedIPs(ctx, c)
	}, nil
}

func (s *Service) setFeatures(req micro.Request) (func(context.Context) (any, error), error) {
	var r setFeaturesJSON
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	if r.Features == nil {
		return nil, events.Errorf(events.Invalid, "features: give the token's features as a list, or [] for full access")
	}
	who, err := s.actor(req, r.Actor)
	if err != nil {
		return nil, err
	}
	c := commands.SetFeatures{Account: r.Account, Name: r.Name, Features: *r.Features, Actor: who}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		return reply{OK: true}, s.cfg.Ledger.SetFeatures(ctx, c)
	}, nil
}

// list answers in the endpoint's goroutine, from memory, one page at a
// time: see ListRequest for the paging, and listPage for how a page is cut.
func (s *Service) list(req micro.Request) {
	if !replyable(req.Reply()) {
		return
	}
	if !s.ready() {
		s.refuse(req, events.Errorf(events.Unavailable, notCurrent))
		return
	}
	var r ListRequest
	if err := decodeLoose(req, &r); err != nil {
		s.refuse(req, err)
		return
	}
	if err := events.CheckAccount(r.Account); err != nil {
		s.refuse(req, err)
		return
	}
	if r.Limit < 0 {
		s.refuse(req, events.Errorf(events.Invalid, "limit %d: want a number of tokens per page, or none", r.Limit))
		return
	}
	if len(r.After) > 64 {
		s.refuse(req, events.Errorf(events.Invalid, "after: want the token id of a previous reply's \"next\""))
		return
	}
	rows := s.cfg.Table.List(r.Account, s.cfg.Now())
	if r.After != "" {
		i := slices.IndexFunc(rows, func(row projections.Row) bool { return row.TokenID == r.After })
		if i < 0 {
			s.refuse(req, events.Errorf(events.Conflict, "the token %s that the previous page ended with is no longer listed (revoked since?): list %s again from the start", safeText(r.After), r.Account))
			return
		}
		rows = rows[i+1:]
	}
	body, n, err := listPage(rows, r.Limit, s.maxReply)
	switch {
	case err != nil:
		s.refuse(req, err) // logged as internal
		return
	case n < len(rows) && r.Limit == 0 && r.After == "":
		// A request in the form before paging: its caller would take a
		// first page for the whole list, so it gets none.
		s.cfg.Log.Warn("list refused: the account's tokens exceed one NATS message; the caller must ask for pages",
			"account", r.Account, "tokens", len(rows), "max_bytes", s.maxReply)
		s.refuse(req, events.Errorf(events.Invalid, "account %s has %d tokens, more than one reply of at most %d bytes holds: ask for pages, {\"account\",\"limit\":%d}, then again with \"after\" set to each reply's \"next\" (natsapi.Client.List and tokenledger list do)",
			r.Account, len(rows), s.maxReply, ListPageSize))
		return
	}
	req.Respond(body)
}

// replyHeadroom is what a reply leaves of the server's max_payload: NATS
// counts the headers and the protocol line in.
const replyHeadroom = 4 << 10

// listPage writes a list reply, {"ok":true,"tokens":[...]}, of as many
// rows as limit (when not 0) and max bytes allow, with "next" when rows are
// left. One row is at most a few kilobytes (a name and 100 address ranges),
// so a page always holds one; should it not, the reply says so rather than
// fail to send.
func listPage(rows []projections.Row, limit, max int) (body []byte, n int, err error) {
	const open, last = `{"ok":true,"tokens":[`, `]}`
	// What "next" adds: `],"next":` and a token id, quoted, ULIDs' 26 or more.
	tail := len(`],"next":""}`) + 64
	body = append(make([]byte, 0, min(max, 64<<10)), open...)
	for ; n < len(rows) && (limit == 0 || n < limit); n++ {
		row, err := json.Marshal(tokenInfo(rows[n]))
		if err != nil {
			return nil, 0, err
		}
		if len(body)+1+len(row)+tail > max {
			break
		}
		if n > 0 {
			body = append(body, ',')
		}
		body = append(body, row...)
	}
	if n == 0 && len(rows) > 0 {
		return nil, 0, events.Errorf(events.Internal, "the token %s alone exceeds a reply of at most %d bytes (the NATS server's max_payload)", rows[0].TokenID, max)
	}
	if n == len(rows) {
		return append(body, last...), n, nil
	}
	body = append(body, `],"next":`...)
	body = appendString(body, rows[n-1].TokenID)
	return append(body, '}'), n, nil
}

// actor is who a command records: the operator the request claims to be
// (a person's name, by default the sender's), and, set here and never taken
// from the request, the NATS user that sent it. That user is the one whose
// private inbox the request names for its reply: only that user may
// subscribe there (see package access), so a sender that names another's
// inbox never learns the outcome. A command over NATS acts as an operator;
// a claim to be an account or a token would contradict the connection and
// is refused.
func (s *Service) actor(req micro.Request, claimed *events.Actor) (events.Actor, error) {
	user, ok := sender(req.Reply())
	if !ok {
		return events.Actor{}, events.Errorf(events.Invalid, "a command must ask for its reply on its sender's own inbox, _INBOX_<user>. (nats --inbox-prefix _INBOX_<user>)")
	}
	a := events.Actor{Kind: events.ActorOperator, Name: user}
	if claimed != nil {
		if claimed.Kind != "" && claimed.Kind != events.ActorOperator {
			return events.Actor{}, events.Errorf(events.Invalid, "a command over NATS acts as an operator; it cannot claim to be %s %q", safeText(claimed.Kind), safeText(claimed.Name))
		}
		if claimed.TokenID != "" || claimed.Remote != "" {
			return events.Actor{}, events.Errorf(events.Invalid, "a command over NATS names no token_id or remote in its actor")
		}
		if claimed.Name != "" {
			a.Name = claimed.Name
		}
	}
	a.Via = "nats:" + user
	return a, nil
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

// decode reads a command's request, refusing a member it does not know: a
// command changes the ledger, and one that misspells a limit ("feature",
// "read_only") must fail rather than do more than was asked.
func decode(req micro.Request, v any) error {
	if len(req.Data()) > MaxRequest {
		return events.Errorf(events.Invalid, "request larger than %d bytes", MaxRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(req.Data()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return events.Errorf(events.Invalid, "request is not valid JSON, or has a member this command does not know: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return events.Errorf(events.Invalid, "request is not valid JSON: data after its object")
	}
	return nil
}

// decodeLoose reads a request that changes nothing (a list), as
// encoding/json does: members it does not know are passed over.
func decodeLoose(req micro.Request, v any) error {
	if len(req.Data()) > MaxRequest {
		return events.Errorf(events.Invalid, "request larger than %d bytes", MaxRequest)
	}
	if err := json.Unmarshal(req.Data(), v); err != nil {
		return events.Errorf(events.Invalid, "request is not valid JSON: %v", err)
	}
	return nil
}

// errorStatus is the Nats-Service-Error-Code of each error code, the one
// table of this transport: 4xx when the caller must change the request, 5xx
// when the node could not carry it out. Every refusal carries it beside its
// JSON body, so that `nats micro stats` and generic micro clients see an
// error; a validation's {"valid":false} is an answer, not a refusal.
var errorStatus = map[string]string{
	events.Invalid:      "400",
	events.Unauthorized: "403",
	events.NotFound:     "404",
	events.Duplicate:    "409",
	events.Conflict:     "409",
	events.Unavailable:  "503",
	events.Internal:     "500",
}

// refusal is the reply and the micro error headers of a refused request.
// An internal error, the only unexpected kind, is logged.
func (s *Service) refusal(req micro.Request, err error) (body []byte, status, description string) {
	code := events.ErrorCode(err)
	if code == events.Internal {
		s.cfg.Log.Error("request failed", "subject", req.Subject(), "err", err)
	}
	status, ok := errorStatus[code]
	if !ok {
		status = errorStatus[events.Internal]
	}
	msg := events.ErrorMessage(err)
	body, _ = json.Marshal(reply{Code: code, Error: msg})
	// A header is one line of text: the JSON body keeps the message whole.
	description = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	return body, status, description
}

// refuse answers a request refused in its endpoint's goroutine, where micro
// counts it in num_errors.
func (s *Service) refuse(req micro.Request, err error) {
	body, status, description := s.refusal(req, err)
	req.Error(status, description, body)
}

// refuseLater answers a command refused in its own goroutine, after micro
// has counted the request: with the same headers, and counted in the
// endpoint's stats data instead (see commandStats).
func (s *Service) refuseLater(req micro.Request, endpoint string, err error) {
	body, status, description := s.refusal(req, err)
	s.lateMu.Lock() // counted before the caller hears of it
	st := s.late[endpoint]
	st.Errors++
	st.LastError = status + ":" + description
	s.lateMu.Unlock()
	req.Respond(body, micro.WithHeaders(micro.Headers{micro.ErrorHeader: {description}, micro.ErrorCodeHeader: {status}}))
}

// commandStats is a command endpoint's "data" in `nats micro stats`. micro
// counts an error only when the handler has answered by the time it
// returns; a command is checked there (bad JSON, invalid input: counted in
// num_errors), but decided against the stream in a goroutine of its own, so
// that one slow command does not hold up the rest. Its refusals (not_found,
// duplicate, conflict, unavailable, internal) are counted here.
type commandStats struct {
	Errors    int    `json:"command_errors"`
	LastError string `json:"last_command_error,omitempty"`
}

// endpointData is micro's StatsHandler: a command endpoint's commandStats.
// The map's keys are set in Start, before any request.
func (s *Service) endpointData(e *micro.Endpoint) any {
	s.lateMu.Lock()
	defer s.lateMu.Unlock()
	if st := s.late[e.Name]; st != nil {
		return *st
	}
	return nil
}

func (s *Service) respond(req micro.Request, v any) {
	b, _ := json.Marshal(v)
	req.Respond(b)
}
