package httpapi

import (
	"fmt"
	"net/http"
	"time"
)

// healthz says the process is up; orchestrators restart it when this fails.
func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	text(w, http.StatusOK, "ok\n")
}

// readyz says whether the projections have caught up with the stream, so a
// load balancer sends no request to a node that would answer from old state;
// and, when the node is halted, why, for the operator.
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.ready() {
		text(w, http.StatusOK, "ready\n")
		return
	}
	why := "catching up with the stream"
	if h.cfg.Staleness != nil && h.cfg.MaxStaleness > 0 {
		if age := h.cfg.Staleness(); age >= h.cfg.MaxStaleness {
			why = fmt.Sprintf("cannot vouch that the table is current: the newest proof is %v old (--max-staleness %v)", age.Round(time.Millisecond), h.cfg.MaxStaleness)
		}
	}
	if h.cfg.Halted != nil {
		if halted := h.cfg.Halted(); halted != "" {
			why = halted
		}
	}
	text(w, http.StatusServiceUnavailable, why+"\n")
}

func (h *handler) ready() bool { return h.cfg.Ready == nil || h.cfg.Ready() }

func text(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(body))
}
