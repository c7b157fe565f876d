package projections

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestReadAheadReadsAllInOrder: what comes out is the body, whatever the
// sizes of the reads on either side, and the digest is the body's.
func TestReadAheadReadsAllInOrder(t *testing.T) {
	body := make([]byte, aheadBlocks*aheadBlock*2+12345)
	for i := range body {
		body[i] = byte(rand.IntN(256))
	}
	sum := sha256.New()
	a := startReadAhead(iotest.HalfReader(bytes.NewReader(body)), sum)
	defer a.stop()
	var got bytes.Buffer
	buf := make([]byte, 7777)
	for {
		n, err := a.Read(buf[:1+rand.IntN(len(buf))])
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), body) {
		t.Fatalf("read %d bytes, not the body's %d", got.Len(), len(body))
	}
	if want := sha256.Sum256(body); !bytes.Equal(sum.Sum(nil), want[:]) {
		t.Error("the digest is not the body's")
	}
}

// TestReadAheadPassesTheErrorOn: a body that fails fails the reading, after
// what came before it.
func TestReadAheadPassesTheErrorOn(t *testing.T) {
	broken := errors.New("the connection broke")
	a := startReadAhead(io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(broken)), io.Discard)
	defer a.stop()
	got, err := io.ReadAll(a)
	if string(got) != "abc" || !errors.Is(err, broken) {
		t.Errorf("read %q, %v; want abc and the body's error", got, err)
	}
}

// TestReadAheadStopsWhenNotRead: a decoding that gives up before the end
// stops the goroutine, which was waiting to hand on more.
func TestReadAheadStopsWhenNotRead(t *testing.T) {
	a := startReadAhead(bytes.NewReader(make([]byte, 3*aheadBlocks*aheadBlock)), io.Discard)
	if _, err := a.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	a.stop() // returns only once the goroutine has
}
