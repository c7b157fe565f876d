package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/debug"
	"time"

	"tokenledger/access"
	"tokenledger/events"
	"tokenledger/internal/headroom"
)

// A node's memory is measured in a process of its own, which is what serve
// is: an embedded server on the stream's directory and one node, with the
// collector as serve sets it (headroom.Default, projections.CatchUpGC). In
// the benchmark's own process the figures would hold its builder's garbage
// and its second node.
//
// The benchmark runs itself again with -node DIR (and -from-snapshot), the
// signing seed in seedEnv; the child starts, waits until its table is
// ready, and prints its figures as JSON.
const seedEnv = "TOKENBENCH_NODE_SEED"

// nodeFigures is what a node process reports once ready.
type nodeFigures struct {
	ServerUp time.Duration // the embedded server recovering the stream
	Ready    time.Duration // from the process's start of work to the table ready
	Peak     uint64        // the resident set's high-water mark (VmHWM), bytes
	RSS      uint64        // the resident set once ready and collected, bytes
	Heap     uint64        // the Go heap in use then, bytes
	Applied  uint64        // the table's last applied sequence
	Used     usage         // what the process had used once ready
}

// measureNode runs a node process on dir and returns its figures.
func measureNode(ctx context.Context, dir string, seed []byte, fromSnapshot bool) (nodeFigures, error) {
	args := []string{"-node", dir}
	if fromSnapshot {
		args = append(args, "-from-snapshot")
	}
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), seedEnv+"="+string(seed))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var f nodeFigures
	if err := cmd.Run(); err != nil {
		return f, fmt.Errorf("node process: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := json.Unmarshal(stdout.Bytes(), &f); err != nil {
		return f, fmt.Errorf("node process: %v: %q", err, stdout.String())
	}
	return f, nil
}

// nodeProcess is the node process: -node DIR.
func nodeProcess(ctx context.Context, dir string, fromSnapshot bool, stdout io.Writer) error {
	signer, err := access.NewSigner([]byte(os.Getenv(seedEnv)))
	if err != nil {
		return err
	}
	trust, err := access.NewTrust(signer.PublicKey())
	if err != nil {
		return err
	}
	// Warnings go to the parent, which shows them should the node fail.
	nodeLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if os.Getenv("GOGC") == "" { // as serve does
		defer headroom.Bound(headroom.Default)()
	}
	// The node starts its embedded server on the stream's directory, as
	// serve does, and (from its snapshot) reads its copy meanwhile.
	start := time.Now()
	n, up, err := startNodeOn(ctx, nil, dir, events.DefaultConfig(), signer, trust, fromSnapshot, keptCopy(dir))
	if err != nil {
		return err
	}
	defer n.stop()
	f := nodeFigures{ServerUp: up.Sub(start), Ready: time.Since(start), Used: usedSoFar()}
	f.Applied = n.table.Applied()
	if f.Peak, err = procStatus("VmHWM"); err != nil {
		return err
	}
	if err := n.settle(ctx); err != nil {
		return err
	}
	// What the node holds, not the garbage of its start, which a node
	// collects in the background once ready (see node.startGC) and which
	// the peak counts.
	debug.FreeOSMemory()
	now, err := measureResidence()
	if err != nil {
		return err
	}
	f.RSS, f.Heap = now.RSS, now.Heap
	return json.NewEncoder(stdout).Encode(f)
}
