package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeMetrics: the real serve's /metrics, as Prometheus scrapes it,
// has the Go runtime's and the process's series that dashboards expect
// beside the node's own, in the text format, never cached.
func TestServeMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	n := cliServe(t, t.TempDir())
	resp, err := http.Get(n.httpURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d %q", resp.StatusCode, ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("/metrics: Cache-Control %q, want no-store", cc)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "tokenledger_ready", "tokenledger_tokens"} {
		if !strings.Contains(string(b), "\n# TYPE "+name+" gauge\n") {
			t.Errorf("/metrics has no gauge %s:\n%s", name, b)
		}
	}
}
