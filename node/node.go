package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"tokenledger/access"
	"tokenledger/accounts"
	"tokenledger/commands"
	"tokenledger/embedded"
	"tokenledger/events"
	"tokenledger/httpapi"
	"tokenledger/internal/headroom"
	"tokenledger/internal/retry"
	"tokenledger/jetstream"
	"tokenledger/natsapi"
	"tokenledger/projections"
)

// Config is everything a node is told. Serve fills it from its flags; the
// tests and the benchmark fill what they need by hand. What serve reads from
// files (the keys, the account passwords, the record of the stream seen)
// comes already loaded, so that a bad file is the command line's to report.
type Config struct {
	// Join is the URL or URLs, comma separated, of a NATS (cluster) for
	// the node to join. Empty: the node starts an embedded server in
	// DataDir, listening on Listen, and connects to it in-process.
	Join string
	// Auth are the credentials and TLS settings of a joined NATS, and of the
	// embedded one when NATSConfig has users of its own. They come after
	// the node's own connection settings, and win over them.
	Auth []nats.Option

	DataDir    string // embedded: JetStream's store, and the role identities the node makes
	Listen     string // embedded: the client address, host:port (port 0: any free one)
	NATSConfig string // embedded: a nats-server configuration file; its users then apply
	Admin      bool   // embedded: let the admin identity in, for this run

	// Region makes this a regional node (see region.go); nil: not one.
	Region *Region
	// Hub makes the embedded server a hub that regional nodes' servers
	// connect to as leaf nodes; nil: none connect.
	Hub *Hub

	// Stream is the stream of the events and their subject prefix. With
	// Replicas events.AutoReplicas, a joined node that creates the stream
	// chooses; an embedded one keeps one copy.
	Stream events.Config
	// Seen is the node's record of the last sequence of the stream it has
	// seen, kept in its data directory: with it the node refuses a stream
	// that lost history, at start and while it runs (projections.Guard).
	// Nil: no record and no guard, for nodes that keep no data directory.
	Seen *projections.SeenFile

	Signer *events.Signer // signs what the node appends, and its snapshots
	Trust  *events.Trust  // the keys whose events and snapshots the node takes

	// Parts are what the node runs beside following the stream and taking
	// commands; see Part.
	Parts Part

	HTTP          string              // HTTP: the address, host:port, of the API, panel and health checks
	TLSCert       string              // HTTP: serve HTTPS with this certificate chain (PEM), and TLSKey
	TLSKey        string              // HTTP: the private key (PEM) of TLSCert
	SecureCookies bool                // HTTP: the panel's cookie is Secure on plain HTTP (TLS ends at a proxy)
	Accounts      *accounts.Passwords // HTTP: account passwords; nil: no password logins
	Location      *time.Location      // HTTP: the time zone of dates in the panel; nil: the machine's
	Features      []string            // HTTP: the features the panel offers; nil: httpapi.DefaultFeatures

	Version string // Service: what `nats micro info` shows
	// Serving is called once, when the service first answers: serve says
	// then that the node is serving. Nil: nothing.
	Serving func()

	Warn        time.Duration // how long before its expiry a token is listed as expiring
	MaxLifetime time.Duration // refuse tokens that expire later than this from now, or never; 0: no bound
	// MaxStaleness bounds how old the table's latest proof of holding every
	// stored event may be while the node answers from it (see
	// projections.Follower); 0: caught up once is enough.
	MaxStaleness time.Duration
	StartGC      int // GOGC while the table is restored and catches up (projections.CatchUpGC); 0: leave it alone

	// SnapshotCopy is a file of the node's own where it keeps a copy of
	// each snapshot it stores, which its next start reads instead of
	// downloading the snapshot (projections.SnapshotCopy); "": none.
	SnapshotCopy string

	SnapEvents  uint64        // Snapshots: events between snapshots
	SnapEvery   time.Duration // Snapshots: most time between snapshots while events arrive
	UsedEvery   time.Duration // LastUses: at most one record of a token's use per this
	NoticeEvery time.Duration // Notices: how often to look for tokens whose expiry deserves a notice

	Now func() time.Time // the clock of commands, answers and expiries; nil: time.Now
	Log *slog.Logger     // nil: discarded
}

// Part is something a node runs beside following its stream and taking
// commands. Serve runs them All; a test or a benchmark builds its node with
// the parts it needs, and runs the others itself with settings of its own.
type Part uint

// The parts of a node.
const (
	// Service is the `tokens` NATS micro service, answering while the
	// table may be answered from.
	Service Part = 1 << iota
	// HTTP is the HTTP API, the panel and the health checks.
	HTTP
	// Snapshots: the node starts from the newest trusted snapshot, and
	// stores new ones as events arrive.
	Snapshots
	// LastUses: the node records the last use of each valid token, and
	// takes other nodes' records into its table.
	LastUses
	// Notices: the node publishes expiry notices, once per token across
	// all nodes.
	Notices

	// All is every part: a node as serve runs it.
	All = Service | HTTP | Snapshots | LastUses | Notices
)

// Node is one ledger node, assembled by New and run by Run.
type Node struct {
	cfg  Config
	log  *slog.Logger
	join bool

	nc        *nats.Conn
	clientURL string
	// serviceConn connects the `tokens` service (see serviceLoop).
	serviceConn func() (*nats.Conn, <-chan struct{}, error)
	// trouble says what the embedded server knows keeps JetStream from
	// storing; nil when joined.
	trouble func() error

	stream *jetstream.Stream
	hub    *jetstream.Hub // regional: the hub's stream, where commands go
	// linked says whether a regional node's embedded server has its leaf
	// connection to the hub up; nil otherwise.
	linked    func() bool
	leafURL   string // hub: where regional servers connect, nats-leaf://host:port
	snapshots *jetstream.Snapshots
	// kept is the node's own copy of its snapshots (nil: none). restored
	// puts the collector back as it was once the table is built; it is set
	// before NATS is up when the copy is being decoded from then on.
	kept     *projections.SnapshotCopy
	restored func()
	table    *projections.Table
	follower *projections.Follower
	ledger   *commands.Ledger
	used     *jetstream.Used
	uses     *commands.UseRecorder
	claims   *jetstream.Claims
	guard    *accounts.Guard
	ln       net.Listener
	http     *httpapi.BoundedServer

	// paged is closed once the table's memory has first been moved to huge
	// pages (see hugePages), or Run stopped before; firstPages is what that
	// move did.
	paged      chan struct{}
	firstPages projections.HugePages

	// release undoes what New took (the embedded server, the connection),
	// in the order taken; Run calls it backwards once every actor stopped.
	release []func()
}

// New connects the node to NATS, starting the embedded server unless it
// joins one, makes sure of the stream, and builds its parts: the table (from
// the newest snapshot, with Snapshots), the follower and the ledger, and
// whatever else cfg.Parts asks for. Nothing runs yet: Run runs the node,
// and releases what New took. Should New fail, it has released it.
//
// Its errors name serve's flags, as package embedded's do, since that is
// where whoever meets them sets them; a setting that cannot work has code
// events.Invalid.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	n := &Node{cfg: cfg, log: cfg.Log, join: cfg.Join != "", paged: make(chan struct{})}
	if cfg.Parts&Snapshots != 0 {
		n.prefetch()
	}
	connect := n.startNATS
	if n.join {
		connect = n.joinNATS
	}
	if err := connect(); err != nil {
		n.close()
		return nil, err
	}
	if err := n.build(ctx); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

// joinNATS connects to the NATS of cfg.Join.
func (n *Node) joinNATS() error {
	nc, err := dial(n.cfg.Join, n.cfg.Auth, joinOptions()...)
	if err != nil {
		return fmt.Errorf("--nats (or TOKENLEDGER_SERVE_NATS) is set, so this node joins that NATS rather than start its own: %w", err)
	}
	n.nc, n.clientURL = nc, n.cfg.Join
	n.release = append(n.release, nc.Close)
	n.serviceConn = func() (*nats.Conn, <-chan struct{}, error) { return serviceConn(nc, n.cfg.Auth) }
	return nil
}

// EmbeddedUp is the node's log line once its embedded server is up, its
// JetStream recovered; "took" says how long that took (seconds at millions
// of events, which a start from the node's snapshot copy overlaps).
const EmbeddedUp = "embedded NATS up"

// startNATS starts the embedded server and connects to it in-process. Every
// connection authenticates: the node makes an nkey user for each role in its
// private data directory on first start. With NATSConfig, the
// configuration's users apply instead, and the node is one of them.
func (n *Node) startNATS() error {
	cfg := n.cfg
	ids, err := n.ids()
	if err != nil {
		return err
	}
	var users []*server.NkeyUser
	if cfg.NATSConfig == "" {
		users = access.Users(ids, cfg.Stream)
	}
	eo, err := n.regionOptions(embedded.Options{DataDir: cfg.DataDir, Listen: cfg.Listen, ConfigFile: cfg.NATSConfig, Users: users})
	if err != nil {
		return err
	}
	if cfg.Admin {
		n.log.Warn("ADMIN: the admin identity may change or delete the stream for as long as this node runs; restart without --admin when the change is done",
			"creds", access.Path(cfg.DataDir, access.Admin))
	}
	began := time.Now()
	srv, err := embedded.Start(eo)
	if err != nil {
		return events.Errorf(events.Invalid, "%v", err)
	}
	n.log.Info(EmbeddedUp, "took", time.Since(began).Round(time.Millisecond))
	n.release = append(n.release, func() { srv.Shutdown(); srv.WaitForShutdown() })
	n.clientURL = srv.ClientURL()
	n.trouble = func() error { return embedded.JetStreamTrouble(srv) }
	if cfg.Region != nil {
		n.linked = func() bool { return embedded.HubLinked(srv) }
	}
	// The node's own connections skip the socket.
	connect := func(role string, extra ...nats.Option) (*nats.Conn, error) {
		opts := append([]nats.Option{nats.InProcessServer(srv), nats.Name("tokenledger " + role)}, extra...)
		if cfg.NATSConfig == "" {
			opts = append(opts, ids[role].Options()...)
		} else {
			opts = append(opts, cfg.Auth...)
		}
		return nats.Connect("", opts...)
	}
	if n.nc, err = connect(access.Node); err != nil {
		return fmt.Errorf("connecting to the embedded NATS (with --nats-user/--nats-password or --nats-creds when --nats-config has users): %w", err)
	}
	n.release = append(n.release, n.nc.Close)
	n.serviceConn = func() (*nats.Conn, <-chan struct{}, error) {
		closed := make(chan struct{})
		snc, err := connect(access.Service, nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
		return snc, closed, err
	}
	return nil
}

// ids are the node's identities, made on first start: one per role, the
// admin's with Admin, the regions' on a hub.
func (n *Node) ids() (map[string]access.Identity, error) {
	cfg := n.cfg
	ensure := access.Ensure
	if cfg.Admin {
		ensure = access.EnsureAdmin
	}
	if cfg.Hub != nil {
		ensure = func(dir string) (map[string]access.Identity, error) { return access.EnsureHub(dir, cfg.Admin) }
	}
	ids, err := ensure(cfg.DataDir)
	if err != nil {
		return nil, events.Errorf(events.Invalid, "--data-dir %s: %v", cfg.DataDir, err)
	}
	return ids, nil
}

// build makes sure of the stream and builds the node's parts on it.
func (n *Node) build(ctx context.Context) error {
	js, err := natsjs.New(n.nc)
	if err != nil {
		return err
	}
	buckets, err := n.ensureStream(ctx, js)
	if err != nil {
		return err
	}
	if err := n.openBuckets(ctx, js, buckets); err != nil {
		return err
	}
	n.buildLedger(ctx)
	if n.cfg.Parts&HTTP != 0 {
		return n.listen()
	}
	return nil
}

// ensureStream opens the stream, creating it if need be and no history of it
// was seen, and returns the configuration of the buckets beside it.
func (n *Node) ensureStream(ctx context.Context, js natsjs.JetStream) (events.Config, error) {
	cfg := n.cfg.Stream
	if !n.join && cfg.Replicas == events.AutoReplicas {
		cfg.Replicas = 1 // the embedded server is a single server
	}
	var seen jetstream.Seen
	if n.cfg.Seen != nil {
		seen = jetstream.Seen{Seq: n.cfg.Seen.Seq(), File: n.cfg.Seen.Path()}
	}
	var err error
	if n.cfg.Region != nil {
		return n.ensureMirror(ctx, js, cfg, seen)
	}
	err = n.retryUnanswered(ctx, joinStream, func(ctx context.Context) (err error) {
		n.stream, err = jetstream.Ensure(ctx, js, cfg, seen)
		return err
	})
	if err != nil {
		return cfg, err
	}
	n.stream.AskServer(n.trouble)
	if n.join {
		checkReplicas(n.log, n.cfg.Stream.Replicas, n.stream)
	}
	cfg.Replicas = n.stream.Replicas() // the buckets beside the stream keep as many copies
	return cfg, nil
}

// openBuckets opens the buckets beside the stream that the node's parts
// keep: snapshots, last uses (out of the accounts' sequences), and the
// claims that send each expiry notice once.
func (n *Node) openBuckets(ctx context.Context, js natsjs.JetStream, cfg events.Config) error {
	for _, b := range []struct {
		part Part
		open func(context.Context) error
	}{
		{Snapshots, func(ctx context.Context) (err error) {
			n.snapshots, err = jetstream.OpenSnapshots(ctx, js, cfg)
			return err
		}},
		{LastUses, func(ctx context.Context) (err error) {
			n.used, err = jetstream.OpenUsed(ctx, js, cfg)
			return err
		}},
		{Notices, func(ctx context.Context) (err error) {
			n.claims, err = jetstream.OpenClaims(ctx, js, cfg)
			return err
		}},
	} {
		if n.cfg.Parts&b.part == 0 || (b.part == Notices && n.cfg.Region != nil) {
			continue // a region leaves expiry notices to the hub
		}
		if err := n.retryUnanswered(ctx, joinOpen, b.open); err != nil {
			return err
		}
	}
	return nil
}

// buildLedger builds the table (from the newest trusted snapshot, when
// snapshots are kept), the follower that feeds it, the ledger that takes
// commands, and the recorder of last uses.
func (n *Node) buildLedger(ctx context.Context) {
	cfg := n.cfg
	if n.snapshots != nil {
		if n.restored == nil {
			n.restored = n.startGC()
		}
		n.table = projections.Restore(ctx, n.snapshots, n.kept, n.stream, cfg.Trust, cfg.Warn, n.log)
		n.restored()
	} else {
		n.table = projections.NewTable(cfg.Warn)
	}
	n.follower = projections.NewFollower(n.table, n.stream, cfg.Trust, n.log)
	n.follower.StartGC = cfg.StartGC
	n.follower.MaxStaleness = cfg.MaxStaleness
	var log commands.Log = n.stream
	if n.hub != nil {
		log, n.follower.Origin = n.hub, n.hub
	}
	n.ledger = commands.New(commands.Config{Log: log, Projection: n.table, Now: cfg.Now, Signer: cfg.Signer, Trust: cfg.Trust, MaxLifetime: cfg.MaxLifetime})
	if n.used != nil {
		n.uses = commands.NewUses(commands.UseConfig{Store: n.used, Node: cfg.Signer.PublicKey(), Now: cfg.Now,
			LastUsed: n.table.LastUsed, Every: cfg.UsedEvery, Log: n.log})
	}
	n.guard = accounts.NewGuard() // failed credentials on both transports
}

// prefetch starts decoding the node's copy of its snapshot, if it has one,
// before it starts or joins NATS: at ten million tokens the embedded server
// recovers the stream for seconds, and the decoding then runs meanwhile
// (see projections.SnapshotCopy.Prefetch). Restore takes the table, or
// drops it for the store's; should New fail first, it is stopped.
func (n *Node) prefetch() {
	if n.cfg.SnapshotCopy == "" {
		return
	}
	n.kept = &projections.SnapshotCopy{Path: n.cfg.SnapshotCopy}
	if err := n.kept.RemoveLeftovers(); err != nil {
		n.log.Warn("could not remove what an interrupted write of the snapshot's copy left", "err", err)
	}
	if n.kept.Prefetch(n.cfg.Trust, n.cfg.Warn) {
		n.restored = sync.OnceFunc(n.startGC())
		n.release = append(n.release, n.restored, n.kept.Stop)
	}
}

// startGC sets the collector as a start wants it while a snapshot is
// decoded, when StartGC says how: GOGC at StartGC and the process's memory
// bound lifted (see headroom.Lift). A decode builds the table and makes
// little garbage besides the downloaded body, so the heap grows to about
// the table and the body. done puts both back, and has the body's garbage
// collected and handed back to the kernel in the background: a node that
// starts idle would otherwise hold it until something else brought a
// collection (at ten million tokens, 0.9 GB of its 4.5 GB resident).
func (n *Node) startGC() (done func()) {
	if n.cfg.StartGC <= 0 {
		return func() {}
	}
	gc := debug.SetGCPercent(n.cfg.StartGC)
	restore := headroom.Lift()
	return func() {
		restore()
		debug.SetGCPercent(gc)
		go debug.FreeOSMemory()
	}
}

// listen takes the HTTP address and builds the HTTP server on it.
func (n *Node) listen() error {
	cfg := n.cfg
	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return events.Errorf(events.Invalid, "--http %s: %v", cfg.HTTP, err)
	}
	n.ln = ln
	n.release = append(n.release, func() { ln.Close() })
	var uses httpapi.UseRecorder // nil unless recorded, not a nil *commands.UseRecorder
	if n.uses != nil {
		uses = n.uses
	}
	// The node's registry, served on /metrics: the Go runtime's and the
	// process's series (heap, GC, goroutines, memory, open files), to which
	// the handler adds its own. One per node, none global.
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.http = httpapi.Server(httpapi.New(httpapi.Config{
		Guard: n.guard, Metrics: metrics,
		Ready: n.follower.Ready, Halted: n.follower.Halted, Staleness: n.follower.Staleness, MaxStaleness: cfg.MaxStaleness, Hub: n.hubLink(),
		Ledger: n.ledger, Table: n.table, Accounts: cfg.Accounts, Uses: uses,
		Now: cfg.Now, Location: cfg.Location, SecureCookies: cfg.SecureCookies, Features: cfg.Features, Log: n.log,
	}))
	return nil
}

// Run runs the node's actors, each one block added to a group, until ctx
// ends or one of them does (it is called once); it then stops them in the reverse order, waits
// for every one, and releases what New took. Its error is that of the actor
// that ended first; an end of ctx is none.
func (n *Node) Run(ctx context.Context) error {
	defer n.close()
	cfg := n.cfg
	// Each actor stops when the group stops it, in turn: not all at once
	// when ctx ends.
	base := context.WithoutCancel(ctx)
	var g group
	{ // the caller: a signal, the end of a test
		ctx, cancel := context.WithCancel(ctx)
		g.add(func() error { <-ctx.Done(); n.log.Info("stopping"); return nil }, cancel)
	}
	if n.snapshots != nil { // snapshots of the projections, for a quick next start
		ctx, cancel := context.WithCancel(base)
		snap := &projections.Snapshotter{Table: n.table, Store: n.snapshots, Copy: n.kept, Stream: n.stream, Signer: cfg.Signer,
			Events: cfg.SnapEvents, Interval: cfg.SnapEvery, Log: n.log}
		g.add(func() error { return snap.Run(ctx) }, cancel)
	}
	if n.uses != nil {
		{ // last-use records, written off the validation path
			ctx, cancel := context.WithCancel(base)
			g.add(func() error { return n.uses.Run(ctx) }, cancel)
		}
		{ // last uses recorded by any node, into this node's table once it has caught up
			ctx, cancel := context.WithCancel(base)
			watcher := &projections.UseWatcher{Table: n.table, Source: n.used, Log: n.log}
			g.add(func() error {
				if n.follower.WaitReady(ctx) != nil {
					return nil
				}
				return watcher.Run(ctx)
			}, cancel)
		}
	}
	if n.claims != nil { // expiry notices, once per token across all nodes
		ctx, cancel := context.WithCancel(base)
		notifier := &projections.Notifier{Table: n.table, Claims: n.claims, Publish: n.nc.Publish, Prefix: cfg.Stream.Prefix,
			Node: cfg.Signer.PublicKey(), Every: cfg.NoticeEvery, Now: cfg.Now, Log: n.log}
		g.add(func() error {
			if n.follower.WaitReady(ctx) != nil {
				return nil
			}
			return notifier.Run(ctx)
		}, cancel)
	}
	{ // projections
		ctx, cancel := context.WithCancel(base)
		g.add(func() error { return n.follower.Run(ctx) }, cancel)
	}
	{ // the table's memory on huge pages, once it has caught up
		ctx, cancel := context.WithCancel(base)
		g.add(func() error { n.hugePages(ctx); return nil }, cancel)
	}
	if cfg.Seen != nil { // the stream's guard: no answers while the stream is missing, changed or short of what the node saw
		ctx, cancel := context.WithCancel(base)
		guard := &projections.Guard{Stream: n.stream, Follower: n.follower, Seen: cfg.Seen, Log: n.log}
		g.add(func() error { return guard.Run(ctx) }, cancel)
	}
	if n.join { // after a lost NATS connection, catch up before answering again
		ctx, cancel := context.WithCancel(base)
		reconnected := watchConnection(n.nc, n.follower, n.log)
		g.add(func() error { return catchUp(ctx, reconnected, n.follower) }, cancel)
	}
	if cfg.Parts&Service != 0 { // the `tokens` service, while the projections are caught up
		ctx, cancel := context.WithCancel(base)
		loop := &serviceLoop{ready: n.follower, connect: n.serviceConn, start: n.startService, serving: cfg.Serving,
			retry: serviceRetry, log: n.log}
		g.add(func() error { return loop.run(ctx) }, cancel)
	}
	if n.http != nil { // HTTP
		g.add(func() error {
			serve := func() error { return n.http.Serve(n.ln) }
			if cfg.TLSCert != "" {
				serve = func() error { return n.http.ServeTLS(n.ln, cfg.TLSCert, cfg.TLSKey) }
			}
			if err := serve(); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}, func() {
			ctx, cancel := context.WithTimeout(base, 10*time.Second)
			defer cancel()
			n.http.Shutdown(ctx)
		})
	}
	n.log.Info("node starting", "signing_key", cfg.Signer.PublicKey(), "trusted_keys", len(cfg.Trust.Keys()), "nats", n.clientURL,
		"http", n.httpAddr(), "stream", n.stream.Config().Stream, "embedded", !n.join)
	if cfg.Region != nil {
		n.log.Info("regional node: validations from the region's mirror, commands to the hub", "region", cfg.Region.Name,
			"hub_domain", cfg.Region.HubDomain, "hub", cfg.Region.Hub, "linked", n.HubLinked())
	}
	if n.leafURL != "" {
		n.log.Info("hub: taking regions' leaf connections", "leaf", n.leafURL, "domain", cfg.Hub.Domain)
	}
	return g.run()
}

// startService starts the `tokens` service on nc.
func (n *Node) startService(nc *nats.Conn) (stopper, error) {
	var uses natsapi.UseRecorder // nil unless recorded, not a nil *commands.UseRecorder
	if n.uses != nil {
		uses = n.uses
	}
	return natsapi.Start(nc, natsapi.Config{Prefix: n.cfg.Stream.Prefix, Ledger: n.ledger, Table: n.table, Now: n.cfg.Now, Log: n.log,
		Version: n.cfg.Version, Uses: uses, Failed: n.guard.ValidationFailed, Ready: n.follower.Ready})
}

// hugePagesEvery is how often a node moves to huge pages what its table
// grew since it last did, and hugePagesRetry how often it asks again
// regardless, for blocks the kernel could not move before (no free huge
// page then). Asking again for what is there already is cheap, a
// millisecond at ten million tokens, but a block the kernel cannot move may
// cost it a compaction of memory each time: hence an hour.
const (
	hugePagesEvery = time.Minute
	hugePagesRetry = time.Hour
)

// hugePages moves the table's index and tokens to huge pages once the table
// has caught up (see projections.Table.UseHugePages: a validation of a
// large table then misses less), then within hugePagesEvery of each time
// the table's memory grows (a doubled index would otherwise be read on small
// pages until the next move), and every hugePagesRetry, until ctx ends. It
// is not done while the table is built, off the start's path: what a
// snapshot's decoding fills is asked for at its first touch already (see
// the projections package's slab.reserve), and a replay's tokens are copied
// here once it is done.
func (n *Node) hugePages(ctx context.Context) {
	first := sync.OnceFunc(func() { close(n.paged) })
	defer first()
	if n.follower.WaitReady(ctx) != nil {
		return
	}
	footprint := n.table.Footprint()
	hp := n.table.UseHugePages(ctx)
	n.firstPages = hp
	first()
	n.log.Info("table on huge pages", "asked_mb", hp.Asked>>20, "backed_mb", hp.Backed>>20, "took", hp.Took.Round(time.Millisecond))
	tick := time.NewTicker(hugePagesEvery)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-tick.C:
			grown := n.table.Footprint()
			if grown == footprint && time.Since(last) < hugePagesRetry {
				continue
			}
			footprint, last = grown, time.Now()
			hp := n.table.UseHugePages(ctx)
			n.log.Debug("table on huge pages", "asked_mb", hp.Asked>>20, "backed_mb", hp.Backed>>20, "took", hp.Took.Round(time.Millisecond))
		case <-ctx.Done():
			return
		}
	}
}

// HugePaged is closed once the node has first moved its table to huge pages
// (see hugePages), or has stopped before: for a measurement that should
// not share the machine with the move.
func (n *Node) HugePaged() <-chan struct{} { return n.paged }

// HugePages is what the node's first move of its table to huge pages did,
// once HugePaged is closed; zero before, or if the node stopped first.
func (n *Node) HugePages() projections.HugePages {
	select {
	case <-n.paged:
		return n.firstPages
	default:
		return projections.HugePages{}
	}
}

// close releases what New took, the last taken first.
func (n *Node) close() {
	for i := len(n.release) - 1; i >= 0; i-- {
		n.release[i]()
	}
	n.release = nil
}

// retryUnanswered runs open again under p while JetStream does not answer,
// when joining a cluster (see joinOpen); open runs once otherwise. The stream and
// the buckets beside it are opened through it: a cluster that has just
// formed answers no JetStream request until it has elected a meta leader.
func (n *Node) retryUnanswered(ctx context.Context, p retry.Policy, open func(context.Context) error) error {
	if !n.join {
		return open(ctx)
	}
	p.Notify = func(err error) { n.log.Warn("JetStream did not answer; asking again", "err", err) }
	_, err := retry.Do(ctx, p, func(ctx context.Context) (struct{}, error) { return struct{}{}, open(ctx) })
	return err
}

// joinOpen is how a node joining a cluster opens the stream and the buckets
// beside it: nodes started together race to create them, and a clustered
// JetStream may leave one of two such requests unanswered, or refuse it as
// Unavailable for a moment. Each attempt has two seconds, a refusal is asked
// again a quarter of a second later, and after a minute the node gives up
// with the latest failure.
var joinOpen = retry.Policy{
	Attempt: 2 * time.Second,
	Pause:   250 * time.Millisecond,
	For:     time.Minute,
	Again:   func(err error) bool { return events.ErrorCode(err) == events.Unavailable },
}

// joinStream is joinOpen for the stream itself, whose attempt is longer: it
// includes jetstream.Ensure's wait for a cluster to place three copies (five
// seconds) before it settles for one. A reply lost while the cluster's
// routes settle (seen in CI: the stream had a leader, the node's request no
// answer) is asked again, and the stream found.
var joinStream = retry.Policy{
	Attempt: 10 * time.Second,
	Pause:   joinOpen.Pause,
	For:     joinOpen.For,
	Again:   joinOpen.Again,
}

// checkReplicas says when the stream keeps fewer copies than it should, or
// other than asked (--replicas): tokenledger never changes an existing
// stream.
func checkReplicas(log *slog.Logger, asked int, stream *jetstream.Stream) {
	have := stream.Replicas()
	switch {
	case asked != events.AutoReplicas && have != asked:
		log.Warn("the stream keeps a different number of copies than --replicas asks, and tokenledger does not change it; change it with `nats stream edit` if you mean to",
			"stream", stream.Config().Stream, "replicas", have, "asked", asked)
	case have == 1:
		log.Warn("the stream keeps one copy: losing the server that holds it stops the ledger; with three JetStream servers, raise it with `nats stream edit --replicas 3`",
			"stream", stream.Config().Stream)
	default:
		log.Info("stream replicated", "stream", stream.Config().Stream, "replicas", have)
	}
}

// Conn is the node's own NATS connection: it appends, follows the stream and
// publishes notices (the service has its own).
func (n *Node) Conn() *nats.Conn { return n.nc }

// ClientURL is where clients reach the node's NATS: the embedded server's
// client URL, or the URLs the node joined.
func (n *Node) ClientURL() string { return n.clientURL }

// HTTPURL is the base URL of the HTTP API, panel and health checks, http://
// or https:// and the address listened on; "" without HTTP.
func (n *Node) HTTPURL() string {
	if n.ln == nil {
		return ""
	}
	scheme := "http"
	if n.cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + n.ln.Addr().String()
}

// httpAddr is the address HTTP listens on, "" without HTTP.
func (n *Node) httpAddr() string {
	if n.ln == nil {
		return ""
	}
	return n.ln.Addr().String()
}

// Stream is the stream of the events.
func (n *Node) Stream() *jetstream.Stream { return n.stream }

// Table is the node's projection of the stream, which answers queries and
// validations.
func (n *Node) Table() *projections.Table { return n.table }

// Follower feeds the table from the stream, and says whether it may be
// answered from.
func (n *Node) Follower() *projections.Follower { return n.follower }

// Ledger takes the node's commands.
func (n *Node) Ledger() *commands.Ledger { return n.ledger }
