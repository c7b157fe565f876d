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
		text(w, http.StatusOK, "ready\n"+h.hubLine())
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
	text(w, http.StatusServiceUnavailable, why+"\n"+h.hubLine())
}

// HubLink is what a regional node knows of its link to the hub: whether it
// is up, and how far the region's mirror of the stream is behind.
type HubLink struct {
	Linked bool // the leaf connection to the hub is up now
	// Lag is how many events the hub held that the mirror did not, when
	// the hub last delivered one.
	Lag uint64
	// Silence is how long since the region last heard from the hub: the
	// longer of the mirror's silence (an event, or the hub's heartbeat each
	// second) and the age of the node's last proof against the hub's
	// stream; negative: never since the regional server started.
	Silence time.Duration
}

// hubLine is /readyz's second line on a regional node: the link, the
// time since the hub was last heard from and the events behind; "" on
// other nodes.
func (h *handler) hubLine() string {
	if h.cfg.Hub == nil {
		return ""
	}
	link, err := h.cfg.Hub()
	if err != nil {
		return fmt.Sprintf("hub: the regional mirror did not say how far behind it is: %v\n", err)
	}
	state := "linked"
	if !link.Linked {
		state = "unreachable"
	}
	heard := "never heard from"
	if link.Silence >= 0 {
		heard = fmt.Sprintf("last heard %v ago", link.Silence.Round(time.Millisecond))
	}
	return fmt.Sprintf("hub: %s, %s, %d events behind\n", state, heard, link.Lag)
}

func (h *handler) ready() bool { return h.cfg.Ready == nil || h.cfg.Ready() }

func text(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(body))
}
