package projections

import (
	"io"
)

// readAhead reads a snapshot's body on a goroutine of its own, some blocks
// ahead of the decoding, and writes each block to a digest on the way: the
// download, the object store's own check and the signed digest then take a
// core beside the decoding's instead of turns with it (at ten million tokens
// the digest alone is 0.4 s of a start).
type readAhead struct {
	full  chan []byte // blocks read, in order; closed after the last
	free  chan []byte // blocks the decoding is done with
	done  chan struct{}
	block []byte // the block being read from, and what of it is left
	cur   []byte
	err   error // why full was closed: io.EOF at the end; set before the close
	quit  chan struct{}
}

const (
	aheadBlock  = 1 << 20
	aheadBlocks = 4
)

// startReadAhead reads r to its end, writing what it reads to sum.
func startReadAhead(r io.Reader, sum io.Writer) *readAhead {
	a := &readAhead{full: make(chan []byte, aheadBlocks), free: make(chan []byte, aheadBlocks),
		done: make(chan struct{}), quit: make(chan struct{})}
	for range aheadBlocks {
		a.free <- make([]byte, aheadBlock)
	}
	go a.run(r, sum)
	return a
}

func (a *readAhead) run(r io.Reader, sum io.Writer) {
	defer close(a.done)
	defer close(a.full)
	for {
		var buf []byte
		select {
		case buf = <-a.free:
		case <-a.quit:
			return
		}
		n, err := io.ReadFull(r, buf[:cap(buf)])
		if n > 0 {
			sum.Write(buf[:n])
			select {
			case a.full <- buf[:n]:
			case <-a.quit:
				return
			}
		}
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		if err != nil {
			a.err = err
			return
		}
	}
}

// Read reads what the goroutine has read.
func (a *readAhead) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.block != nil {
			a.free <- a.block
			a.block = nil
		}
		buf, ok := <-a.full
		if !ok {
			return 0, a.err
		}
		a.block, a.cur = buf, buf
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

// stop ends the goroutine and waits for it. It returns at once when the
// body was read to its end; otherwise the goroutine may be waiting for more
// of it, which closing the body ends.
func (a *readAhead) stop() {
	close(a.quit)
	<-a.done
}
