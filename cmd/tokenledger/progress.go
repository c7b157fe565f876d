package main

import (
	"fmt"
	"os"
)

// progress draws a bar on stderr when it is a terminal and the read is long.
type progress struct {
	out  *os.File
	last int
}

func newProgress(w any) *progress {
	f, ok := w.(*os.File)
	if !ok {
		return &progress{}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return &progress{}
	}
	return &progress{out: f}
}

func (p *progress) update(read int, pending uint64) {
	total := uint64(read) + pending
	if p.out == nil || total < 10000 {
		return
	}
	pct := int(uint64(read) * 100 / total)
	if pct == p.last && pending > 0 {
		return
	}
	p.last = pct
	const width = 40
	fill := pct * width / 100
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = '.'
		if i < fill {
			bar[i] = '#'
		}
	}
	fmt.Fprintf(p.out, "\r[%s] %3d%% %d/%d events", bar, pct, read, total)
}

func (p *progress) done() {
	if p.out != nil && p.last > 0 {
		fmt.Fprintln(p.out)
	}
}
