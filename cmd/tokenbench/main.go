// Command tokenbench is `make bench`: it measures tokenledger against the
// bare NATS operations it is built on, on one embedded NATS server in a
// temporary directory, and prints a table and then one line per ratio,
//
//	ratio NAME = X (goal >= G)
//
// BENCH_QUICK=1 runs a reduced size (well under two minutes on two cores);
// the full run holds 1,000,000 live tokens (3,000,000 events) and writes its
// results to bench/RESULTS.md. A scale run, -live N (100 tokens an account),
// writes its own section there, beside the full run's.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tokenbench:", err)
		os.Exit(1)
	}
}

// size is how much each measurement does.
type size struct {
	Live        int // live tokens on the stream, three events each
	Accounts    int
	Validations int // requests per side per round
	Creates     int // commands per side per round
	Revokes     int // revokes timed from acknowledgement to refusal
	Rebuilds    int // rounds of a bare read and a rebuild
}

var (
	quick = size{Live: 20_000, Accounts: 200, Validations: 40_000, Creates: 1_600, Revokes: 100, Rebuilds: 5}
	full  = size{Live: 1_000_000, Accounts: 10_000, Validations: 200_000, Creates: 3_200, Revokes: 300, Rebuilds: 5}
)

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokenbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("results", "bench/RESULTS.md", "where the full run and scale runs write their results (\"\": nowhere)")
	live := fs.Int("live", 0, "live tokens, for a scale run of another size (100 per account); its results have their own section of -results")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	nodeDir := fs.String("node", "", "(the benchmark's own) run as the node process whose memory it measures, on this directory")
	fromSnapshot := fs.Bool("from-snapshot", false, "(with -node) start from the newest snapshot")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *nodeDir != "" {
		return nodeProcess(ctx, *nodeDir, *fromSnapshot, stdout)
	}
	sz, mode := full, "full"
	if getenv("BENCH_QUICK") == "1" {
		sz, mode = quick, "quick (BENCH_QUICK=1)"
	}
	if *live > 0 {
		sz.Live, sz.Accounts = *live, max(1, *live/100)
		mode = fmt.Sprintf("%d live tokens (-live)", *live)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	report, err := measure(ctx, sz, stderr)
	if err != nil {
		return err
	}
	report.Mode = mode
	report.write(stdout)
	heading := ""
	switch {
	case *live > 0:
		heading = fmt.Sprintf("Scale run: %d live tokens (`go run ./cmd/tokenbench -live %d`)", *live, *live)
	case sz == full:
		heading = "make bench: the full run"
	}
	if heading != "" && *out != "" {
		if err := report.save(*out, heading); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "results written to %s\n", *out)
	}
	return nil
}
