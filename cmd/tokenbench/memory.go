package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
)

// residence is what a process holds in memory: its resident set (what the
// kernel counts against the machine) and the Go heap's part of it.
type residence struct {
	RSS, Heap uint64 // bytes
}

// resident measures the process as it stands, and again once collected and
// with the freed memory given back to the kernel: the second is what a node
// needs; the first heap is what it held, the collector's headroom (GOGC)
// included. (The first RSS says little in the benchmark, whose builder freed
// memory that Go has not returned yet.)
func resident() (asIs, live residence, err error) {
	if asIs, err = measureResidence(); err != nil {
		return asIs, live, err
	}
	runtime.GC()
	debug.FreeOSMemory()
	live, err = measureResidence()
	return asIs, live, err
}

func measureResidence() (residence, error) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	rss, err := residentSet()
	return residence{RSS: rss, Heap: m.HeapInuse}, err
}

// residentSet is the process's resident set size, from /proc (Linux).
func residentSet() (uint64, error) { return procStatus("VmRSS") }

// procStatus is a size in /proc/self/status (Linux), in bytes: VmRSS, the
// resident set; VmHWM, its high-water mark.
func procStatus(field string) (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte(field+":")); ok {
			kb, err := strconv.ParseUint(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte("kB")))), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}
