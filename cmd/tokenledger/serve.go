package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"tokenledger/accounts"
	"tokenledger/events"
	"tokenledger/httpapi"
	"tokenledger/internal/headroom"
	"tokenledger/node"
	"tokenledger/projections"
)

// version is what `nats micro info tokens` shows.
const version = "0.1.0"

// defaultMaxStaleness is --max-staleness when not set: a revoke is refused by
// every node within this of its acknowledgement, whatever stalls. A stalled
// NATS server is noticed in about three seconds (see node.StallPings), so a
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
	UsedEvery   time.Duration // at most one record of a token's last use per this, across the nodes
	NoticeEvery time.Duration // how often to look for tokens whose expiry deserves a notice
	MaxLifetime time.Duration // refuse tokens that expire later than this, or never
	SigningKey  string        // seed file; default <data-dir>/signing.nk
	TrustedKeys string        // file of further public keys to trust
	Accounts    string        // htpasswd file of account passwords for the HTTP API and panel
	Features    string        // file of the features the panel offers, one a line; empty: httpapi.DefaultFeatures
	SecureHTTP  bool          // mark the panel's cookie Secure: TLS ends at a proxy in front
	Admin       bool          // embedded NATS: let the admin identity in for this run
	// MaxStaleness bounds how old the table's latest proof of holding every
	// stored event may be while the node answers from it (see
	// projections.Follower).
	MaxStaleness time.Duration
	// Regions (see node.Region): a regional node's embedded server is a
	// leaf node of the hub, with a JetStream domain named after the region
	// and a local mirror of the hub's stream; a hub node's embedded server
	// takes the regions' leaf connections.
	Region     string // this node's region; empty: not regional
	Hub        string // regional: leafnode URL(s) of the hub, comma separated
	HubCreds   string // regional: nkey seed or .creds file of the leaf connection
	HubDomain  string // the hub's JetStream domain, on either side
	LeafListen string // hub, embedded: accept the regions' leaf connections here
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
	fs.StringVar(&c.Features, "features", "", "file of the features the panel offers for limited tokens, one a line, # comments (default: cPanel's common feature names, apitokens first)")
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
	fs.StringVar(&c.Region, "region", "", "run as a regional node of this name: the embedded NATS is a leaf node of --hub with JetStream domain NAME, the table follows a local mirror of the hub's stream, validations are answered locally and commands go to the hub")
	fs.StringVar(&c.Hub, "hub", "", "regional: leafnode URL(s) of the hub, comma separated (nats-leaf://host:7422)")
	fs.StringVar(&c.HubCreds, "hub-creds", "", "regional: the leaf connection's credentials, an nkey seed file (the hub's 'region' role, see 'tokenledger creds region') or a .creds file")
	fs.StringVar(&c.HubDomain, "hub-domain", "hub", "the hub's JetStream domain: a regional node mirrors and appends there; a hub node with --leaf-listen takes it as its own")
	fs.StringVar(&c.LeafListen, "leaf-listen", "", "hub, embedded NATS: accept regional nodes' leaf connections on this host:port (as the 'region' role); beyond loopback it needs --nats-config")
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
	if err := c.checkRegion(); err != nil {
		return c, err
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

// validDomain is a JetStream domain this node names: it becomes a subject
// token ($JS.<domain>.API), so no dots, wildcards or spaces.
var validDomain = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// checkRegion refuses region settings that cannot work together.
func (c serveConfig) checkRegion() error {
	switch {
	case c.Region != "" && !validDomain.MatchString(c.Region):
		return usageErrorf("--region %q: a region is its JetStream domain: 1 to 32 of A-Z a-z 0-9 _ -", c.Region)
	case !validDomain.MatchString(c.HubDomain):
		return usageErrorf("--hub-domain %q: 1 to 32 of A-Z a-z 0-9 _ -", c.HubDomain)
	case c.Region != "" && c.Region == c.HubDomain:
		return usageErrorf("--region %s is also --hub-domain: the region's JetStream domain must differ from the hub's", c.Region)
	case c.Region != "" && c.Hub == "" && !c.Join:
		return usageErrorf("--region needs --hub, the hub's leafnode URL(s), for the embedded NATS to connect to")
	case c.Region == "" && (c.Hub != "" || c.HubCreds != ""):
		return usageErrorf("--hub and --hub-creds are a regional node's: give --region too")
	case c.Join && (c.Hub != "" || c.HubCreds != ""):
		return usageErrorf("--hub and --hub-creds are for the embedded NATS; with --nats, the joined server's own configuration connects it to the hub")
	case c.LeafListen != "" && (c.Join || c.Region != ""):
		return usageErrorf("--leaf-listen is a hub's embedded NATS: not with --nats or --region")
	}
	return nil
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
	ncfg, err := e.nodeConfig(cfg)
	if err != nil {
		return err
	}
	var n *node.Node
	ncfg.Serving = func() {
		fmt.Fprintf(e.stdout, "tokenledger serving: nats=%s http=%s\n", n.ClientURL(), n.HTTPURL())
	}
	if e.getenv("GOGC") == "" { // an operator's own GOGC stands; GOMEMLIMIT stays the ceiling
		defer headroom.Bound(headroom.Default)()
	}
	if n, err = node.New(ctx, ncfg); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return n.Run(ctx)
}

// splitURLs is a comma-separated list of URLs, without blanks.
func splitURLs(s string) []string {
	var urls []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// nodeConfig is the node that cfg describes, with what it names in files
// loaded: the record of the stream seen, the keys, the account passwords.
func (e *cli) nodeConfig(cfg serveConfig) (node.Config, error) {
	seen, err := openSeen(cfg.DataDir, cfg.Stream)
	if err != nil {
		return node.Config{}, err
	}
	signer, trust, err := cfg.keys()
	if err != nil {
		return node.Config{}, err
	}
	var passwords *accounts.Passwords
	if cfg.Accounts != "" {
		if passwords, err = accounts.OpenPasswords(cfg.Accounts); err != nil {
			return node.Config{}, usageErrorf("--accounts: %v", err)
		}
	}
	var features []string
	if cfg.Features != "" {
		if features, err = httpapi.ReadFeatures(cfg.Features); err != nil {
			return node.Config{}, usageErrorf("--features: %v", err)
		}
	}
	loc, _ := cfg.location()
	stream := cfg.streamConfig()
	stream.Replicas = cfg.Replicas
	n := node.Config{
		DataDir:       cfg.DataDir,
		Listen:        cfg.Listen,
		NATSConfig:    cfg.NATSConfig,
		Admin:         cfg.Admin,
		Stream:        stream,
		Seen:          seen,
		Signer:        signer,
		Trust:         trust,
		Parts:         node.All,
		HTTP:          cfg.HTTP,
		TLSCert:       cfg.TLSCert,
		TLSKey:        cfg.TLSKey,
		SecureCookies: cfg.SecureHTTP,
		Accounts:      passwords,
		Features:      features,
		Location:      loc,
		Version:       version,
		Warn:          time.Duration(cfg.WarnDays) * 24 * time.Hour,
		MaxLifetime:   cfg.MaxLifetime,
		MaxStaleness:  cfg.MaxStaleness,
		SnapshotCopy:  filepath.Join(cfg.DataDir, "snapshot.copy"),
		SnapEvents:    cfg.SnapEvents,
		SnapEvery:     cfg.SnapEvery,
		UsedEvery:     cfg.UsedEvery,
		NoticeEvery:   cfg.NoticeEvery,
		Log:           slog.New(slog.NewTextHandler(e.stderr, nil)),
	}
	if cfg.Join {
		n.Join = cfg.NATS
	}
	if cfg.Region != "" {
		n.Region = &node.Region{Name: cfg.Region, HubDomain: cfg.HubDomain, Hub: splitURLs(cfg.Hub), HubCreds: cfg.HubCreds}
	}
	if cfg.LeafListen != "" {
		n.Hub = &node.Hub{LeafListen: cfg.LeafListen, Domain: cfg.HubDomain}
	}
	if cfg.Join || cfg.NATSConfig != "" {
		n.Auth = cfg.authOptions()
	}
	if e.getenv("GOGC") == "" { // an operator's own GOGC stands
		n.StartGC = projections.CatchUpGC
	}
	return n, nil
}
