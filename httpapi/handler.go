package httpapi

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tokenledger/accounts"
	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/projections"
)

// Every input has a bound, checked before anything reads it: a real request
// is well under a kilobyte. Server keeps net/http's own limit from answering
// 431 to a long URL (server.go).
const (
	MaxBody   = 64 << 10 // a request body: 413 beyond
	MaxURI    = 8 << 10  // the path and query string: 414 beyond
	MaxHeader = 16 << 10 // all header lines together: 431 beyond
)

// uriTooLong is the refusal of a URL over MaxURI, from limits or, for a
// request line too long to reach a handler, from the connection.
const uriTooLong = "The request's URL is longer than 8 KiB."

// commandTimeout bounds one change from request to reply.
const commandTimeout = 20 * time.Second

// Ledger is what the HTTP transport needs of the write side (*commands.Ledger).
type Ledger interface {
	Create(ctx context.Context, c commands.Create) (commands.Created, error)
	Rename(ctx context.Context, c commands.Rename) error
	Revoke(ctx context.Context, c commands.Revoke) error
	Rotate(ctx context.Context, c commands.Rotate) (commands.Created, error)
	SetFeatures(ctx context.Context, c commands.SetFeatures) error
}

// Table is what the HTTP transport needs of the read side (*projections.Table).
type Table interface {
	List(account string, now time.Time) []projections.Row
	// ValidateFor judges a token for a use: valid, from ip, and with what
	// the use needs (feature_denied, read_only).
	ValidateFor(secret, account string, ip netip.Addr, need projections.Need, now func() time.Time) projections.Result
	CountByStatus(now time.Time) map[string]int
}

// UseRecorder is told of every successful token authentication, so that the
// token's last use is recorded (*commands.UseRecorder). Seen must not block.
type UseRecorder interface {
	Seen(account string, id events.TokenID, ip string)
}

var (
	_ Ledger      = (*commands.Ledger)(nil)
	_ Table       = (*projections.Table)(nil)
	_ UseRecorder = (*commands.UseRecorder)(nil)
)

// Config wires the HTTP server to the node.
type Config struct {
	// Ready says whether the node's projections have caught up with the stream.
	Ready func() bool
	// Halted says why the node does not answer, when it knows
	// (projections.Follower.Halted): /readyz shows it. nil or "": catching up.
	Halted func() string
	// Staleness is the age of the node's newest proof that its table is
	// current (projections.Follower.Staleness), and MaxStaleness the bound
	// past which the node stops answering; /readyz and /metrics show them.
	// nil: not shown.
	Staleness    func() time.Duration
	MaxStaleness time.Duration
	// Hub is a regional node's view of its link to the hub, which /readyz
	// and /metrics show (see health.go); nil on other nodes.
	Hub func() (HubLink, error)
	// Ledger carries out changes; Table answers lists and validates tokens.
	Ledger Ledger
	Table  Table
	// Accounts holds the account passwords for HTTP Basic and the panel's
	// login; nil means no password logins at all (tokens still work).
	Accounts *accounts.Passwords
	// Uses records successful token authentications; nil records nothing.
	Uses UseRecorder
	// Now is the clock that statuses and expiries are judged by, and that
	// times the lock of an account after repeated failed logins.
	Now func() time.Time
	// Location is the server's time zone: dates in the panel mean 23:59:59
	// of that day there, and times are shown there.
	Location *time.Location
	// SecureCookies marks the session cookie Secure even on plain HTTP, for
	// a node behind a proxy that terminates TLS. Under TLS it is always Secure.
	SecureCookies bool
	// Features are the features the panel's forms offer a user to pick
	// for a token, in this order; nil: DefaultFeatures. (The UAPI takes any
	// well-formed feature name.)
	Features []string
	// Log receives internal errors only; never a secret.
	Log *slog.Logger
	// Guard counts failed credentials and locks accounts; nil: a guard of
	// this handler's own.
	Guard *accounts.Guard
	// Metrics is the registry that /metrics serves: the node's, which holds
	// the Go runtime's and the process's series; New adds the handler's own
	// (metrics.go). nil: a registry of this handler's own.
	Metrics *prometheus.Registry
}

// handler is the node's HTTP side: health, the UAPI and the panel.
type handler struct {
	cfg      Config
	sessions *sessions
	metrics  *metrics
	guard    *accounts.Guard
	loginKey []byte // signs the login form's CSRF tokens (loginToken)
}

// New returns the node's HTTP handler.
func New(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Guard == nil {
		cfg.Guard = accounts.NewGuard()
	}
	if cfg.Features == nil {
		cfg.Features = DefaultFeatures()
	}
	h := &handler{cfg: cfg, sessions: newSessions(), metrics: newMetrics(cfg), guard: cfg.Guard, loginKey: make([]byte, 32)}
	rand.Read(h.loginKey)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /metrics", h.metricsPage)
	mux.HandleFunc("/execute/", h.execute)
	mux.HandleFunc(jsonAPIPath, h.jsonAPI)
	mux.HandleFunc("GET /openapi.json", h.openAPI)
	h.panelRoutes(mux)
	return limits(mux)
}

// limits refuses a long URI, large headers or a body over MaxBody before
// anyone reads them, and caps the reading of a body whose length was not
// announced. Server's connections stop far larger ones earlier still; this
// holds wherever the handler is mounted.
func limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case len(r.RequestURI) > MaxURI || len(r.URL.RawQuery) > MaxURI:
			refuseInput(w, r, http.StatusRequestURITooLong, uriTooLong)
			return
		case headerSize(r.Header) > MaxHeader:
			refuseInput(w, r, http.StatusRequestHeaderFieldsTooLarge, "The request's headers are larger than 16 KiB.")
			return
		case r.ContentLength > MaxBody:
			tooLarge(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		next.ServeHTTP(w, r)
	})
}

// headerSize is the size of the header lines as sent, near enough.
func headerSize(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func refuseInput(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Connection", "close")
	if reply := replierFor(r); reply != nil {
		reply(w, status, envelope{Errors: []string{msg}})
		return
	}
	text(w, status, msg+"\n")
}

func tooLarge(w http.ResponseWriter, r *http.Request) {
	refuseInput(w, r, http.StatusRequestEntityTooLarge, "The request body is larger than 64 KiB.")
}

// parseForm reads query and body parameters: URL-encoded or multipart, as
// cPanel accepts them. A body over MaxBody is reported as such.
func parseForm(r *http.Request) error {
	var err error
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
		err = r.ParseMultipartForm(MaxBody)
	} else {
		err = r.ParseForm()
	}
	if r.MultipartForm != nil {
		r.MultipartForm.RemoveAll()
	}
	return err
}

func isTooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// clientIP is the address of the peer that sent the request. Forwarding
// headers are not trusted: anyone can send them.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(host) > 64 {
		host = host[:64]
	}
	return host
}

// clientAddr is clientIP as an address, for a token's allow-list; the zero
// Addr, which no allow-list admits, when it cannot be read.
func clientAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(r.RemoteAddr)
	return a.Unmap()
}
