package node_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/commands"
	"tokenledger/embedded"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/jetstream"
	"tokenledger/natsapi"
	"tokenledger/node"
)

// regions is a hub node and a regional node whose leaf connection to the hub
// goes through a link the test can cut, each running until the test ends.
type regions struct {
	hub, region *node.Node
	link        *natstest.Link
	regionDir   string
	hubDir      string
	signer      *events.Signer
	trust       *events.Trust
	regionCfg   node.Config
	stopRegion  func() // stops the regional node, once
}

var operator = events.Actor{Kind: events.ActorOperator, Name: "test"}

// mustRegions starts a hub node (embedded, domain hub, a leafnode listener)
// and a regional node "eu" that mirrors it through a cuttable link.
func mustRegions(t *testing.T, maxStaleness time.Duration) *regions {
	t.Helper()
	signer, trust := mustKeys(t)
	r := &regions{hubDir: t.TempDir(), regionDir: t.TempDir(), signer: signer, trust: trust}
	base := node.Config{Listen: "127.0.0.1:0", Stream: events.DefaultConfig(), Signer: signer, Trust: trust,
		Parts: node.Service | node.Snapshots | node.LastUses, Version: "0.0.0-test", Warn: 24 * time.Hour, MaxStaleness: maxStaleness,
		SnapEvents: 1000, SnapEvery: time.Minute, UsedEvery: time.Minute, NoticeEvery: time.Minute}
	hub := base
	hub.DataDir, hub.Hub = r.hubDir, &node.Hub{LeafListen: "127.0.0.1:0", Domain: "hub"}
	r.hub = mustRun(t, hub)
	r.link = natstest.MustLink(t, r.hub.LeafURL()[len("nats-leaf://"):])
	region := base
	region.DataDir, region.Parts, region.HTTP = r.regionDir, base.Parts|node.HTTP, "127.0.0.1:0"
	region.Region = &node.Region{Name: "eu", HubDomain: "hub", Hub: []string{"nats-leaf://" + r.link.Addr()},
		HubCreds: access.Path(r.hubDir, access.Region)}
	r.regionCfg = region
	r.region = r.startRegion(t)
	natstest.Eventually(t, "the region linked to the hub", r.region.HubLinked)
	natstest.Eventually(t, "the region's table proven current against the hub", r.region.Follower().Ready)
	return r
}

// startRegion starts the regional node on its data directory.
func (r *regions) startRegion(t *testing.T) *node.Node {
	t.Helper()
	var n *node.Node
	n, r.stopRegion = run(t, r.regionCfg)
	return n
}

// mustRun builds a node and runs it until the test ends.
func mustRun(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	n, _ := run(t, cfg)
	return n
}

// run builds a node and runs it until stop is called, or the test ends.
func run(t *testing.T, cfg node.Config) (*node.Node, func()) {
	t.Helper()
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return n, stop
}

// validInRegion creates bob's token "ci" at the hub and returns it, with a
// validator of the region's own NATS, once the region finds it valid.
func (r *regions) validInRegion(t *testing.T) (commands.Created, *natsapi.Client) {
	t.Helper()
	created, err := r.hub.Ledger().Create(context.Background(), commands.Create{Account: "bob", Name: "ci", Actor: operator})
	if err != nil {
		t.Fatal(err)
	}
	eu := r.client(t, r.regionDir, access.Validator, r.region)
	natstest.Eventually(t, "the hub's token valid in the region", func() bool { v, err := validIn(eu, created.Secret); return err == nil && v })
	return created, eu
}

// validator is a client of the region's own NATS, as the region's panels
// are: the validator role of the regional node's data directory.
func (r *regions) client(t *testing.T, dir, role string, n *node.Node) *natsapi.Client {
	t.Helper()
	id, err := access.ReadIdentity(access.Path(dir, role))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(n.ClientURL(), id.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return natsapi.NewClient(nc, "tokens")
}

func validIn(c *natsapi.Client, secret string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rep, err := c.Validate(ctx, secret, "")
	return rep.Valid, err
}

// TestRegionValidatesThroughAnOutage: a regional node answers validations
// from its mirror; with the link to the hub cut it goes on answering them,
// and refuses commands at once as unavailable, naming the hub; a revoke at
// the hub meanwhile is refused in the region once the link returns.
func TestRegionValidatesThroughAnOutage(t *testing.T) {
	r := mustRegions(t, 5*time.Second)
	ctx := context.Background()
	created, eu := r.validInRegion(t)

	// A command in the region is decided and stored at the hub, and the
	// region reads its own write.
	euOperator := r.client(t, r.regionDir, access.Operator, r.region)
	local, err := euOperator.Create(ctx, natsapi.CreateRequest{Account: "bob", Name: "eu-made"})
	if err != nil {
		t.Fatalf("a command in the region: %v", err)
	}
	if v, err := validIn(eu, local.Token); err != nil || !v {
		t.Errorf("the region's own new token: valid %v, %v; want valid at once", v, err)
	}
	if seq, err := r.hub.Stream().LastSeq(ctx, "bob"); err != nil || seq != 2 {
		t.Errorf("the hub's stream: account bob ends at %d (%v), want 2: the region's command is stored at the hub", seq, err)
	}

	r.link.Cut()
	natstest.Eventually(t, "the region cut off", func() bool { return !r.region.HubLinked() })
	if v, err := validIn(eu, created.Secret); err != nil || !v {
		t.Errorf("validate in the region with the hub unreachable: valid %v, %v; want valid", v, err)
	}
	_, err = euOperator.Create(ctx, natsapi.CreateRequest{Account: "bob", Name: "during"})
	if events.ErrorCode(err) != events.Unavailable {
		t.Errorf("a command in the region with the hub unreachable: %v, want code unavailable", err)
	}
	if _, err := r.region.Ledger().Create(ctx, commands.Create{Account: "alice", Name: "x", Actor: operator}); !errors.Is(err, jetstream.ErrHubUnreachable) {
		t.Errorf("the regional ledger with the hub unreachable: %v, want %v", err, jetstream.ErrHubUnreachable)
	}

	req, _ := http.NewRequest("GET", r.region.HTTPURL()+"/execute/Tokens/create_full_access?name=during-http", nil)
	req.Header.Set("Authorization", "cpanel bob:"+created.Secret)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Error(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"status":0`) || !strings.Contains(string(b), "hub") {
			t.Errorf("a UAPI create in the region with the hub unreachable: %d %s; want 503 in UAPI's envelope, naming the hub", resp.StatusCode, b)
		}
	}
	for path, want := range map[string]string{"/readyz": "hub: unreachable, last heard", "/metrics": "tokenledger_hub_linked 0"} {
		if body := mustGet(t, r.region.HTTPURL()+path); !strings.Contains(body, want) {
			t.Errorf("%s with the hub unreachable:\n%s\nwant %q in it", path, body, want)
		}
	}
	if err := r.hub.Ledger().Revoke(ctx, commands.Revoke{Account: "bob", Names: []string{"ci"}, Actor: operator}); err != nil {
		t.Fatal(err)
	}
	r.link.Restore()
	restored := time.Now()
	natstest.Eventually(t, "the revoke refused in the region", func() bool {
		v, err := validIn(eu, created.Secret)
		return err == nil && !v
	})
	for path, want := range map[string]string{"/readyz": "ready\nhub: linked, last heard", "/metrics": "tokenledger_hub_lag_events 0"} {
		if body := mustGet(t, r.region.HTTPURL()+path); !strings.Contains(body, want) {
			t.Errorf("%s with the link back:\n%s\nwant %q in it", path, body, want)
		}
	}
	t.Logf("the revoke made during the outage was refused in the region %v after the link returned", time.Since(restored).Round(time.Millisecond))
}

// TestRegionCutOffPastMaxStaleness: a region that cannot prove its table
// current against the hub for MaxStaleness stops answering validations, and
// answers again once the link returns.
func TestRegionCutOffPastMaxStaleness(t *testing.T) {
	r := mustRegions(t, time.Second)
	created, eu := r.validInRegion(t)
	r.link.Cut()
	natstest.Eventually(t, "the region stale", func() bool { return !r.region.Follower().Ready() })
	if v, err := validIn(eu, created.Secret); events.ErrorCode(err) != events.Unavailable {
		t.Errorf("validate in a region stale past --max-staleness: valid %v, %v; want code unavailable", v, err)
	}
	r.link.Restore()
	natstest.Eventually(t, "the region answering again", func() bool { v, err := validIn(eu, created.Secret); return err == nil && v })
}

// TestRegionRoleIsLeastPrivilege: the region's identity connects only as a
// leaf node, and a regional server with every right of its own can, through
// it, neither delete nor purge nor change the hub's stream, nor take the
// hub's validations.
func TestRegionRoleIsLeastPrivilege(t *testing.T) {
	r := mustRegions(t, 5*time.Second)
	ctx := context.Background()
	id, err := access.ReadIdentity(access.Path(r.hubDir, access.Region))
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(r.hub.ClientURL(), id.Options()...); err == nil {
		nc.Close()
		t.Error("the region identity connected to the hub as a client")
	}
	evil, err := embedded.Start(embedded.Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Anonymous: true, NoSync: true,
		Domain: "evil", Hub: []string{r.hub.LeafURL()}, HubCreds: access.Path(r.hubDir, access.Region)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { evil.Shutdown(); evil.WaitForShutdown() })
	natstest.Eventually(t, "the other region linked", func() bool { return embedded.HubLinked(evil) })
	nc, err := nats.Connect(evil.ClientURL(), nats.CustomInboxPrefix(access.InboxPrefix(access.Node))) // replies come back only there
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	hubJS, err := natsjs.NewWithDomain(nc, "hub")
	if err != nil {
		t.Fatal(err)
	}
	// The hub's JetStream API answers through the leaf once the link has
	// carried the hub's interest, a moment after the link is up: "no
	// responders" until then, on a loaded machine.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := hubJS.Stream(ctx, "TOKENS")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the region may read the hub's stream info: %v", err)
		}
	}
	for name, subject := range map[string]string{
		"delete": "$JS.hub.API.STREAM.DELETE.TOKENS",
		"purge":  "$JS.hub.API.STREAM.PURGE.TOKENS",
		"update": "$JS.hub.API.STREAM.UPDATE.TOKENS",
		"other":  "$JS.hub.API.STREAM.CREATE.OTHER",
	} {
		if m, err := nc.Request(subject, []byte(`{"name":"TOKENS"}`), 500*time.Millisecond); err == nil {
			t.Errorf("%s through the leaf was answered: %s", name, m.Data)
		}
	}
	hubNC := natstest.MustConnect(t, evil) // a service in the region that would take the hub's validations
	sub, err := hubNC.SubscribeSync("tokens.validate")
	if err != nil {
		t.Fatal(err)
	}
	hubNC.Flush()
	hubClient := r.client(t, r.hubDir, access.Validator, r.hub)
	if _, err := validIn(hubClient, "A23456789ABCDEFGHJKMNPQRSTVWXYZ0"); err != nil {
		t.Fatalf("validate at the hub: %v", err)
	}
	if m, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Errorf("a region heard the hub's validation request: %s", m.Data)
	}
	info := natstest.MustStreamInfo(t, r.hub.Conn(), "TOKENS")
	if info.Config.Name != "TOKENS" {
		t.Errorf("the hub's stream: %+v", info.Config)
	}
}

func mustGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRegionConvergesAfterALongOutage: after an outage long enough for the
// hub to drop the mirror's consumer (10 s without interest), the mirror
// takes up to half a minute to ask again (nats-server's wait for the
// consumer request it sent into the outage); the regional table does not
// wait for it: it refuses a revoke made during the outage once the link is
// back, and is ready again, from what it read of the hub.
func TestRegionConvergesAfterALongOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the hub to drop the mirror's consumer, about 10 s")
	}
	r := mustRegions(t, time.Minute)
	ctx := context.Background()
	created, eu := r.validInRegion(t)
	r.link.Cut()
	natstest.Eventually(t, "the region cut off", func() bool { return !r.region.HubLinked() })
	if err := r.hub.Ledger().Revoke(ctx, commands.Revoke{Account: "bob", Names: []string{"ci"}, Actor: operator}); err != nil {
		t.Fatal(err)
	}
	// The hub drops a mirror's consumer 10 s after it last had interest.
	// (The mirror's own Active is no clock of the outage: nats-server
	// resets it each time it asks the hub again, about every 10 s.)
	natstest.EventuallyWithin(t, 40*time.Second, "the region cut off past the hub's inactive threshold", func() bool {
		return r.region.Follower().Staleness() > 12*time.Second
	})
	r.link.Restore()
	restored := time.Now()
	natstest.Eventually(t, "the revoke refused in the region", func() bool { v, err := validIn(eu, created.Secret); return err == nil && !v })
	m, _ := r.region.Stream().Mirror(ctx)
	t.Logf("after a long outage, the revoke was refused in the region %v after the link returned (the mirror then at sequence %d of 2)", time.Since(restored).Round(time.Millisecond), m.Last)
	// Proven current again from what the hub holds, before the mirror
	// has it all.
	natstest.Eventually(t, "the region ready again", r.region.Follower().Ready)
}

// TestRegionJoinsALeafServer: a regional node may join a leaf server the
// operator runs (--region with --nats) rather than embed one: it cannot see
// that server's link, and learns that the hub is away from NATS itself, at
// once, as a command's refusal that names the hub.
func TestRegionJoinsALeafServer(t *testing.T) {
	r := mustRegions(t, 5*time.Second)
	ctx := context.Background()
	link := natstest.MustLink(t, r.hub.LeafURL()[len("nats-leaf://"):])
	leaf, err := embedded.Start(embedded.Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Anonymous: true, NoSync: true,
		Domain: "us", Hub: []string{"nats-leaf://" + link.Addr()}, HubCreds: access.Path(r.hubDir, access.Region)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leaf.Shutdown(); leaf.WaitForShutdown() })
	natstest.Eventually(t, "the leaf server linked", func() bool { return embedded.HubLinked(leaf) })
	signer, trust := r.signer, r.trust
	us := mustRun(t, node.Config{Join: leaf.ClientURL(), Auth: []nats.Option{nats.CustomInboxPrefix(access.InboxPrefix(access.Node))},
		Region: &node.Region{Name: "us", HubDomain: "hub"}, Stream: events.DefaultConfig(), Signer: signer, Trust: trust,
		Parts: node.Service, Version: "0.0.0-test", Warn: 24 * time.Hour, MaxStaleness: 5 * time.Second})
	natstest.Eventually(t, "the joined region proven current against the hub", us.Follower().Ready)
	created, err := us.Ledger().Create(ctx, commands.Create{Account: "dave", Name: "ci", Actor: operator})
	if err != nil {
		t.Fatalf("a command in the joined region: %v", err)
	}
	if res := us.Table().Validate(created.Secret, "", time.Now()); !res.Valid {
		t.Error("the joined region does not read its own write")
	}
	link.Cut()
	natstest.Eventually(t, "the leaf server cut off", func() bool { return !embedded.HubLinked(leaf) })
	if _, err := us.Ledger().Create(ctx, commands.Create{Account: "dave", Name: "during", Actor: operator}); !errors.Is(err, jetstream.ErrHubUnreachable) {
		t.Errorf("a command in the joined region with the hub away: %v, want %v", err, jetstream.ErrHubUnreachable)
	}
}

// TestRegionStartsAgainFromItsMirror: a regional node started again on its
// data directory opens the mirror it made (and the snapshot it took of its
// table), and answers as before.
func TestRegionStartsAgainFromItsMirror(t *testing.T) {
	r := mustRegions(t, 5*time.Second)
	ctx := context.Background()
	created, err := r.hub.Ledger().Create(ctx, commands.Create{Account: "bob", Name: "ci", Actor: operator})
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, "the token in the region's table", func() bool { return r.region.Table().Validate(created.Secret, "", time.Now()).Valid })
	r.stopRegion()
	again := r.startRegion(t)
	natstest.Eventually(t, "the region started again, linked and proven current", again.Follower().Ready)
	eu := r.client(t, r.regionDir, access.Validator, again)
	if v, err := validIn(eu, created.Secret); err != nil || !v {
		t.Errorf("validate in the region started again: valid %v, %v; want valid", v, err)
	}
}
