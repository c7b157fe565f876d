package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// report is what a run found.
type report struct {
	Mode    string
	Machine string
	Size    size
	Rows    [][2]string // measurement, value
	Ratios  []ratio
	Started time.Time
	Took    time.Duration
}

// ratio is the project's throughput over its bare baseline's.
type ratio struct {
	Name string
	X    float64
	Goal float64
}

func (r *report) add(what, format string, args ...any) {
	r.Rows = append(r.Rows, [2]string{what, fmt.Sprintf(format, args...)})
}

func (r *report) write(w io.Writer) {
	fmt.Fprintf(w, "tokenbench, %s: %d live tokens (%d events) in %d accounts\n", r.Mode, r.Size.Live, 3*r.Size.Live, r.Size.Accounts)
	fmt.Fprintf(w, "machine: %s\n\n", r.Machine)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEASUREMENT\tVALUE")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, x := range r.Ratios {
		fmt.Fprintf(w, "ratio %s = %.3f (goal >= %.1f)\n", x.Name, x.X, x.Goal)
	}
}

// save writes the report as Markdown into its section of the results file,
// heading: `make bench`'s full run and each scale run (-live N) have one,
// and a run replaces its own and keeps the others.
func (r *report) save(path, heading string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "## %s\n\nWritten by cmd/tokenbench on %s; the run took %s.\n\n",
		heading, r.Started.UTC().Format(time.RFC3339), r.Took.Round(time.Second))
	fmt.Fprintf(&b, "Machine: %s.\n\n", r.Machine)
	fmt.Fprintf(&b, "Size: %d live tokens, %d events, %d accounts; one embedded NATS server (file store, every write synced) "+
		"in a temporary directory, clients over loopback TCP.\n\n", r.Size.Live, 3*r.Size.Live, r.Size.Accounts)
	fmt.Fprintf(&b, "| measurement | value |\n| --- | --- |\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s |\n", row[0], row[1])
	}
	fmt.Fprintf(&b, "\n```\n")
	for _, x := range r.Ratios {
		fmt.Fprintf(&b, "ratio %s = %.3f (goal >= %.1f)\n", x.Name, x.X, x.Goal)
	}
	fmt.Fprintf(&b, "```\n")
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, withSection(old, heading, b.Bytes()), 0o644)
}

// resultsTitle opens the results file.
const resultsTitle = "# Benchmark results\n\nWritten by `make bench` (its full run) and by scale runs " +
	"(`go run ./cmd/tokenbench -live N`), each into its own section; see the README's Performance.\n"

// withSection is the results file doc with the section under heading
// replaced by section (or added after the others), the sections in the
// order they first appeared.
func withSection(doc []byte, heading string, section []byte) []byte {
	var sections []*bytes.Buffer // each from its "## " line; what comes before the first is the title, written anew
	for line := range bytes.Lines(doc) {
		if bytes.HasPrefix(line, []byte("## ")) {
			sections = append(sections, new(bytes.Buffer))
		}
		if len(sections) > 0 {
			sections[len(sections)-1].Write(line)
		}
	}
	replaced := false
	for _, sec := range sections {
		if line, _, _ := bytes.Cut(sec.Bytes(), []byte("\n")); string(line) == "## "+heading {
			sec.Reset()
			sec.Write(section)
			replaced = true
		}
	}
	if !replaced {
		sections = append(sections, bytes.NewBuffer(section))
	}
	var out bytes.Buffer
	out.WriteString(resultsTitle)
	for _, sec := range sections {
		out.WriteString("\n")
		out.Write(bytes.TrimRight(sec.Bytes(), "\n"))
		out.WriteString("\n")
	}
	return out.Bytes()
}

// machine names the hardware and toolchain a run measured.
func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	ram := "memory unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			var kb uint64
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				ram = fmt.Sprintf("%.1f GB of memory", float64(kb<<10)/1e9)
				break
			}
		}
	}
	return fmt.Sprintf("%d cores (GOMAXPROCS %d), %s, %s, %s %s/%s", runtime.NumCPU(), runtime.GOMAXPROCS(0), model, ram,
		runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
