package embedded

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"

	"tokenledger/jetstream"
)

// A NATS account layout with least privilege: nodes append and read events,
// validation clients may only ask tokens.validate and hear the reply.
const permissionsConfig = `
authorization {
  users = [
    { user: node, password: nodepw }
    { user: validator, password: validatorpw,
      permissions: { publish: ["tokens.validate"], subscribe: ["_INBOX.>"] } }
    { user: auditor, password: auditorpw,
      permissions: {
        publish: ["$JS.API.INFO", "$JS.API.STREAM.INFO.TOKENS", "$JS.API.STREAM.MSG.GET.TOKENS",
                  "$JS.API.CONSUMER.CREATE.TOKENS.>", "$JS.API.CONSUMER.INFO.TOKENS.>",
                  "$JS.API.CONSUMER.DELETE.TOKENS.>", "$JS.API.CONSUMER.MSG.NEXT.TOKENS.>", "$JS.ACK.TOKENS.>", "$JS.FC.TOKENS.>"]
        subscribe: ["_INBOX.>"] } }
  ]
}
`

func TestValidationClientCannotAppend(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	os.WriteFile(conf, []byte(permissionsConfig), 0o600)
	s, err := Start(Options{DataDir: dir, Listen: "127.0.0.1:0", ConfigFile: conf, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()

	if _, err := nats.Connect(s.ClientURL()); err == nil {
		t.Fatal("connected without credentials")
	}
	node, err := nats.Connect(s.ClientURL(), nats.UserInfo("node", "nodepw"))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	js, _ := natsjs.New(node)
	ctx := context.Background()
	st, err := js.CreateStream(ctx, natsjs.StreamConfig{Name: "TOKENS", Subjects: []string{"tokens.events.>"}})
	if err != nil {
		t.Fatal(err)
	}
	node.Subscribe("tokens.validate", func(m *nats.Msg) { m.Respond([]byte(`{"valid":false,"reason":"unknown"}`)) })
	node.Flush()

	errs := make(chan error, 8)
	validator, err := nats.Connect(s.ClientURL(), nats.UserInfo("validator", "validatorpw"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer validator.Close()
	if reply, err := validator.Request("tokens.validate", []byte("X"), 10*time.Second); err != nil || !strings.Contains(string(reply.Data), "unknown") {
		t.Fatalf("the validator cannot validate: %v", err)
	}
	vjs, _ := natsjs.New(validator)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := vjs.Publish(pctx, "tokens.events.bob.01JD0000000000000000000000", []byte(`{"forged":true}`)); err == nil {
		t.Fatal("the validator appended an event")
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "Permissions Violation") {
			t.Fatalf("error %v, want a permissions violation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no permissions violation reported")
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs != 0 {
		t.Fatalf("stream holds %d messages (%v), want 0", info.State.Msgs, err)
	}

	// An auditor reads the stream and cannot append either.
	if _, err := js.Publish(ctx, "tokens.events.bob.01JD0000000000000000000000", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	auditor, err := nats.Connect(s.ClientURL(), nats.UserInfo("auditor", "auditorpw"))
	if err != nil {
		t.Fatal(err)
	}
	defer auditor.Close()
	ajs, _ := natsjs.New(auditor)
	stream, err := jetstream.Open(ctx, ajs, events.DefaultConfig())
	if err != nil {
		t.Fatalf("the auditor cannot open the stream: %v", err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	read := 0
	if err := stream.Read(rctx, events.ReadOptions{}, func(events.Msg) error { read++; return nil }); err != nil || read != 1 {
		t.Fatalf("the auditor read %d messages: %v", read, err)
	}
	if err := stream.Read(rctx, events.ReadOptions{Account: "bob"}, func(events.Msg) error { return nil }); err != nil {
		t.Fatalf("the auditor's filtered read: %v", err)
	}
	pctx2, cancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer cancel2()
	if _, err := ajs.Publish(pctx2, "tokens.events.bob.01JD0000000000000000000001", []byte(`{}`)); err == nil {
		t.Fatal("the auditor appended an event")
	}
}

func TestRefusesToListenBeyondLoopbackWithoutAuth(t *testing.T) {
	_, err := Start(Options{DataDir: t.TempDir(), Listen: "0.0.0.0:0", NoSync: true})
	if err == nil || !strings.Contains(err.Error(), "--nats-config") {
		t.Fatalf("Start on 0.0.0.0 without users: %v, want a refusal that says what to do", err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "[::1]"} {
		if !isLoopback(strings.Trim(host, "[]")) {
			t.Errorf("%s is loopback", host)
		}
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	os.WriteFile(conf, []byte(permissionsConfig), 0o600)
	s, err := Start(Options{DataDir: dir, Listen: "0.0.0.0:0", ConfigFile: conf, NoSync: true})
	if err != nil {
		t.Fatalf("with users configured: %v", err)
	}
	s.Shutdown()
}
