package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"tokenledger/projections"
)

// metrics counts what the HTTP side did, for /metrics in Prometheus' text
// format: few series, written by hand rather than pull in a client library.
type metrics struct {
	mu     sync.Mutex
	calls  map[[2]string]uint64 // UAPI calls by function and HTTP status
	logins map[string]uint64    // panel logins by result
}

func newMetrics() *metrics {
	return &metrics{calls: make(map[[2]string]uint64), logins: make(map[string]uint64)}
}

func (m *metrics) call(fn string, status int) {
	m.mu.Lock()
	m.calls[[2]string{fn, strconv.Itoa(status)}]++
	m.mu.Unlock()
}

func (m *metrics) login(ok bool) {
	result := "failed"
	if ok {
		result = "ok"
	}
	m.mu.Lock()
	m.logins[result]++
	m.mu.Unlock()
}

func (h *handler) metricsPage(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	ready := 0
	if h.ready() {
		ready = 1
	}
	fmt.Fprintf(&b, "# HELP tokenledger_ready Whether the projections have caught up with the stream.\n# TYPE tokenledger_ready gauge\ntokenledger_ready %d\n", ready)
	if h.cfg.Staleness != nil {
		fmt.Fprintf(&b, "# HELP tokenledger_staleness_seconds Age of the node's newest proof that its table holds everything stored.\n# TYPE tokenledger_staleness_seconds gauge\ntokenledger_staleness_seconds %.3f\n", h.cfg.Staleness().Seconds())
		fmt.Fprintf(&b, "# HELP tokenledger_max_staleness_seconds The bound past which the node stops answering (--max-staleness).\n# TYPE tokenledger_max_staleness_seconds gauge\ntokenledger_max_staleness_seconds %g\n", h.cfg.MaxStaleness.Seconds())
	}
	m := h.metrics
	m.mu.Lock()
	keys := make([][2]string, 0, len(m.calls))
	for k := range m.calls {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+" "+a[1], b[0]+" "+b[1]) })
	b.WriteString("# HELP tokenledger_uapi_calls_total UAPI calls by function and HTTP status.\n# TYPE tokenledger_uapi_calls_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "tokenledger_uapi_calls_total{function=%q,code=%q} %d\n", k[0], k[1], m.calls[k])
	}
	b.WriteString("# HELP tokenledger_panel_logins_total Panel logins by result.\n# TYPE tokenledger_panel_logins_total counter\n")
	for _, result := range []string{"failed", "ok"} {
		fmt.Fprintf(&b, "tokenledger_panel_logins_total{result=%q} %d\n", result, m.logins[result])
	}
	m.mu.Unlock()

	b.WriteString("# HELP tokenledger_tokens Live tokens by status, as of the scrape.\n# TYPE tokenledger_tokens gauge\n")
	counts := h.cfg.Table.CountByStatus(h.cfg.Now())
	for _, status := range []string{projections.Active, projections.Expiring, projections.Expired} {
		fmt.Fprintf(&b, "tokenledger_tokens{status=%q} %d\n", status, counts[status])
	}

	total, top, refused := h.guard.snapshot()
	b.WriteString("# HELP tokenledger_auth_failures_total Failed credentials on the HTTP API and panel: passwords (panel logins and HTTP Basic) and API tokens.\n# TYPE tokenledger_auth_failures_total counter\n")
	for _, kind := range []string{failPassword, failToken, failValidation} {
		fmt.Fprintf(&b, "tokenledger_auth_failures_total{kind=%q} %d\n", kind, total[kind])
	}
	fmt.Fprintf(&b, "# HELP tokenledger_auth_failures_by_source_total Failed credentials by source address (an IPv6 source is its /64): the %d busiest of at most %d sources tracked.\n# TYPE tokenledger_auth_failures_by_source_total counter\n", topSources, maxSources)
	for _, s := range top {
		fmt.Fprintf(&b, "tokenledger_auth_failures_by_source_total{source=%q} %d\n", s.source, s.n)
	}
	fmt.Fprintf(&b, "# HELP tokenledger_login_refusals_total Password logins refused unchecked because the account is locked after repeated failures.\n# TYPE tokenledger_login_refusals_total counter\ntokenledger_login_refusals_total %d\n", refused)

	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(b.String()))
}
