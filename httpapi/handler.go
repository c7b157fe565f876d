package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"time"

	"tokenledger/commands"
	"tokenledger/projections"
)

// MaxBody bounds every request body; a real one is well under a kilobyte.
const MaxBody = 64 << 10

// commandTimeout bounds one change from request to reply.
const commandTimeout = 20 * time.Second

// Ledger is what the HTTP transport needs of the write side (*commands.Ledger).
type Ledger interface {
	Create(ctx context.Context, c commands.Create) (commands.Created, error)
	Rename(ctx context.Context, c commands.Rename) error
	Revoke(ctx context.Context, c commands.Revoke) error
}

// Table is what the HTTP transport needs of the read side (*projections.Table).
type Table interface {
	List(account string, now time.Time) []projections.Row
	Validate(secret, account string, now time.Time) projections.Result
}

var (
	_ Ledger = (*commands.Ledger)(nil)
	_ Table  = (*projections.Table)(nil)
)

// Config wires the HTTP server to the node.
type Config struct {
	// Ready says whether the node's projections have caught up with the stream.
	Ready func() bool
	// Ledger carries out changes; Table answers lists and validates tokens.
	Ledger Ledger
	Table  Table
	// Accounts holds the account passwords for HTTP Basic and the panel's
	// login; nil means no password logins at all (tokens still work).
	Accounts *Accounts
	// Now is the clock that statuses and expiries are judged by.
	Now func() time.Time
	// Location is the server's time zone: dates in the panel mean 23:59:59
	// of that day there, and times are shown there.
	Location *time.Location
	// SecureCookies marks the session cookie Secure even on plain HTTP, for
	// a node behind a proxy that terminates TLS. Under TLS it is always Secure.
	SecureCookies bool
	// Log receives internal errors only; never a secret.
	Log *slog.Logger
}

// handler is the node's HTTP side: health, the UAPI and the panel.
type handler struct {
	cfg      Config
	sessions *sessions
	metrics  *metrics
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
	h := &handler{cfg: cfg, sessions: newSessions(), metrics: newMetrics()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /metrics", h.metricsPage)
	mux.HandleFunc("/execute/", h.execute)
	h.panelRoutes(mux)
	return limitBody(mux)
}

// limitBody refuses a body over MaxBody before anyone reads it, and caps the
// reading of one whose length was not announced.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBody {
			tooLarge(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		next.ServeHTTP(w, r)
	})
}

func tooLarge(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	if isUAPI(r) {
		writeUAPI(w, http.StatusRequestEntityTooLarge, envelope{Errors: []string{"The request body is larger than 64 KiB."}})
		return
	}
	text(w, http.StatusRequestEntityTooLarge, "request body larger than 64 KiB\n")
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

// Server returns an http.Server for h with timeouts that keep slow clients
// from holding connections.
func Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}
