package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/commands"
	"tokenledger/embedded"
	"tokenledger/events"
	"tokenledger/httpapi"
	"tokenledger/natsapi"
	"tokenledger/projections"
)

// version is what `nats micro info tokens` shows.
const version = "0.1.0"

// defaultMaxStaleness is --max-staleness when not set: a revoke is refused by
// every node within this of its acknowledgement, whatever stalls. A stalled
// NATS server is noticed in about three seconds (see stallPings), so a
// tighter bound takes nodes out on every hiccup.
const defaultMaxStaleness = 5 * time.Second

// serveConfig is every setting of a node, from flags with environment
// fallbacks. The zero flags give the embedded default that works.
type serveConfig struct {
	clientConfig
	Join        bool   // --nats was given: join that NATS, start no server
	NATSConfig  string // embedded server: nats-server configuration file
	Listen      string
	HTTP        string
	TLSCert     string // HTTPS: certificate chain (PEM)
	TLSKey      string // HTTPS: private key (PEM)
	WarnDays    int
	Replicas    int
	SnapEvents  uint64        // events between snapshots
	SnapEvery   time.Duration // most time between snapshots while events arrive
	UsedEvery   time.Duration // at most one token.used event per token per this
	NoticeEvery time.Duration // how often to look for tokens whose expiry deserves a notice
	MaxLifetime time.Duration // refuse tokens that expire later than this, or never
	SigningKey  string        // seed file; default <data-dir>/signing.nk
	TrustedKeys string        // file of further public keys to trust
	Accounts    string        // htpasswd file of account passwords for the HTTP API and panel
	SecureHTTP  bool          // mark the panel's cookie Secure: TLS ends at a proxy in front
	Admin       bool          // embedded NATS: let the admin identity in for this run
	// MaxStaleness bounds how old the table's latest proof of holding every
	// stored event may be while the node answers from it (see
	// projections.Follower).
	MaxStaleness time.Duration
}

func (e *cli) serveFlags(args []string) (serveConfig, error) {
	var c serveConfig
	fs := e.flags("serve")
	c.register(fs)
	// The node's join settings are not the clients' TOKENLEDGER_NATS,
	// TOKENLEDGER_NKEY and the like: a user who exported those for the CLI
	// still gets an embedded node, which connects as its own identities.
	for _, name := range []string{"nats", "nkey", "nats-creds", "nats-user", "nats-password"} {
		fs.env(name, "TOKENLEDGER_SERVE_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	}
	// Letting the admin in is a step taken on purpose, for one run: never
	// from a variable left in an environment file.
	fs.env("admin", "")
	fs.Lookup("nkey").Usage = "nkey seed file to join --nats as (with the embedded NATS the node uses its own identities)"
	join := fs.Lookup("nats")
	join.Usage = "join this NATS (cluster), URL(s) comma separated, rather than start an embedded server"
	join.DefValue, c.NATS = "", "" // none: embedded
	fs.StringVar(&c.NATSConfig, "nats-config", "", "embedded NATS: a nats-server configuration file (users, permissions, TLS); required to listen beyond loopback")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:4222", "embedded NATS: client address")
	fs.StringVar(&c.HTTP, "http", "127.0.0.1:8080", "HTTP address of the API, panel and health checks")
	fs.StringVar(&c.SigningKey, "signing-key", "", "file with this node's signing seed (default: made on first start as <data-dir>/signing.nk)")
	fs.StringVar(&c.TrustedKeys, "trusted-keys", "", "file of further node public keys whose events to trust, one a line")
	fs.StringVar(&c.Accounts, "accounts", "", "htpasswd file (bcrypt) of account passwords for the HTTP API and panel; see 'tokenledger passwd'")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "serve HTTPS with this certificate chain (PEM); needs --tls-key")
	fs.StringVar(&c.TLSKey, "tls-key", "", "the private key (PEM) of --tls-cert")
	fs.BoolVar(&c.Admin, "admin", false, "embedded NATS: for this run only, let in the admin identity (<data-dir>/creds/admin.nk), which may change or delete the stream; the administrator's deliberate step, see README")
	fs.BoolVar(&c.SecureHTTP, "secure-cookies", false, "mark the panel's session cookie Secure even on plain HTTP (TLS ends at a proxy in front)")
	fs.Uint64Var(&c.SnapEvents, "snapshot-events", 100000, "store a snapshot of the projections after this many events")
	fs.DurationVar(&c.SnapEvery, "snapshot-interval", 10*time.Minute, "or after this long, when any event arrived")
	fs.DurationVar(&c.UsedEvery, "used-every", 10*time.Minute, "record a token's last use at most once per this period")
	fs.DurationVar(&c.NoticeEvery, "notice-every", time.Minute, "how often to look for tokens entering the warning window or expiring")
	fs.DurationVar(&c.MaxLifetime, "max-lifetime", 0, "when set, refuse tokens that never expire or expire later than this from now (e.g. 2160h)")
	fs.IntVar(&c.WarnDays, "warn-days", 7, "days before expiry in which a token is listed as expiring")
	fs.DurationVar(&c.MaxStaleness, "max-staleness", defaultMaxStaleness, "answer validations and take commands only while the table is proven to hold every event stored up to this long ago; past it the node says \"unavailable\" and is not ready")
	fs.IntVar(&c.Replicas, "replicas", events.AutoReplicas, "copies of the stream when this node creates it, 1 to 5 (default: 3 when the joined cluster has three or more JetStream servers, else 1)")
	if err := e.parse(fs, args, 0); err != nil {
		return c, err
	}
	c.Join = fs.given("nats")
	if !c.Join && e.getenv("TOKENLEDGER_NATS") != "" {
		// A node that joined through TOKENLEDGER_NATS before would start a
		// server of its own now: say so where its logs go.
		slog.New(slog.NewTextHandler(e.stderr, nil)).Warn("TOKENLEDGER_NATS is the clients' setting and serve ignores it: this node starts its own NATS; to join one, set TOKENLEDGER_SERVE_NATS or --nats")
	}
	if c.Admin && (c.Join || c.NATSConfig != "") {
		return c, usageErrorf("--admin is for the embedded NATS and its own users; with --nats or --nats-config, the administrator is a user of that configuration")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, usageErrorf("--tls-cert and --tls-key go together")
	}
	if c.UsedEvery < time.Second || c.NoticeEvery < time.Second || c.MaxLifetime < 0 {
		return c, usageErrorf("--used-every and --notice-every must be at least 1s, --max-lifetime not negative")
	}
	if c.MaxStaleness < time.Second {
		return c, usageErrorf("--max-staleness must be at least 1s: a NATS server that stalls is noticed in about three")
	}
	if c.WarnDays < 0 {
		return c, usageErrorf("--warn-days must not be negative")
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return c, usageErrorf("--replicas must be 1 to 5")
	}
	if _, err := c.location(); err != nil {
		return c, err
	}
	return c, nil
}

// serve runs a node: NATS (embedded, or joined), the stream, the projections,
// the `tokens` service and the HTTP server, until SIGINT or SIGTERM.
func (e *cli) serve(ctx context.Context, args []string) error {
	cfg, err := e.serveFlags(args)
	if err != nil {
		return err
	}
	// One node per data directory, taken before anything touches it.
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	seen, err := openSeen(cfg.DataDir, cfg.Stream)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	signer, trust, err := cfg.keys()
	if err != nil {
		return err
	}

	var (
		nc        *nats.Conn
		clientURL = cfg.NATS
		// serviceConn connects the `tokens` service (see serviceConn).
		serviceConn func() (*nats.Conn, <-chan struct{}, error)
		trouble     func() error // what the embedded server knows keeps JetStream from storing; nil when joined
	)
	if cfg.Join {
		opts := append(stallPings(), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond), nats.CustomInboxPrefix(access.InboxPrefix(access.Node)))
		if nc, err = cfg.connectWith(opts...); err != nil {
			return fmt.Errorf("--nats (or TOKENLEDGER_SERVE_NATS) is set, so this node joins that NATS rather than start its own: %w", err)
		}
		serviceConn = func() (*nats.Conn, <-chan struct{}, error) { return cfg.serviceConn(nc) }
	} else {
		// Every connection authenticates: the node makes an nkey user for
		// each role in its private data directory on first start.
		ensure := access.Ensure
		if cfg.Admin {
			ensure = access.EnsureAdmin
		}
		ids, err := ensure(cfg.DataDir)
		if err != nil {
			return usageErrorf("--data-dir %s: %v", cfg.DataDir, err)
		}
		var users []*server.NkeyUser
		if cfg.NATSConfig == "" {
			users = access.Users(ids, cfg.streamConfig())
		}
		if cfg.Admin {
			log.Warn("ADMIN: the admin identity may change or delete the stream for as long as this node runs; restart without --admin when the change is done",
				"creds", access.Path(cfg.DataDir, access.Admin))
		}
		var srv *server.Server
		if srv, err = embedded.Start(embedded.Options{DataDir: cfg.DataDir, Listen: cfg.Listen, ConfigFile: cfg.NATSConfig, Users: users}); err != nil {
			return usageErrorf("%v", err)
		}
		defer srv.WaitForShutdown()
		defer srv.Shutdown()
		clientURL = srv.ClientURL()
		trouble = func() error { return embedded.JetStreamTrouble(srv) }
		// The node's own connections skip the socket. With --nats-config,
		// the configuration's users apply, and the node is one of them.
		connect := func(role string, extra ...nats.Option) (*nats.Conn, error) {
			opts := append([]nats.Option{nats.InProcessServer(srv), nats.Name("tokenledger " + role)}, extra...)
			if cfg.NATSConfig == "" {
				opts = append(opts, ids[role].Options()...)
			} else {
				opts = append(opts, cfg.authOptions()...)
			}
			return nats.Connect("", opts...)
		}
		if nc, err = connect(access.Node); err != nil {
			return fmt.Errorf("connecting to the embedded NATS (with --nats-user/--nats-password or --nats-creds when --nats-config has users): %w", err)
		}
		serviceConn = func() (*nats.Conn, <-chan struct{}, error) {
			closed := make(chan struct{})
			snc, err := connect(access.Service, nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
			return snc, closed, err
		}
	}
	defer nc.Close()

	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	scfg := cfg.streamConfig()
	scfg.Replicas = cfg.Replicas
	if !cfg.Join && scfg.Replicas == events.AutoReplicas {
		scfg.Replicas = 1 // the embedded server is a single server
	}
	stream, err := events.Ensure(ctx, js, scfg, events.Seen{Seq: seen.Seq(), File: seen.Path()})
	if err != nil {
		return err
	}
	stream.AskServer(trouble)
	if cfg.Join {
		checkReplicas(log, cfg.Replicas, stream)
	}
	scfg.Replicas = stream.Replicas() // the buckets beside the stream keep as many copies
	var snapshots *events.Snapshots
	err = retryUnanswered(ctx, log, cfg.Join, func(ctx context.Context) (err error) {
		snapshots, err = events.OpenSnapshots(ctx, js, scfg)
		return err
	})
	if err != nil {
		return err
	}
	table := projections.Restore(ctx, snapshots, stream, trust, time.Duration(cfg.WarnDays)*24*time.Hour, log)
	follower := projections.NewFollower(table, stream, trust, log)
	if e.getenv("GOGC") == "" { // an operator's own GOGC stands
		follower.StartGC = projections.CatchUpGC
	}
	follower.MaxStaleness = cfg.MaxStaleness
	ledger := commands.New(commands.Config{Log: stream, Projection: table, Now: time.Now, Signer: signer, Trust: trust, MaxLifetime: cfg.MaxLifetime})
	var used *events.Used // last uses, beside the stream and out of its accounts' sequences
	err = retryUnanswered(ctx, log, cfg.Join, func(ctx context.Context) (err error) {
		used, err = events.OpenUsed(ctx, js, scfg)
		return err
	})
	if err != nil {
		return err
	}
	uses := commands.NewUses(commands.UseConfig{Store: used, Node: signer.PublicKey(), Now: time.Now,
		LastUsed: table.LastUsed, Every: cfg.UsedEvery, Log: log})
	var claims *events.Claims
	err = retryUnanswered(ctx, log, cfg.Join, func(ctx context.Context) (err error) {
		claims, err = events.OpenClaims(ctx, js, scfg)
		return err
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return usageErrorf("--http %s: %v", cfg.HTTP, err)
	}
	var accounts *httpapi.Accounts
	if cfg.Accounts != "" {
		if accounts, err = httpapi.OpenAccounts(cfg.Accounts); err != nil {
			ln.Close()
			return usageErrorf("--accounts: %v", err)
		}
	}
	loc, _ := cfg.location()
	guard := httpapi.NewGuard() // failed credentials on both transports
	httpServer := httpapi.Server(httpapi.New(httpapi.Config{
		Guard: guard,
		Ready: follower.Ready, Halted: follower.Halted, Staleness: follower.Staleness, MaxStaleness: cfg.MaxStaleness, Ledger: ledger, Table: table, Accounts: accounts, Uses: uses,
		Now: time.Now, Location: loc, SecureCookies: cfg.SecureHTTP, Log: log,
	}))

	var g group
	{ // signals
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		g.add(func() error { <-ctx.Done(); log.Info("stopping"); return nil }, stop)
	}
	{ // snapshots of the projections, for a quick next start
		ctx, cancel := context.WithCancel(ctx)
		snap := &projections.Snapshotter{Table: table, Store: snapshots, Stream: stream, Signer: signer,
			Events: cfg.SnapEvents, Interval: cfg.SnapEvery, Log: log}
		g.add(func() error { return snap.Run(ctx) }, cancel)
	}
	{ // last-use records, written off the validation path
		ctx, cancel := context.WithCancel(ctx)
		g.add(func() error { return uses.Run(ctx) }, cancel)
	}
	{ // last uses recorded by any node, into this node's table once it has caught up
		ctx, cancel := context.WithCancel(ctx)
		watcher := &projections.UseWatcher{Table: table, Source: used, Log: log}
		g.add(func() error {
			if follower.WaitReady(ctx) != nil {
				return nil
			}
			return watcher.Run(ctx)
		}, cancel)
	}
	{ // expiry notices, once per token across all nodes
		ctx, cancel := context.WithCancel(ctx)
		notifier := &projections.Notifier{Table: table, Claims: claims, Publish: nc.Publish, Prefix: cfg.Prefix,
			Node: signer.PublicKey(), Every: cfg.NoticeEvery, Now: time.Now, Log: log}
		g.add(func() error {
			if follower.WaitReady(ctx) != nil {
				return nil
			}
			return notifier.Run(ctx)
		}, cancel)
	}
	{ // projections
		ctx, cancel := context.WithCancel(ctx)
		g.add(func() error { return follower.Run(ctx) }, cancel)
	}
	{ // the stream's guard: no answers while the stream is missing, changed or short of what the node saw
		ctx, cancel := context.WithCancel(ctx)
		streamGuard := &projections.Guard{Stream: stream, Follower: follower, Seen: seen, Log: log}
		g.add(func() error { return streamGuard.Run(ctx) }, cancel)
	}
	if cfg.Join { // after a lost NATS connection, catch up before answering again
		ctx, cancel := context.WithCancel(ctx)
		reconnected := watchConnection(nc, follower, log)
		g.add(func() error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-reconnected:
				}
				if follower.CatchUp(ctx) != nil {
					return nil
				}
			}
		}, cancel)
	}
	{ // the `tokens` service, while the projections are caught up
		ctx, cancel := context.WithCancel(ctx)
		g.add(func() error {
			for started := false; ; started = true {
				if err := follower.WaitReady(ctx); err != nil {
					return nil
				}
				lost := follower.Lost()
				snc, closed, err := serviceConn()
				if err != nil {
					log.Warn("cannot connect the service; trying again", "err", err)
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(time.Second):
					}
					continue
				}
				svc, err := natsapi.Start(snc, natsapi.Config{Prefix: cfg.Prefix, Ledger: ledger, Table: table, Now: time.Now, Log: log, Version: version, Uses: uses, Failed: guard.ValidationFailed,
					Ready: follower.Ready})
				if err != nil {
					return err
				}
				if !started {
					scheme := "http"
					if cfg.TLSCert != "" {
						scheme = "https"
					}
					fmt.Fprintf(e.stdout, "tokenledger serving: nats=%s http=%s://%s\n", clientURL, scheme, ln.Addr())
				}
				select {
				case <-ctx.Done():
					err := svc.Stop()
					snc.Close()
					return err
				case <-lost:
				case <-closed:
				}
				// The service's own connection goes with it, so that no
				// subscription of it can come back with a reconnect.
				snc.Close()
				svc.Stop()
			}
		}, cancel)
	}
	{ // HTTP
		g.add(func() error {
			serve := func() error { return httpServer.Serve(ln) }
			if cfg.TLSCert != "" {
				serve = func() error { return httpServer.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey) }
			}
			if err := serve(); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			httpServer.Shutdown(ctx)
		})
	}
	log.Info("node starting", "signing_key", signer.PublicKey(), "trusted_keys", len(trust.Keys()), "nats", clientURL, "http", ln.Addr().String(), "stream", scfg.Stream, "embedded", !cfg.Join)
	return g.run()
}

// checkReplicas says when the stream keeps fewer copies than it should, or
// other than --replicas asks: tokenledger never changes an existing stream.
func checkReplicas(log *slog.Logger, asked int, stream *events.Stream) {
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

// retryUnanswered runs open again while JetStream does not answer, for up to
// a minute when joining a cluster: nodes started together race to create the
// buckets beside the stream, and a clustered JetStream may leave one of two
// such requests unanswered.
func retryUnanswered(ctx context.Context, log *slog.Logger, join bool, open func(context.Context) error) error {
	if !join {
		return open(ctx)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := open(actx)
		cancel()
		if ctx.Err() != nil || events.ErrorCode(err) != events.Unavailable || time.Now().After(deadline) {
			return err
		}
		log.Warn("JetStream did not answer; asking again", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// serviceConn is the connection the `tokens` service answers on when the
// node joins a NATS: a connection of its own that never reconnects:
// when the node falls behind, closing it takes every subscription of the
// service off the cluster at once, which stopping the service while NATS is
// reconnecting would not (a subscription drained then comes back with the
// reconnect and takes requests it never answers). Its pings give up on a
// server that stalls within seconds (see stallPings); the service then starts
// again on the server the node's own connection moved to. closed is closed
// with it.
func (c *serveConfig) serviceConn(nc *nats.Conn) (*nats.Conn, <-chan struct{}, error) {
	closed := make(chan struct{})
	// The node's own server first, then every server it has learnt of.
	sc := c.clientConfig
	sc.NATS = strings.Join(append([]string{nc.ConnectedUrl()}, nc.Servers()...), ",")
	opts := append(stallPings(), nats.NoReconnect(), nats.DontRandomize(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	snc, err := sc.connectWith(opts...)
	if err != nil {
		return nil, nil, err
	}
	return snc, closed, nil
}

// watchConnection makes a lost NATS connection visible: while disconnected
// the node may miss events (a revoke on another node), so it stops answering
// at once, and on each reconnect the returned channel asks it to catch up.
func watchConnection(nc *nats.Conn, follower *projections.Follower, log *slog.Logger) <-chan struct{} {
	reconnected := make(chan struct{}, 1)
	nc.SetDisconnectErrHandler(func(nc *nats.Conn, err error) {
		if nc.IsClosed() {
			return
		}
		follower.Behind()
		log.Warn("NATS connection lost: not answering until reconnected and caught up", "err", err)
	})
	nc.SetReconnectHandler(func(nc *nats.Conn) {
		log.Info("NATS reconnected: catching up with the stream", "server", nc.ConnectedUrlRedacted())
		select {
		case reconnected <- struct{}{}:
		default:
		}
	})
	return reconnected
}
