package httpapi

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// net/http reads a request's line and headers under one limit,
// MaxHeaderBytes, and answers a bare 431 to anything beyond it before a
// handler runs: a long URL would get 431 where 414 is right. So the server
// makes room in that limit for a request line of MaxURI and headers of
// MaxHeader (limits refuses either beyond its own bound, with 414 or 431),
// and its listener watches each request line as it arrives, answering 414 to
// one too long for that room however long it goes on. Nothing of the line is
// kept but its first bytes, so a hostile client holds no more memory than
// net/http's limit.
const (
	// maxRequestLine is the longest request line a connection passes on: a
	// target of MaxURI, with room for a method and a version.
	maxRequestLine = MaxURI + 1<<10
	// maxHeaderBytes is Server's MaxHeaderBytes: a request line and headers
	// at their bounds fit, so that limits says which one is too large.
	maxHeaderBytes = maxRequestLine + MaxHeader

	// After a refusal, what the client still sends is read and dropped, up
	// to drainMax bytes for up to drainFor, before the connection closes:
	// closing with unread data resets it, and the client may lose the
	// answer. net/http waits 500 ms after its own 431 for the same reason.
	drainMax = 1 << 20
	drainFor = 2 * time.Second
)

// Server returns the node's HTTP server for h: timeouts that keep slow
// clients from holding connections, and bounds on what a request may send.
func Server(h http.Handler) *BoundedServer {
	return &BoundedServer{&http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         rearm,
	}}
}

// BoundedServer is an http.Server whose Serve answers 414 to a request line
// over MaxURI, however long, where net/http alone would answer 431; its
// ConnState is its own. ServeTLS serves unwatched, since net/http must see
// its *tls.Conn as it is: there a request line over MaxURI gets 414 from the
// handler up to net/http's limit, and 431 beyond it.
type BoundedServer struct{ *http.Server }

// Serve accepts connections on ln and serves them, watching request lines.
func (s *BoundedServer) Serve(ln net.Listener) error {
	return s.Server.Serve(lineListener{ln})
}

type lineListener struct{ net.Listener }

func (l lineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lineConn{Conn: c, watching: true}, nil
}

// rearm has a connection watch the request line of its next request once it
// has answered one (net/http reports it idle then).
func rearm(c net.Conn, state http.ConnState) {
	if lc, ok := c.(*lineConn); ok && state == http.StateIdle {
		lc.next.Store(true)
	}
}

// headLen is how much of a request line is kept: enough to tell a UAPI call,
// whose refusal is a UAPI envelope.
const headLen = 32

var errLineTooLong = errors.New("request line too long")

// lineConn counts the bytes of each request line as net/http reads it. Its
// fields are only touched by Read, which net/http never calls twice at once;
// next is how the server's state hook asks it to start over.
type lineConn struct {
	net.Conn
	next     atomic.Bool // a new request begins with the next read
	watching bool        // reading a request line
	started  bool        // past the empty lines that may come before one
	n        int         // bytes of the line so far
	head     []byte      // its first headLen bytes
}

func (c *lineConn) Read(p []byte) (int, error) {
	if c.next.Swap(false) {
		c.watching, c.started, c.n, c.head = true, false, 0, c.head[:0]
	}
	n, err := c.Conn.Read(p)
	if c.watching && n > 0 && c.tooLong(p[:n]) {
		c.refuse()
		// A read error of this kind makes net/http close the connection
		// without an answer of its own.
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errLineTooLong}
	}
	return n, err
}

// tooLong follows the request line through b, the next bytes read, and says
// whether it has grown past maxRequestLine.
func (c *lineConn) tooLong(b []byte) bool {
	if !c.started {
		b = bytes.TrimLeft(b, "\r\n")
		if len(b) == 0 {
			return false
		}
		c.started = true
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b, c.watching = b[:i], false
	}
	c.head = append(c.head, b[:min(len(b), headLen-len(c.head))]...)
	c.n += len(b)
	return c.n > maxRequestLine
}

// refuse answers 414 as limits does, then reads what the client still sends
// so that it reads the answer (see drainMax).
func (c *lineConn) refuse() {
	_, target, _ := bytes.Cut(c.head, []byte(" "))
	r := &http.Request{URL: &url.URL{Path: string(target)}}
	var w answer
	refuseInput(&w, r, http.StatusRequestURITooLong, uriTooLong)
	c.Conn.SetWriteDeadline(time.Now().Add(drainFor))
	w.write(c.Conn)
	c.CloseWrite()
	c.Conn.SetReadDeadline(time.Now().Add(drainFor))
	io.CopyN(io.Discard, c.Conn, drainMax)
}

// CloseWrite half-closes the connection when the one beneath can, as a TCP
// connection can: net/http does so after its own refusals (a 431), whose
// end the client knows only by the close.
func (c *lineConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// answer is a response written whole to a connection that no handler owns.
type answer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (a *answer) Header() http.Header {
	if a.header == nil {
		a.header = http.Header{}
	}
	return a.header
}

func (a *answer) WriteHeader(status int)      { a.status = status }
func (a *answer) Write(b []byte) (int, error) { return a.body.Write(b) }

func (a *answer) write(w io.Writer) error {
	resp := &http.Response{
		StatusCode: a.status, ProtoMajor: 1, ProtoMinor: 1, Header: a.Header(),
		Body: io.NopCloser(&a.body), ContentLength: int64(a.body.Len()), Close: true,
	}
	return resp.Write(w)
}
