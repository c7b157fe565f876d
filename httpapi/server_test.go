package httpapi_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"tokenledger/httpapi"
)

// mustServe runs h as serve runs it, under httpapi.Server on a free
// loopback port, and returns the address.
func mustServe(tb testing.TB, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := httpapi.Server(h)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			tb.Error(err)
		}
	})
	return ln.Addr().String()
}

// rawClient is one TCP connection that writes each request whole from a
// goroutine of its own, as a client that sends before it listens does, and
// reads the answer meanwhile.
type rawClient struct {
	tb    testing.TB
	conn  net.Conn
	r     *bufio.Reader
	wrote chan struct{} // closed when the last request is written, or failed to be
}

func dialRaw(tb testing.TB, addr string) *rawClient {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	c := &rawClient{tb: tb, conn: conn, r: bufio.NewReader(conn)}
	tb.Cleanup(func() {
		conn.Close()
		if c.wrote != nil {
			<-c.wrote
		}
	})
	return c
}

type rawAnswer struct {
	status int
	header http.Header
	close  bool // the server closes the connection after it
	body   string
}

// send writes a GET of target with the header lines given, and reads the
// answer.
func (c *rawClient) send(target string, header ...string) rawAnswer {
	c.tb.Helper()
	if c.wrote != nil {
		<-c.wrote
	}
	req := "GET " + target + " HTTP/1.1\r\nHost: tokenledger\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	req += "\r\n"
	wrote := make(chan struct{})
	c.wrote = wrote
	go func() { defer close(wrote); io.WriteString(c.conn, req) }()
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		c.tb.Fatalf("GET of %d bytes with %d bytes of headers: %v", len(target), len(strings.Join(header, "")), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatal(err)
	}
	return rawAnswer{resp.StatusCode, resp.Header, resp.Close, string(b)}
}

// TestRequestLineBounds: a request line whose target is over 8 KiB gets 414,
// however long it goes on and whatever headers follow it, and headers over
// 16 KiB get 431, on the server serve runs, spoken to over TCP.
func TestRequestLineBounds(t *testing.T) {
	n := mustNode(t)
	addr := mustServe(t, n.Handler)
	auth := "Authorization: " + cpanel("bob", n.mustToken(t, "bob", "admin", nil))
	list := "/execute/Tokens/list?pad="
	pad := func(size int) string { return strings.Repeat("x", size) }
	header := func(size int) string { return "X-Pad: " + pad(size) }

	uriTooLong := func(name string, a rawAnswer, uapi bool) {
		t.Helper()
		if a.status != http.StatusRequestURITooLong || !a.close {
			t.Errorf("%s: %d %v", name, a.status, a.header)
			return
		}
		if !uapi {
			if a.body != "The request's URL is longer than 8 KiB.\n" {
				t.Errorf("%s: %q", name, a.body)
			}
			return
		}
		var e struct {
			Status int      `json:"status"`
			Errors []string `json:"errors"`
		}
		if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Status != 0 || len(e.Errors) != 1 || e.Errors[0] != "The request's URL is longer than 8 KiB." {
			t.Errorf("%s: not the UAPI's refusal: %q", name, a.body)
		}
	}
	for _, tc := range []struct {
		name   string
		target string
		header []string
		uapi   bool
	}{
		{"just over 8 KiB", list + pad(8<<10), []string{auth}, true},
		{"over 16 KiB", "/?pad=" + pad(20<<10), nil, false},
		{"far over 16 KiB", list + pad(256<<10), []string{auth}, true},
		{"over 8 KiB, with 15 KiB of headers", list + pad(9<<10), []string{auth, header(15 << 10)}, true},
		{"a long path, no query", "/execute/" + pad(100<<10), nil, true},
	} {
		uriTooLong(tc.name, dialRaw(t, addr).send(tc.target, tc.header...), tc.uapi)
	}

	for _, tc := range []struct {
		name   string
		header []string
	}{
		{"headers over 16 KiB", []string{auth, header(17 << 10)}},
		{"headers far over 16 KiB", []string{auth, header(200 << 10)}},
	} {
		if a := dialRaw(t, addr).send(list, tc.header...); a.status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s: %d %q", tc.name, a.status, a.body)
		}
	}

	// At the bounds, all is well; and a connection kept alive watches each
	// of its request lines, not only the first.
	c := dialRaw(t, addr)
	for i := range 3 {
		if a := c.send(list+pad(7<<10), auth, header(15<<10)); a.status != http.StatusOK {
			t.Fatalf("request %d within the bounds: %d %q", i+1, a.status, a.body)
		}
	}
	uriTooLong("far over 16 KiB, after requests on the same connection", c.send(list+pad(64<<10), auth), true)
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Errorf("the connection stays open after a 414: %v", err)
	}
}
