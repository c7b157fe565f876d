package natsapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/benchtable"
	"tokenledger/internal/natstest"
	"tokenledger/internal/reqbench"
	"tokenledger/natsapi"
)

// BenchmarkValidate measures tokens.validate end to end over NATS beside a
// bare echo responder on the same connection, sent the same request bodies
// and answering with a reply of the same size, at 32 concurrent requesters.
// Each iteration is one request to each, in alternating rounds; the ratio
// is the median of the rounds' ratios. The goals: ratio >= 0.9 and
// p99 within 1.5 times the echo's.
//
//	go test -run '^$' -bench Validate -benchtime 100000x ./natsapi
func BenchmarkValidate(b *testing.B) { benchmarkValidate(b, false) }

// BenchmarkValidateFeature is BenchmarkValidate with tokens that have
// features and requests that name one of them, and say they write. Every
// token has the same three, so that each reply is the size of the echo's,
// which the client's check reads alike.
func BenchmarkValidateFeature(b *testing.B) { benchmarkValidate(b, true) }

func benchmarkValidate(b *testing.B, limited bool) {
	const concurrency, rounds = 32, 5
	n := MustServe(b, natstest.MustServer(b), nil)
	bodies := make([][]byte, 256)
	for i := range bodies {
		if !limited {
			c := n.MustCreate(b, fmt.Sprintf("acct%d", i%16), fmt.Sprintf("t%d", i), nil)
			bodies[i] = jsonBody(c.Secret, c.Event.Account)
			continue
		}
		c, err := n.Ledger.Create(context.Background(), commands.Create{Account: fmt.Sprintf("acct%d", i%16), Name: fmt.Sprintf("t%d", i),
			Features: []string{"api", "email", "ftp"}, Actor: events.Actor{Kind: events.ActorOperator, Name: "bench"}})
		if err != nil {
			b.Fatal(err)
		}
		bodies[i], _ = json.Marshal(natsapi.ValidateRequest{Token: c.Secret, Account: c.Event.Account, Feature: "api", Write: true})
	}
	reply := ask(b, n.Client, bodies[0])
	replyBody, _ := json.Marshal(reply)
	if _, err := reqbench.Echo(n.Conn, "bench.echo", natsapi.QueueGroup, replyBody); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	// The echo's reply is a valid reply, so both sides pass the same check.
	echo, validate, ratios, err := reqbench.Compare(n.Client, "bench.echo", "tokens.validate", bodies, concurrency, max(b.N/rounds, 1), rounds, validReply)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	reportValidate(b, echo, validate, ratios)
}

// validReply is the benchmarks' check of each reply: a valid token's.
func validReply(data []byte) error {
	var rep natsapi.ValidateReply
	if err := json.Unmarshal(data, &rep); err != nil || !rep.Valid {
		return fmt.Errorf("not valid: %q", data)
	}
	return nil
}

// reportValidate reports a comparison of validations with the echo.
func reportValidate(b *testing.B, echo, validate reqbench.Result, ratios []float64) {
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(echo.PerSecond(), "echo/s")
	b.ReportMetric(validate.PerSecond(), "validate/s")
	b.ReportMetric(reqbench.Median(ratios), "ratio")
	b.ReportMetric(float64(echo.P99.Microseconds()), "echo-p99-µs")
	b.ReportMetric(float64(validate.P99.Microseconds()), "validate-p99-µs")
	b.ReportMetric(float64(validate.P99)/float64(echo.P99), "p99-ratio")
}

// BenchmarkValidateMillionTokens is BenchmarkValidate against a table of a
// million tokens (benchtable.Build; full access, no feature asked), served
// as a node serves it: first on the kernel's small pages, as the table is
// built, then once moved to huge pages as a ready node moves it
// (projections.Table.UseHugePages). Each sub-benchmark runs ten rounds.
//
//	go test -run '^$' -bench 'ValidateMillionTokens|ValidateTenMillionTokens' -benchtime 1000000x ./natsapi
func BenchmarkValidateMillionTokens(b *testing.B) { benchmarkValidateTable(b, 10_000) }

// BenchmarkValidateTenMillionTokens is BenchmarkValidateMillionTokens at ten
// million tokens (about 2.5 GB, and a minute or two to build).
func BenchmarkValidateTenMillionTokens(b *testing.B) { benchmarkValidateTable(b, 100_000) }

// noLedger is a service's ledger for benchmarks that only validate.
type noLedger struct{ natsapi.Ledger }

func benchmarkValidateTable(b *testing.B, accounts int) {
	const concurrency, rounds = 32, 10
	table, probes, err := benchtable.Build(accounts, false)
	if err != nil {
		b.Fatal(err)
	}
	srv := natstest.MustServer(b)
	nc, client := natstest.MustConnect(b, srv), natstest.MustConnect(b, srv)
	svc, err := natsapi.Start(nc, natsapi.Config{Prefix: "tokens", Table: table, Ledger: noLedger{}, Now: time.Now, Version: "0.0.0-bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Stop()
	rand.Shuffle(len(probes), func(i, j int) { probes[i], probes[j] = probes[j], probes[i] })
	bodies := make([][]byte, len(probes))
	for i, p := range probes {
		bodies[i] = jsonBody(p.Secret, p.Account)
	}
	replyBody, _ := json.Marshal(ask(b, client, bodies[0]))
	if _, err := reqbench.Echo(nc, "bench.echo", natsapi.QueueGroup, replyBody); err != nil {
		b.Fatal(err)
	}
	compare := func(b *testing.B) {
		echo, validate, ratios, err := reqbench.Compare(client, "bench.echo", "tokens.validate", bodies, concurrency, max(b.N/rounds, 1), rounds, validReply)
		if err != nil {
			b.Fatal(err)
		}
		reportValidate(b, echo, validate, ratios)
	}
	b.Run("small pages", compare)
	hp := table.UseHugePages(context.Background())
	b.Logf("moved to huge pages: %d of %d MiB in %s", hp.Backed>>20, hp.Asked>>20, hp.Took.Round(time.Millisecond))
	b.Run("huge pages", compare)
}

// BenchmarkMicroEcho is the part of BenchmarkValidate's gap that is NATS's
// micro framework, which every endpoint of the service goes through: a micro
// endpoint that only answers, against the bare echo, in the same rounds.
//
//	go test -run '^$' -bench MicroEcho -benchtime 200000x ./natsapi
func BenchmarkMicroEcho(b *testing.B) {
	const concurrency, rounds = 32, 5
	srv := natstest.MustServer(b)
	nc, client := natstest.MustConnect(b, srv), natstest.MustConnect(b, srv)
	reply := []byte(`{"valid":true,"account":"acct1","token_id":"01KB5X3QZ8W6G0Y3T1N2M4P5R6","name":"t1","status":"active","features":["api"]}`)
	if _, err := reqbench.Echo(nc, "bench.echo", natsapi.QueueGroup, reply); err != nil {
		b.Fatal(err)
	}
	svc, err := micro.AddService(nc, micro.Config{Name: "bench", Version: "0.0.0", QueueGroup: natsapi.QueueGroup})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Stop()
	if err := svc.AddEndpoint("echo", micro.HandlerFunc(func(r micro.Request) { r.Respond(reply) }), micro.WithEndpointSubject("bench.micro")); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	bodies := [][]byte{[]byte(`{"token":"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567","account":"acct1","feature":"api","write":true}`)}
	b.ResetTimer()
	echo, m, ratios, err := reqbench.Compare(client, "bench.echo", "bench.micro", bodies, concurrency, max(b.N/rounds, 1), rounds, func([]byte) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(echo.PerSecond(), "echo/s")
	b.ReportMetric(m.PerSecond(), "micro/s")
	b.ReportMetric(reqbench.Median(ratios), "ratio")
}
