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

// Ledger is what the service needs of the write side (*commands.Ledger):
// its commands, and the check a create passes before it waits on JetStream.
// A command's answer holds all its reply shows, so the service never reads
// the table after one.
type Ledger interface {
	CheckCreate(c commands.Create) error
	Create(ctx context.Context, c commands.Create) (commands.Created, error)
	Rename(ctx context.Context, c commands.Rename) error
	Revoke(ctx context.Context, c commands.Revoke) error
	Rotate(ctx context.Context, c commands.Rotate) (commands.Created, error)
	SetAllowedIPs(ctx context.Context, c commands.SetAllowedIPs) error
	SetFeatures(ctx context.Context, c commands.SetFeatures) error
}

// Table is what the service needs of the read side (*projections.Table):
// validations and lists, both from memory.
type Table interface {
	ValidateFor(secret, account string, ip netip.Addr, need projections.Need, now func() time.Time) projections.Result
	List(account string, now time.Time) []projections.Row
}

// UseRecorder hears of each valid token, so that its last use is recorded
// (*commands.UseRecorder). Seen runs on validate's path and must not block.
type UseRecorder interface {
	Seen(account string, id events.TokenID, ip string)
}

// Config wires the service to the node's write and read sides.
type Config struct {
	Prefix  string // subject prefix, "tokens"
	Ledger  Ledger
	Table   Table
	Now     func() time.Time
	Log     *slog.Logger
	Version string
	// Uses hears of each valid token, to record its last use; nil (not a
	// nil *commands.UseRecorder): not recorded.
	Uses UseRecorder
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
	nc       *nats.Conn
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
	s := &Service{nc: nc, cfg: cfg, slots: make(chan struct{}, maxInFlight), late: map[string]*commandStats{},
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
	ledger := cfg.Ledger
	for _, e := range []struct {
		group   micro.Group
		name    string
		handler micro.HandlerFunc
	}{
		{root, "validate", s.validate},
		{cmd, "create", handle(s, "create", decodeAs[CreateRequest], createCommand(ledger), created(ledger.Create))},
		{cmd, "rename", handle(s, "rename", decodeAs[RenameRequest], renameCommand, done(ledger.Rename))},
		{cmd, "revoke", handle(s, "revoke", decodeAs[RevokeRequest], revokeCommand, done(ledger.Revoke))},
		{cmd, "list", s.list},
		{cmd, "rotate", handle(s, "rotate", decodeAs[RotateRequest], rotateCommand, created(ledger.Rotate))},
		{cmd, "set-allowed-ips", handle(s, "set-allowed-ips", decodeAs[SetAllowedIPsRequest], setAllowedIPsCommand, done(ledger.SetAllowedIPs))},
		{cmd, "set-features", handle(s, "set-features", decodeSetFeatures, setFeaturesCommand, done(ledger.SetFeatures))},
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
			r = s.cfg.Table.ValidateFor(v.Token, v.Account, ip, need, s.cfg.Now)
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
	s.reply = appendValidateReply(s.reply[:0], r)
	s.answer(req, s.reply)
}

// answer publishes body to req's reply subject on the service's connection:
// what micro's Respond does, without the message it builds for it, an
// allocation on every validation (micro counts a request when the handler
// returns, however it answered).
func (s *Service) answer(req micro.Request, body []byte) {
	if s.nc == nil { // BenchmarkValidateHandler's service, without a connection
		req.Respond(body)
		return
	}
	s.nc.Publish(req.Reply(), body)
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
	// A body in braces, as every client sends it, has no white space of
	// either kind around it to trim: the common case skips both trims (the
	// cutset's set was built anew on every call).
	object := body
	if len(body) == 0 || body[0] != '{' || body[len(body)-1] != '}' {
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 || trimmed[0] != '{' {
			return ValidateRequest{Token: string(trimmed)}, true
		}
		object = bytes.Trim(body, " \t\r\n") // JSON's own white space
	}
	v, simple := parseFlatRequest(object)
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

// request is a command's request as it travels: each may claim an actor
// (see Service.actor).
type request interface {
	claimed() *events.Actor
}

// handle makes a command endpoint's handler from the command's own pieces:
// read, which takes the request from its body (decodeAs, for most); build,
// which makes the ledger's command of it and of the actor, and checks it;
// and do, which carries the command out and says what the reply holds.
// What every command shares is here: an answer only into an inbox, no
// command on a node that cannot vouch for its table (see notCurrent), the
// actor, refusals of the request answered in the endpoint's own goroutine,
// where micro's stats count them, and the rest, which waits on JetStream,
// run in a goroutine the service owns, with a deadline, at most
// maxInFlight at once, its refusals counted in commandStats.
func handle[Req request, Cmd any](s *Service, endpoint string, read func(micro.Request) (Req, error),
	build func(r Req, who events.Actor) (Cmd, error), do func(context.Context, Cmd) (reply, error)) micro.HandlerFunc {
	s.lateMu.Lock() // micro may already ask endpointData
	s.late[endpoint] = &commandStats{}
	s.lateMu.Unlock()
	return func(req micro.Request) {
		if !replyable(req.Reply()) {
			return
		}
		if !s.ready() {
			s.refuse(req, events.Errorf(events.Unavailable, notCurrent))
			return
		}
		r, err := read(req)
		var who events.Actor
		if err == nil {
			who, err = s.actor(req, r.claimed())
		}
		var c Cmd
		if err == nil {
			c, err = build(r, who)
		}
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
			rep, err := do(ctx, c)
			if err != nil {
				s.refuseLater(req, endpoint, err)
				return
			}
			s.respond(req, rep)
		}()
	}
}

// created is the do of a command that answers with a token and its
// secret (create, rotate): the ledger's answer holds all the reply shows.
func created[Cmd any](do func(context.Context, Cmd) (commands.Created, error)) func(context.Context, Cmd) (reply, error) {
	return func(ctx context.Context, c Cmd) (reply, error) {
		made, err := do(ctx, c)
		if err != nil {
			return reply{}, err
		}
		t := NewTokenOf(made)
		return reply{OK: true, Token: &t}, nil
	}
}

// done is the do of a command that answers {"ok":true}.
func done[Cmd any](do func(context.Context, Cmd) error) func(context.Context, Cmd) (reply, error) {
	return func(ctx context.Context, c Cmd) (reply, error) {
		return reply{OK: true}, do(ctx, c)
	}
}

// createCommand builds a create, refused at once as the ledger would refuse
// it before reading the account (its lifetime policy too). The allow-list is
// parsed here, once, and the ledger's checks of the rest speak first: a bad
// account, actor, name or expiry is named before a bad list, as it always
// was, and now so are bad features and a lifetime beyond the policy, which
// the ledger used to check after the list.
func createCommand(l Ledger) func(CreateRequest, events.Actor) (commands.Create, error) {
	return func(r CreateRequest, who events.Actor) (commands.Create, error) {
		allowed, badList := events.ParsePrefixes(r.AllowedIPs)
		c := commands.Create{Account: r.Account, Name: r.Name, ExpiresAt: r.ExpiresAt, AllowedIPs: allowed,
			Features: r.Features, ReadOnly: r.ReadOnly, Actor: who}
		if err := l.CheckCreate(c); err != nil {
			return c, err
		}
		return c, badList
	}
}

func renameCommand(r RenameRequest, who events.Actor) (commands.Rename, error) {
	c := commands.Rename{Account: r.Account, Name: r.Name, NewName: r.NewName, Actor: who}
	return c, c.Check()
}

func revokeCommand(r RevokeRequest, who events.Actor) (commands.Revoke, error) {
	c := commands.Revoke{Account: r.Account, Names: r.Names, Actor: who}
	return c, c.Check()
}

func rotateCommand(r RotateRequest, who events.Actor) (commands.Rotate, error) {
	c := commands.Rotate{Account: r.Account, Name: r.Name, Grace: time.Duration(r.GraceSeconds) * time.Second, Actor: who}
	return c, c.Check()
}

// setAllowedIPsCommand parses the allow-list, once; a bad account, actor or
// name is named first, as the ledger's check, which ends with the list, would.
func setAllowedIPsCommand(r SetAllowedIPsRequest, who events.Actor) (commands.SetAllowedIPs, error) {
	allowed, badList := events.ParsePrefixes(r.AllowedIPs)
	c := commands.SetAllowedIPs{Account: r.Account, Name: r.Name, AllowedIPs: allowed, Actor: who}
	if err := c.Check(); err != nil {
		return c, err
	}
	return c, badList
}

// decodeSetFeatures reads a set-features request, which must give the
// features: absent or null is refused rather than read as full access.
func decodeSetFeatures(req micro.Request) (setFeaturesJSON, error) {
	r, err := decodeAs[setFeaturesJSON](req)
	if err == nil && r.Features == nil {
		err = events.Errorf(events.Invalid, "features: give the token's features as a list, or [] for full access")
	}
	return r, err
}

func setFeaturesCommand(r setFeaturesJSON, who events.Actor) (commands.SetFeatures, error) {
	c := commands.SetFeatures{Account: r.Account, Name: r.Name, Features: *r.Features, Actor: who}
	return c, c.Check()
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
		i := -1
		// Only the form a reply's "next" has names a token: text that merely
		// parses (lower case) matches none, as it never has.
		if after, err := events.ParseTokenID(r.After); err == nil && after.String() == r.After {
			i = slices.IndexFunc(rows, func(row projections.Row) bool { return row.TokenID == after })
		}
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
	body = appendTokenID(body, rows[n-1].TokenID)
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

// decodeAs reads a command's request of type Req, as decode does.
func decodeAs[Req any](req micro.Request) (Req, error) {
	var r Req
	err := decode(req, &r)
	return r, err
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
