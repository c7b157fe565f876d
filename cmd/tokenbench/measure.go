package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/commands"
	"tokenledger/embedded"
	"tokenledger/events"
	"tokenledger/internal/headroom"
	"tokenledger/internal/reqbench"
	"tokenledger/jetstream"
	"tokenledger/natsapi"
	"tokenledger/node"
	"tokenledger/projections"
)

// Goals, from the issues.
const (
	validateGoal = 0.9
	createGoal   = 0.8
	rebuildGoal  = 0.7
	requesters   = 32 // concurrent validation requesters
	writers      = 16 // concurrent writers, one account each
	rounds       = 10 // rounds per comparison; the ratio is the median of the rounds' ratios
)

// measure runs every measurement in order on one server, logging progress
// to logw.
func measure(ctx context.Context, sz size, logw io.Writer) (*report, error) {
	r := &report{Machine: machine(), Size: sz, Started: time.Now()}
	if os.Getenv("GOGC") == "" { // the collector as serve sets it, which also keeps a run of millions of tokens within the machine
		defer headroom.Bound(headroom.Default)()
	}
	say := func(format string, args ...any) {
		fmt.Fprintf(logw, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	dir, err := os.MkdirTemp("", "tokenbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	seed, err := access.NewSeed()
	if err != nil {
		return nil, err
	}
	signer, err := access.NewSigner(seed)
	if err != nil {
		return nil, err
	}
	trust, err := access.NewTrust(signer.PublicKey())
	if err != nil {
		return nil, err
	}
	cfg := events.DefaultConfig()

	// 1. The stream, written fast on a server that does not sync.
	say("building %d events of %d live tokens", 3*sz.Live, sz.Live)
	s, err := embedded.Start(embedded.Options{DataDir: dir, Listen: "127.0.0.1:0", NoSync: true, Anonymous: true})
	if err != nil {
		return nil, err
	}
	nc, js, err := connect(s)
	if err != nil {
		return nil, err
	}
	if _, err := jetstream.Ensure(ctx, js, cfg, jetstream.Seen{}); err != nil {
		return nil, err
	}
	b, err := build(ctx, nc, cfg, signer, sz)
	nc.Close()
	s.Shutdown()
	s.WaitForShutdown()
	if err != nil {
		return nil, err
	}
	r.add("stream built (signed, chained, async publishes)", "%d events in %s (%.0f events/s)", b.Events, b.Took.Round(time.Millisecond), float64(b.Events)/b.Took.Seconds())
	r.add("heap per live token (a Table holding the stream)", "%.0f bytes", b.HeapPerToken)

	// 2. Cold start: the server as serve runs it (every write synced),
	// recovering the stream, and a node that rebuilds its table from it.
	say("cold start")
	start := time.Now()
	s, err = embedded.Start(embedded.Options{DataDir: dir, Listen: "127.0.0.1:0", Anonymous: true})
	if err != nil {
		return nil, err
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	serverUp := time.Since(start)
	n1, err := startNode(ctx, s, cfg, signer, trust, false, "")
	if err != nil {
		return nil, err
	}
	defer n1.stop()
	cold := time.Since(start)
	r.add("cold start to ready, no snapshot (chains checked, each account's newest signature verified)", "%s (server with the stream %s, table %s)", cold.Round(time.Millisecond), serverUp.Round(time.Millisecond), (cold - serverUp).Round(time.Millisecond))
	if err := n1.settle(ctx); err != nil {
		return nil, err
	}
	hp := n1.pages()
	r.add("the table moved to huge pages once ready (the node's validations then miss less; see docs/configuration.md)",
		"%d of %d MB in %s", hp.Backed>>20, hp.Asked>>20, hp.Took.Round(time.Millisecond))

	// 2a. What the node holds now: this process is, at this point, what
	// serve is (an embedded server with the stream, one node's table), and
	// little else (the builder's table is garbage, the samples a few KB).
	asIs, collected, err := resident()
	if err != nil {
		return nil, err
	}
	per := func(b uint64) float64 { return float64(b) / float64(sz.Live) }
	r.add("resident bytes per live token, node (table and server) after the cold start",
		"%.0f (RSS %d MB once collected and returned to the kernel, Go heap %d MB of it; before collecting, the heap held %d MB)",
		per(collected.RSS), collected.RSS>>20, collected.Heap>>20, asIs.Heap>>20)

	// 2b. The start that serve makes once a snapshot is stored: the newest
	// trusted snapshot, then the events after it.
	say("snapshot, and a start from it")
	js1, err := natsjs.New(n1.conn)
	if err != nil {
		return nil, err
	}
	snaps, err := jetstream.OpenSnapshots(ctx, js1, cfg)
	if err != nil {
		return nil, err
	}
	start = time.Now()
	kept := keptCopy(dir)
	snapper := &projections.Snapshotter{Table: n1.table, Store: snaps, Copy: &projections.SnapshotCopy{Path: kept}, Stream: n1.stream,
		Signer: signer, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := snapper.Save(ctx); err != nil {
		return nil, err
	}
	saved := time.Since(start)
	// As serve restarts: from the copy of its snapshot it keeps on its
	// disk. Then as a node whose snapshot another node stored: from the
	// object store. Then from the copy twice more, one start after another:
	// the same work each time. A start's CPU is the whole process's, and on
	// a virtual machine the kernel's share of it depends on how long ago the
	// memory it fills was freed (see the README's "Why the same start takes
	// 3 s one minute and 6 s the next").
	startFrom := func(kept string) (string, error) {
		start, used := time.Now(), usedSoFar()
		n3, err := startNode(ctx, s, cfg, signer, trust, true, kept)
		if err != nil {
			return "", err
		}
		took, used := time.Since(start), usedSoFar().since(used)
		defer n3.stop()
		if n3.table.Applied() != n1.table.Applied() {
			return "", fmt.Errorf("the node started from the snapshot is at %d, not %d", n3.table.Applied(), n1.table.Applied())
		}
		return fmt.Sprintf("%s (%s)", took.Round(time.Millisecond), used), nil
	}
	for _, from := range []struct{ kept, how string }{
		{kept, "the node's own copy on disk, as a node restarts"},
		{"", "downloaded from the object store, as a node whose snapshot another node stored"},
	} {
		took, err := startFrom(from.kept)
		if err != nil {
			return nil, err
		}
		r.add(fmt.Sprintf("start to ready from a snapshot, %d live tokens: %s", sz.Live, from.how), "%s; storing the snapshot and the copy took %s",
			took, saved.Round(time.Millisecond))
	}
	var again []string
	for range 2 {
		took, err := startFrom(kept)
		if err != nil {
			return nil, err
		}
		again = append(again, took)
	}
	r.add("the start from the node's copy twice more, one after another", "%s", strings.Join(again, "; "))

	// 3. Rebuild: a second node's table from the whole stream, against a bare
	// ordered-consumer read of it, in rounds that alternate which goes
	// first, so that a drift of the machine's speed favours neither.
	say("rebuild against an ordered-consumer read")
	var bare, rebuild, bareCPU, rebuildCPU time.Duration
	var rebuildRatios []float64
	var n2 *ledgerNode
	// Each side starts from a collected heap and with no node but n1: the
	// last round's node is garbage by then, and a node that starts in
	// earnest has no other node's table to collect (nor, at GOGC 400, a
	// heap goal five times that table larger). The last round reads first,
	// so that its node is left for the revokes.
	side := func(do func() error) (elapsed, cpu time.Duration, faults int64, err error) {
		if n2 != nil {
			n2.stop()
			n2 = nil
		}
		runtime.GC()
		start, used := time.Now(), usedSoFar()
		err = do()
		used = usedSoFar().since(used)
		return time.Since(start), used.CPU(), used.Faults, err
	}
	read := func() error { return orderedRead(ctx, n1.conn, cfg, b.Events) }
	start2 := func() (err error) { n2, err = startNode(ctx, s, cfg, signer, trust, false, ""); return err }
	for round := range sz.Rebuilds {
		var tBare, t, cpuBare, cpuRebuild time.Duration
		var faultsBare, faultsRebuild int64
		if (sz.Rebuilds-round)%2 == 1 {
			if tBare, cpuBare, faultsBare, err = side(read); err == nil {
				t, cpuRebuild, faultsRebuild, err = side(start2)
			}
		} else {
			if t, cpuRebuild, faultsRebuild, err = side(start2); err == nil {
				tBare, cpuBare, faultsBare, err = side(read)
			}
		}
		if err != nil {
			return nil, err
		}
		if bare == 0 || tBare < bare {
			bare, bareCPU = tBare, cpuBare
		}
		if rebuild == 0 || t < rebuild {
			rebuild, rebuildCPU = t, cpuRebuild
		}
		rebuildRatios = append(rebuildRatios, tBare.Seconds()/t.Seconds()) // rates of the same events
		say("  round %d: read %s (CPU %s, %d page faults), rebuild %s (CPU %s, %d page faults)", round+1,
			tBare.Round(time.Millisecond), cpuBare.Round(time.Millisecond), faultsBare,
			t.Round(time.Millisecond), cpuRebuild.Round(time.Millisecond), faultsRebuild)
	}
	defer n2.stop()
	if err := n2.settle(ctx); err != nil {
		return nil, err
	}
	bareRate, rebuildRate := float64(b.Events)/bare.Seconds(), float64(b.Events)/rebuild.Seconds()
	r.add("ordered-consumer read of the stream (the best round)", "%.0f events/s (%s, CPU %s)", bareRate, bare.Round(time.Millisecond), bareCPU.Round(time.Millisecond))
	r.add("projection rebuild (decode, check chains, verify newest signatures, apply; the best round)", "%.0f events/s (%s, CPU %s)", rebuildRate, rebuild.Round(time.Millisecond), rebuildCPU.Round(time.Millisecond))
	r.add("rebuild/read, round by round", "%s", spread(rebuildRatios))

	// 4. A revoke on the first node, refused by the second node's service.
	say("revoke on one node, refusal on the other")
	client, err := nats.Connect(s.ClientURL())
	if err != nil {
		return nil, err
	}
	defer client.Close()
	lat, err := revokeLatency(ctx, n1, n2, client, b.Samples, sz.Revokes)
	if err != nil {
		return nil, err
	}
	r.add("revoke acknowledged to refused by a second node", "p50 %s, p99 %s, max %s (%d revokes)", pct(lat, 50), pct(lat, 99), lat[len(lat)-1].Round(time.Microsecond), len(lat))
	// Two nodes in one process are a benchmark's economy: a real node has
	// its process, and its collector, to itself.
	n2.stop()

	// 5. Validation over NATS against a bare echo on the same connection,
	// of the tokens still live (revokeLatency revoked the last samples).
	say("validate against echo, %d requesters", requesters)
	live := b.Samples[:len(b.Samples)-len(lat)]
	echo, validate, validateRatios, err := compareValidate(ctx, n1, client, live, sz.Validations, benchFeature)
	if err != nil {
		return nil, err
	}
	// The same without a feature in the request: what asking for one costs.
	say("validate against echo, no feature asked")
	_, _, plainRatios, err := compareValidate(ctx, n1, client, live, sz.Validations, "")
	if err != nil {
		return nil, err
	}
	r.add(fmt.Sprintf("bare echo, %d requesters", requesters), "%.0f req/s, p50 %s, p99 %s", echo.PerSecond(), echo.P50.Round(time.Microsecond), echo.P99.Round(time.Microsecond))
	r.add(fmt.Sprintf("tokens.validate, %d requesters", requesters), "%.0f req/s, p50 %s, p99 %s (p99 %.2fx the echo's)", validate.PerSecond(),
		validate.P50.Round(time.Microsecond), validate.P99.Round(time.Microsecond), float64(validate.P99)/float64(echo.P99))
	r.add("validate/echo, round by round", "%s", spread(validateRatios))
	r.add("validate/echo with no feature asked (the same tokens), round by round", "%s", spread(plainRatios))

	// 6. Creates through the command layer against bare publishes with the
	// same headers, on the synced server.
	say("create against bare publishes, %d writers", writers)
	cr, err := compareCreate(ctx, s, signer, trust, sz.Creates)
	if err != nil {
		return nil, err
	}
	r.add(fmt.Sprintf("bare JetStream publish (expected sequence, Msg-Id, synced), %d writers, to a stream nobody reads", writers), "%.0f /s", cr.unread)
	r.add(fmt.Sprintf("bare JetStream publish, the same, to a stream an ordered consumer follows, %d writers", writers), "%.0f /s", cr.followed)
	r.add(fmt.Sprintf("create command (check, decide, sign, append, applied; the node follows its stream), %d writers", writers), "%.0f /s", cr.cmd)
	r.add("create/publish to the unread stream, round by round", "%s", spread(cr.ratiosUnread))
	r.add("create/publish to the followed stream, round by round (the ratio)", "%s", spread(cr.ratios))
	say("creates on the big stream, %d writers", writers)
	big, err := creates(ctx, n1.ledger, "big", sz.Creates)
	if err != nil {
		return nil, err
	}
	r.add(fmt.Sprintf("create command on the stream of %d events, %d writers", b.Events, writers), "%.0f /s", big)

	// 7. A node's memory, each in a process of its own on the stream as it
	// now is (see nodeprocess.go): once this process has let go of it.
	n1.stop()
	s.Shutdown()
	s.WaitForShutdown()
	for _, fromSnapshot := range []bool{true, false} {
		how := "from the snapshot"
		if !fromSnapshot {
			how = "cold, no snapshot"
		}
		say("a node process, %s", how)
		f, err := measureNode(ctx, dir, seed, fromSnapshot)
		if err != nil {
			return nil, err
		}
		r.add(fmt.Sprintf("node process (embedded server and node, as serve), %s: resident bytes per live token once ready and collected", how),
			"%.0f (RSS %d MB, Go heap %d MB; peak while starting %d MB, %.0f per token; ready in %s, the server's recovery of the stream %s of it; %s)",
			per(f.RSS), f.RSS>>20, f.Heap>>20, f.Peak>>20, per(f.Peak), f.Ready.Round(time.Millisecond), f.ServerUp.Round(time.Millisecond), f.Used)
	}

	// 8. A revoke at the hub, refused in a region (issue 19): a hub and a
	// region of their own, after every ratio's measurement.
	say("revoke at the hub, refusal in a region")
	rdir, removeRegion, err := regionDir()
	if err != nil {
		return nil, err
	}
	defer removeRegion()
	rlat, err := regionRevokeLatency(ctx, rdir, signer, trust, sz.Revokes)
	if err != nil {
		return nil, err
	}
	r.add("revoke acknowledged at the hub to refused in a region (leaf node over loopback)", "p50 %s, p99 %s, max %s (%d revokes)",
		pct(rlat, 50), pct(rlat, 99), rlat[len(rlat)-1].Round(time.Microsecond), len(rlat))

	r.Ratios = []ratio{
		{"validate", reqbench.Median(validateRatios), validateGoal},
		{"create", reqbench.Median(cr.ratios), createGoal},
		{"rebuild", reqbench.Median(rebuildRatios), rebuildGoal},
	}
	r.Took = time.Since(r.Started)
	return r, nil
}

// ledgerNode is one ledger node's parts, built by package node as serve
// builds its own, with none of the parts the benchmark starts itself.
type ledgerNode struct {
	conn     *nats.Conn
	stream   *jetstream.Stream
	table    *projections.Table
	ledger   *commands.Ledger
	restored uint64          // the table's sequence from a snapshot, before the node ran
	paged    <-chan struct{} // see settle
	pages    func() projections.HugePages
	stop     func()
}

// settle waits for what a node does once ready, off the validation path,
// before it is measured: moving its table to huge pages (node.HugePaged;
// seconds at ten million tokens, on a core of its own).
func (n *ledgerNode) settle(ctx context.Context) error {
	select {
	case <-n.paged:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// keptCopy is where a node on the data directory dir keeps the copy of its
// snapshot, as serve does.
func keptCopy(dir string) string { return filepath.Join(dir, "snapshot.copy") }

// restoreWatch passes a node's log on to next, and keeps where the node's
// table was restored from (the "from" of projections.Restore's line) and
// when its embedded server, if it started one, was up.
type restoreWatch struct {
	next     slog.Handler
	from     *atomic.Pointer[string]    // shared with the handlers made from it
	serverUp *atomic.Pointer[time.Time] // likewise
}

func newRestoreWatch(next slog.Handler) *restoreWatch {
	return &restoreWatch{next: next, from: new(atomic.Pointer[string]), serverUp: new(atomic.Pointer[time.Time])}
}

func (w *restoreWatch) where() string {
	if p := w.from.Load(); p != nil {
		return *p
	}
	return ""
}

// upAt is when the node's embedded server was up; zero if it started none.
func (w *restoreWatch) upAt() time.Time {
	if p := w.serverUp.Load(); p != nil {
		return *p
	}
	return time.Time{}
}

func (w *restoreWatch) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || w.next.Enabled(ctx, l)
}

func (w *restoreWatch) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case "started from a snapshot":
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "from" {
				from := a.Value.String()
				w.from.Store(&from)
			}
			return true
		})
	case node.EmbeddedUp:
		at := r.Time
		w.serverUp.Store(&at)
	}
	if !w.next.Enabled(ctx, r.Level) {
		return nil
	}
	return w.next.Handle(ctx, r)
}

func (w *restoreWatch) WithAttrs(as []slog.Attr) slog.Handler {
	return &restoreWatch{next: w.next.WithAttrs(as), from: w.from, serverUp: w.serverUp}
}

func (w *restoreWatch) WithGroup(g string) slog.Handler {
	return &restoreWatch{next: w.next.WithGroup(g), from: w.from, serverUp: w.serverUp}
}

// nodeLog is where the benchmark's nodes log: nowhere, unless a node
// process says why it did what it did (see nodeprocess.go).
var nodeLog *slog.Logger

// startNode starts a node on s and returns once its table has caught up:
// from the newest snapshot beside the stream (or from the copy of it at
// kept, "": none) and the events after it, or, unless fromSnapshot, by
// replaying the whole stream.
func startNode(ctx context.Context, s *server.Server, cfg events.Config, signer *events.Signer, trust *events.Trust, fromSnapshot bool, kept string) (*ledgerNode, error) {
	n, _, err := startNodeOn(ctx, s, "", cfg, signer, trust, fromSnapshot, kept)
	return n, err
}

// startNodeOn is startNode on s or, with s nil, on an embedded server of
// its own on the data directory dir, as serve starts one; it also says
// when that server was up.
func startNodeOn(ctx context.Context, s *server.Server, dir string, cfg events.Config, signer *events.Signer, trust *events.Trust, fromSnapshot bool, kept string) (*ledgerNode, time.Time, error) {
	next := slog.DiscardHandler
	if nodeLog != nil {
		next = nodeLog.Handler()
	}
	watch := newRestoreWatch(next)
	ncfg := node.Config{Stream: cfg, Signer: signer, Trust: trust, Warn: projections.DefaultWarn, Log: slog.New(watch), SnapshotCopy: kept}
	if s != nil {
		ncfg.Join = s.ClientURL()
	} else {
		ncfg.DataDir, ncfg.Listen = dir, "127.0.0.1:0"
	}
	if os.Getenv("GOGC") == "" { // as serve does
		ncfg.StartGC = projections.CatchUpGC
	}
	if fromSnapshot {
		// It stores no snapshot in its short life.
		ncfg.Parts, ncfg.SnapEvents, ncfg.SnapEvery = node.Snapshots, math.MaxUint64, time.Hour
	}
	n, err := runNode(ctx, ncfg)
	if err != nil {
		return nil, time.Time{}, err
	}
	if fromSnapshot && n.restored == 0 {
		n.stop()
		return nil, time.Time{}, fmt.Errorf("the snapshot was not used")
	}
	if want := projections.FromStore; fromSnapshot && kept != "" {
		if want = projections.FromCopy; watch.where() != want {
			n.stop()
			return nil, time.Time{}, fmt.Errorf("the snapshot was read from %q, not %s", watch.where(), want)
		}
	}
	return n, watch.upAt(), nil
}

// connect opens a connection to s and its JetStream context; whoever has it
// closes the connection.
func connect(s *server.Server) (*nats.Conn, natsjs.JetStream, error) {
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		return nil, nil, err
	}
	js, err := natsjs.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// orderedRead reads the whole stream with an ordered consumer, as bare as
// JetStream allows (the consumer's callback, which is cheaper than its
// iterator, as a node's follower uses it).
func orderedRead(ctx context.Context, nc *nats.Conn, cfg events.Config, want int) error {
	js, err := natsjs.New(nc)
	if err != nil {
		return err
	}
	st, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return err
	}
	cons, err := st.OrderedConsumer(ctx, natsjs.OrderedConsumerConfig{FilterSubjects: []string{cfg.AllFilter()}})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	n := 0
	sub, err := cons.Consume(func(m natsjs.Msg) {
		if n++; n > want {
			return
		}
		md, err := m.Metadata()
		switch {
		case err != nil || md.NumPending == 0 && n < want:
			done <- fmt.Errorf("ordered read ended after %d of %d messages: %v", n, want, err)
		case n == want:
			done <- nil
		}
	}, natsjs.PullMaxMessages(1024))
	if err != nil {
		return err
	}
	defer func() {
		sub.Stop()
		// The server keeps an ordered consumer until it has been idle a
		// while: without this, each round would leave one behind.
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = st.DeleteConsumer(dctx, info.Name)
		}
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	return err
}

// compareValidate serves n1's table on tokens.validate and a bare echo on the
// same connection, and loads both alike from client: the same request bodies,
// each asking for feature ("": none), which the token has, and the echo
// answers with a reply of the validation's size.
func compareValidate(ctx context.Context, n1 *ledgerNode, client *nats.Conn, samples []sample, n int, feature string) (echo, validate reqbench.Result, ratios []float64, err error) {
	svc, err := natsapi.Start(n1.conn, natsapi.Config{Prefix: "tokens", Ledger: n1.ledger, Table: n1.table, Now: time.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "0.0.0-bench"})
	if err != nil {
		return echo, validate, nil, err
	}
	defer svc.Stop()
	bodies := make([][]byte, len(samples))
	for i, s := range samples {
		bodies[i], _ = json.Marshal(natsapi.ValidateRequest{Token: s.Secret, Account: s.Account, Feature: feature})
	}
	first, err := client.Request("tokens.validate", bodies[0], 5*time.Second)
	if err != nil {
		return echo, validate, nil, err
	}
	sub, err := reqbench.Echo(n1.conn, "bench.echo", natsapi.QueueGroup, first.Data)
	if err != nil {
		return echo, validate, nil, err
	}
	defer sub.Unsubscribe()
	valid := func(data []byte) error {
		var rep natsapi.ValidateReply
		if err := json.Unmarshal(data, &rep); err != nil || !rep.Valid || !slices.Contains(rep.Features, benchFeature) {
			return fmt.Errorf("not valid: %q", data)
		}
		return nil
	}
	return reqbench.Compare(client, "bench.echo", "tokens.validate", bodies, requesters, n, rounds, valid)
}

// revokeLatency revokes sampled tokens one by one through n1 and times, from
// each acknowledgement, until n2's service (the only one running) refuses
// the token. It revokes the last n samples, and returns the times in order.
func revokeLatency(ctx context.Context, n1, n2 *ledgerNode, client *nats.Conn, samples []sample, n int) ([]time.Duration, error) {
	svc, err := natsapi.Start(n2.conn, natsapi.Config{Prefix: "tokens", Ledger: n2.ledger, Table: n2.table, Now: time.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "0.0.0-bench"})
	if err != nil {
		return nil, err
	}
	defer svc.Stop()
	if err := client.Flush(); err != nil {
		return nil, err
	}
	var lat []time.Duration
	for i := len(samples) - 1; i >= 0 && len(lat) < n; i-- {
		s := samples[i]
		err := n1.ledger.Revoke(ctx, commands.Revoke{Account: s.Account, Names: []string{s.Name},
			Actor: events.Actor{Kind: events.ActorOperator, Name: "tokenbench"}})
		if err != nil {
			return nil, err
		}
		acked := time.Now()
		for {
			m, err := client.Request("tokens.validate", []byte(s.Secret), 5*time.Second)
			if err != nil {
				return nil, err
			}
			var rep natsapi.ValidateReply
			if err := json.Unmarshal(m.Data, &rep); err != nil {
				return nil, err
			}
			if rep.Reason == projections.ReasonRevoked {
				break
			}
			if time.Since(acked) > 10*time.Second {
				return nil, fmt.Errorf("%s/%s still %+v 10s after its revoke", s.Account, s.Name, rep)
			}
		}
		lat = append(lat, time.Since(acked))
	}
	slices.Sort(lat)
	return lat, nil
}

// createRates are compareCreate's results: the best round of each side,
// and each round's ratio of creates to each kind of bare publish.
type createRates struct {
	cmd, followed, unread float64
	ratios, ratiosUnread  []float64
}

// compareCreate runs creates through a ledger node against bare publishes of
// an event of the same size with the same headers (the account's expected
// last sequence and a Msg-Id), from writers goroutines with an account each,
// in rotating rounds of n. Each side has a new stream of the same
// configuration on s, so that whatever a stream's size costs the server is
// NATS's cost, not the command layer's (the big stream's creates are timed
// on their own).
//
// A node's stream always has a reader: the node's own follower, whose
// ordered consumer JetStream feeds each event as it is stored, and that is
// much of what a create costs beyond a bare publish (in one run of -live
// 1000, bare publishes to a followed stream ran at 3,000/s, to an unread one
// at 4,800/s). So the bare publishes the ratio counts are made to a stream
// that a bare ordered consumer follows, reading and dropping each message:
// the same work asked of JetStream. Publishes to a stream nobody reads are
// timed too, and their ratio is shown beside.
func compareCreate(ctx context.Context, s *server.Server, signer *events.Signer, trust *events.Trust, n int) (createRates, error) {
	var out createRates
	cmdCfg := events.Config{Stream: "BENCHCMD", Prefix: "benchcmd", Replicas: 1}
	followedCfg := events.Config{Stream: "BENCHBARE", Prefix: "benchbare", Replicas: 1}
	unreadCfg := events.Config{Stream: "BENCHUNREAD", Prefix: "benchunread", Replicas: 1}
	nc, js, err := connect(s)
	if err != nil {
		return out, err
	}
	defer nc.Close()
	for _, cfg := range []events.Config{cmdCfg, followedCfg, unreadCfg} {
		if _, err := jetstream.Ensure(ctx, js, cfg, jetstream.Seen{}); err != nil {
			return out, err
		}
	}
	cmdNode, err := startNode(ctx, s, cmdCfg, signer, trust, false, "")
	if err != nil {
		return out, err
	}
	defer cmdNode.stop()
	if err := cmdNode.settle(ctx); err != nil {
		return out, err
	}
	stopReading, err := drain(ctx, s, followedCfg)
	if err != nil {
		return out, err
	}
	defer stopReading()

	actor := events.Actor{Kind: events.ActorOperator, Name: "tokenbench"}
	payload := make([][]byte, writers)
	for w := range writers {
		e := events.Event{ID: events.NewID(), At: time.Now(), Account: fmt.Sprintf("c%02d", w), TokenID: events.NewTokenID(), Actor: actor,
			Data: events.TokenCreated{Name: "t0", TokenHash: events.HashSecret(events.NewSecret()), FullAccess: true}}
		if _, err := signer.Sign(&e, events.Hash{}); err != nil {
			return out, err
		}
		payload[w], _ = events.Encode(e)
	}
	// bare publishes to cfg's stream, each writer to its account.
	bare := func(cfg events.Config) func(w, i int) error {
		last := make([]uint64, writers) // each account's last sequence
		return func(w, i int) error {
			account := fmt.Sprintf("c%02d", w)
			m := nats.NewMsg(cfg.Subject(account, events.NewID()))
			m.Data = payload[w]
			m.Header.Set(natsjs.MsgIDHeader, events.NewID())
			m.Header.Set(natsjs.ExpectedLastSubjSeqHeader, strconv.FormatUint(last[w], 10))
			m.Header.Set(natsjs.ExpectedLastSubjSeqSubjHeader, cfg.AccountFilter(account))
			ack, err := js.PublishMsg(ctx, m)
			if err != nil {
				return err
			}
			last[w] = ack.Sequence
			return nil
		}
	}
	toFollowed, toUnread := bare(followedCfg), bare(unreadCfg)
	for round := range rounds {
		var c, f, u float64
		for k := range 3 {
			var err error
			switch (round + k) % 3 {
			case 0:
				c, err = creates(ctx, cmdNode.ledger, fmt.Sprintf("r%d", round), n)
				out.cmd = max(out.cmd, c)
			case 1:
				f, err = concurrently(n, toFollowed)
				out.followed = max(out.followed, f)
			case 2:
				u, err = concurrently(n, toUnread)
				out.unread = max(out.unread, u)
			}
			if err != nil {
				return out, err
			}
		}
		out.ratios = append(out.ratios, c/f)
		out.ratiosUnread = append(out.ratiosUnread, c/u)
	}
	return out, nil
}

// drain follows cfg's stream with an ordered consumer on a connection of its
// own, as a node's follower does, and drops each message, until stop.
func drain(ctx context.Context, s *server.Server, cfg events.Config) (stop func(), err error) {
	nc, js, err := connect(s)
	if err != nil {
		return nil, err
	}
	cons, err := js.OrderedConsumer(ctx, cfg.Stream, natsjs.OrderedConsumerConfig{FilterSubjects: []string{cfg.AllFilter()}})
	if err != nil {
		nc.Close()
		return nil, err
	}
	sub, err := cons.Consume(func(natsjs.Msg) {}, natsjs.PullMaxMessages(1024))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return func() { sub.Stop(); nc.Close() }, nil
}

// creates runs n creates through ledger from writers goroutines, an account
// each, names beginning with prefix, and says how many it made per second.
func creates(ctx context.Context, ledger *commands.Ledger, prefix string, n int) (float64, error) {
	actor := events.Actor{Kind: events.ActorOperator, Name: "tokenbench"}
	return concurrently(n, func(w, i int) error {
		_, err := ledger.Create(ctx, commands.Create{Account: fmt.Sprintf("c%02d", w), Name: prefix + "-" + strconv.Itoa(i), Actor: actor})
		return err
	})
}

// concurrently calls do n/writers times from each of writers goroutines and
// says how many calls per second they made.
func concurrently(n int, do func(writer, i int) error) (float64, error) {
	per := n / writers
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				if err := do(w, i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	rate := float64(per*writers) / time.Since(start).Seconds()
	close(errs)
	return rate, <-errs
}

// usage is what this process (server and nodes alike) has used: CPU in
// user space and in the kernel, and page faults, major or minor (a heap
// growing into memory it has not touched before takes one a page, or one a
// huge page).
type usage struct {
	User, Kernel time.Duration
	Faults       int64
}

func usedSoFar() usage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}
	}
	return usage{User: time.Duration(ru.Utime.Nano()), Kernel: time.Duration(ru.Stime.Nano()), Faults: ru.Minflt + ru.Majflt}
}

// since is what was used between before and u.
func (u usage) since(before usage) usage {
	return usage{User: u.User - before.User, Kernel: u.Kernel - before.Kernel, Faults: u.Faults - before.Faults}
}

func (u usage) CPU() time.Duration { return u.User + u.Kernel }

func (u usage) String() string {
	return fmt.Sprintf("CPU %s, the kernel's %s of it; %d page faults", u.CPU().Round(time.Millisecond), u.Kernel.Round(time.Millisecond), u.Faults)
}

// spread lists per-round ratios, and their median.
func spread(ratios []float64) string {
	parts := make([]string, len(ratios))
	for i, x := range ratios {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%s (median %.3f)", strings.Join(parts, " "), reqbench.Median(ratios))
}

func pct(sorted []time.Duration, p int) time.Duration {
	return sorted[min(len(sorted)-1, len(sorted)*p/100)].Round(time.Microsecond)
}
