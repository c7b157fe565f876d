package natsapi

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"tokenledger/events"
	"tokenledger/projections"
)

// BenchmarkValidateHandler measures the validate handler's own work (parse,
// hash, lookup, feature check, reply), which runs one request at a time in
// the endpoint's subscription goroutine: BenchmarkValidate measures it over
// NATS, where the network's share hides a few hundred nanoseconds. The
// request is the handler's view of a message (micro.Request), which the
// handler answers by calling Respond, as micro's would be.
//
//	go test -run '^$' -bench ValidateHandler -benchmem ./natsapi
func BenchmarkValidateHandler(b *testing.B) {
	t := projections.NewTable(projections.DefaultWarn)
	actor := events.Actor{Kind: events.ActorOperator, Name: "bench"}
	at := time.Now()
	var reqs []*heldRequest
	for i := range 256 {
		secret := events.NewSecret()
		account := fmt.Sprintf("acct%d", i) // one token an account: each its own chain
		d := events.TokenCreated{Name: fmt.Sprintf("t%d", i), TokenHash: events.HashSecret(secret), Features: []string{"api", "email", "ftp"}[:1+i%3]}
		e := events.Event{ID: events.NewID(), At: at, Account: account, TokenID: events.NewTokenID(), Actor: actor, Data: d}
		if err := t.Apply(uint64(i+1), e, events.Digest([]byte(e.ID))); err != nil {
			b.Fatal(err)
		}
		body, _ := json.Marshal(ValidateRequest{Token: secret, Account: account, Feature: "api", Write: true})
		reqs = append(reqs, &heldRequest{data: body})
	}
	s := &Service{cfg: Config{Table: t, Now: time.Now}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.validate(reqs[i%len(reqs)])
		i++
	}
	for _, r := range reqs[:min(i, len(reqs))] {
		var rep ValidateReply
		if err := json.Unmarshal(r.reply, &rep); err != nil || !rep.Valid {
			b.Fatalf("not valid: %s", r.reply)
		}
	}
}

// heldRequest is a request whose reply the benchmark keeps to check.
type heldRequest struct {
	data, reply []byte
}

func (r *heldRequest) Respond(b []byte, _ ...micro.RespondOpt) error {
	r.reply = append(r.reply[:0], b...)
	return nil
}
func (r *heldRequest) RespondJSON(any, ...micro.RespondOpt) error { return nil }
func (r *heldRequest) Error(code, desc string, data []byte, _ ...micro.RespondOpt) error {
	r.reply = append(r.reply[:0], data...)
	return nil
}
func (r *heldRequest) Data() []byte           { return r.data }
func (r *heldRequest) Headers() micro.Headers { return nil }
func (r *heldRequest) Subject() string        { return "tokens.validate" }
func (r *heldRequest) Reply() string          { return "_INBOX_validator.bench" }
