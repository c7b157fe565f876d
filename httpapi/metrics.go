package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tokenledger/accounts"
	"tokenledger/projections"
)

// metrics are the node's own series on /metrics (docs/http.md lists them),
// in the registry the node passes in beside the Go runtime's and the
// process's. What the HTTP side counts is counted as it happens; what the
// node knows (readiness, staleness, tokens, failed credentials) is read at
// the scrape.
type metrics struct {
	calls  *prometheus.CounterVec // UAPI calls by function and HTTP status
	logins *prometheus.CounterVec // panel logins by result
	page   http.Handler           // /metrics
}

// newMetrics registers the handler's series in cfg.Metrics, or in a registry
// of its own when there is none. cfg has its defaults already.
func newMetrics(cfg Config) *metrics {
	reg := cfg.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenledger_uapi_calls_total",
			Help: "UAPI calls by function and HTTP status.",
		}, []string{"function", "code"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenledger_panel_logins_total",
			Help: "Panel logins by result.",
		}, []string{"result"}),
		page: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}
	// Both results are shown from the start, at 0.
	m.logins.WithLabelValues("failed")
	m.logins.WithLabelValues("ok")
	reg.MustRegister(m.calls, m.logins,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tokenledger_ready",
			Help: "Whether the projections have caught up with the stream.",
		}, func() float64 {
			if cfg.Ready == nil || cfg.Ready() {
				return 1
			}
			return 0
		}),
		tokensCollector{cfg.Table, cfg.Now},
		guardCollector{cfg.Guard})
	if cfg.Staleness != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "tokenledger_staleness_seconds",
				Help: "Age of the node's newest proof that its table holds everything stored.",
			}, func() float64 { return cfg.Staleness().Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "tokenledger_max_staleness_seconds",
				Help: "The bound past which the node stops answering (--max-staleness).",
			}, func() float64 { return cfg.MaxStaleness.Seconds() }))
	}
	if cfg.Hub != nil {
		reg.MustRegister(hubCollector{cfg.Hub})
	}
	return m
}

// hubCollector shows a regional node's link to the hub, from one look at
// the regional mirror per scrape.
type hubCollector struct{ hub func() (HubLink, error) }

var (
	hubLinkedDesc  = prometheus.NewDesc("tokenledger_hub_linked", "Regional node: whether the leaf connection to the hub is up.", nil, nil)
	hubLagDesc     = prometheus.NewDesc("tokenledger_hub_lag_events", "Regional node: events the hub held that the region's mirror did not, when the hub last delivered one.", nil, nil)
	hubSilenceDesc = prometheus.NewDesc("tokenledger_hub_silence_seconds", "Regional node: seconds since the region last heard from the hub: the longer of its mirror's silence and the age of its last proof against the hub's stream (+Inf: never since the server started).", nil, nil)
)

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- hubLinkedDesc
	ch <- hubLagDesc
	ch <- hubSilenceDesc
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	link, err := c.hub()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(hubLagDesc, err)
		return
	}
	linked, silence := 0.0, math.Inf(1)
	if link.Linked {
		linked = 1
	}
	if link.Silence >= 0 {
		silence = link.Silence.Seconds()
	}
	ch <- prometheus.MustNewConstMetric(hubLinkedDesc, prometheus.GaugeValue, linked)
	ch <- prometheus.MustNewConstMetric(hubLagDesc, prometheus.GaugeValue, float64(link.Lag))
	ch <- prometheus.MustNewConstMetric(hubSilenceDesc, prometheus.GaugeValue, silence)
}

func (m *metrics) call(fn string, status int) {
	m.calls.WithLabelValues(fn, strconv.Itoa(status)).Inc()
}

func (m *metrics) login(ok bool) {
	result := "failed"
	if ok {
		result = "ok"
	}
	m.logins.WithLabelValues(result).Inc()
}

// metricsPage serves the registry in Prometheus' text format, to anyone who
// can reach --http, like /healthz.
func (h *handler) metricsPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	h.metrics.page.ServeHTTP(w, r)
}

// tokensCollector counts the live tokens by status at each scrape, in one
// pass over the table for all three.
type tokensCollector struct {
	table Table
	now   func() time.Time
}

var tokensDesc = prometheus.NewDesc("tokenledger_tokens", "Live tokens by status, as of the scrape.", []string{"status"}, nil)

func (c tokensCollector) Describe(ch chan<- *prometheus.Desc) { ch <- tokensDesc }

func (c tokensCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.table.CountByStatus(c.now())
	for _, status := range []string{projections.Active, projections.Expiring, projections.Expired} {
		ch <- prometheus.MustNewConstMetric(tokensDesc, prometheus.GaugeValue, float64(counts[status]), status)
	}
}

// guardCollector shows what the guard counted, which the NATS service
// reports to as well as the HTTP side.
type guardCollector struct{ guard *accounts.Guard }

var (
	authFailuresDesc = prometheus.NewDesc("tokenledger_auth_failures_total",
		"Failed credentials on the HTTP API and panel: passwords (panel logins and HTTP Basic) and API tokens.", []string{"kind"}, nil)
	authFailuresBySourceDesc = prometheus.NewDesc("tokenledger_auth_failures_by_source_total",
		fmt.Sprintf("Failed credentials by source address (an IPv6 source is its /64): the %d busiest of at most %d sources tracked.", accounts.TopSources, accounts.MaxSources),
		[]string{"source"}, nil)
	loginRefusalsDesc = prometheus.NewDesc("tokenledger_login_refusals_total",
		"Password logins refused unchecked because the account is locked after repeated failures.", nil, nil)
)

func (c guardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- authFailuresDesc
	ch <- authFailuresBySourceDesc
	ch <- loginRefusalsDesc
}

func (c guardCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.guard.Failures()
	for kind, n := range f.ByKind {
		ch <- prometheus.MustNewConstMetric(authFailuresDesc, prometheus.CounterValue, float64(n), string(kind))
	}
	for _, s := range f.Sources {
		ch <- prometheus.MustNewConstMetric(authFailuresBySourceDesc, prometheus.CounterValue, float64(s.N), s.Source)
	}
	ch <- prometheus.MustNewConstMetric(loginRefusalsDesc, prometheus.CounterValue, float64(f.Refused))
}
