package node

import (
	"context"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/embedded"
	"tokenledger/events"
	"tokenledger/httpapi"
	"tokenledger/jetstream"
)

// Region is what makes a node regional. Its NATS is a leaf node of the hub
// (the cluster, or single server, that holds the stream and is its only
// writer) with a JetStream domain of its own, Name, in which the node keeps
// a mirror of the hub's stream. The node builds its table from the mirror
// and answers validations from it while the link to the hub is down; its
// commands are decided on the hub's stream and appended there, through a
// JetStream context on HubDomain, so optimistic concurrency stays on the
// one stream, and wait for the mirror to bring the event back before they
// answer (a caller reads its own writes in the region). With the link down
// a command fails at once as Unavailable: the hub is unreachable.
type Region struct {
	Name      string   // the region, and its JetStream domain
	HubDomain string   // the hub's JetStream domain
	Hub       []string // embedded: the hub's leafnode URLs (nats-leaf://host:7422)
	HubCreds  string   // embedded: the leaf connection's nkey seed file, or .creds file
}

// Hub is what the embedded server of a hub node needs to take regional
// nodes' servers as leaf nodes.
type Hub struct {
	LeafListen string // host:port of the leafnode listener; port 0: any free one
	Domain     string // the hub's JetStream domain
}

// regionOptions adds to o what the node's Region or Hub asks of the
// embedded server: its JetStream domain, its leaf link to the hub or its
// leafnode listener, and the users that go with them.
func (n *Node) regionOptions(o embedded.Options) (embedded.Options, error) {
	cfg := n.cfg
	switch {
	case cfg.Hub != nil:
		addr, err := embedded.FreeAddr(cfg.Hub.LeafListen)
		if err != nil {
			return o, events.Errorf(events.Invalid, "--leaf-listen %s: %v", cfg.Hub.LeafListen, err)
		}
		o.Domain, o.LeafListen = cfg.Hub.Domain, addr
		n.leafURL = "nats-leaf://" + addr
		if o.ConfigFile == "" {
			ids, err := n.ids()
			if err != nil {
				return o, err
			}
			o.Users = access.HubUsers(ids, cfg.Stream, cfg.Hub.Domain)
		}
	case cfg.Region != nil:
		o.Domain, o.Hub, o.HubCreds = cfg.Region.Name, cfg.Region.Hub, cfg.Region.HubCreds
		if o.ConfigFile == "" {
			ids, err := n.ids()
			if err != nil {
				return o, err
			}
			o.Users = access.RegionUsers(ids, cfg.Stream, cfg.Region.HubDomain)
		}
	}
	return o, nil
}

// ensureMirror opens the regional mirror of the hub's stream (creating it
// on first start, whether the hub is reachable or not), and the hub's stream
// as the node's commands see it. The buckets beside the mirror (snapshots
// of the regional table, last uses) are the region's own, one copy each.
func (n *Node) ensureMirror(ctx context.Context, js natsjs.JetStream, cfg events.Config, seen jetstream.Seen) (events.Config, error) {
	r := n.cfg.Region
	var err error
	if n.stream, err = jetstream.EnsureMirror(ctx, js, cfg, r.HubDomain, seen); err != nil {
		return cfg, err
	}
	n.stream.AskServer(n.trouble)
	hubJS, err := natsjs.NewWithDomain(n.nc, r.HubDomain)
	if err != nil {
		return cfg, err
	}
	n.hub = jetstream.OpenHub(hubJS, cfg, n.linked)
	cfg.Replicas = 1
	return cfg, nil
}

// LeafURL is where a hub node's embedded server takes regional servers'
// leaf connections (nats-leaf://host:port); "" on other nodes.
func (n *Node) LeafURL() string { return n.leafURL }

// Hub is the hub's stream as a regional node's commands use it; nil on
// other nodes.
func (n *Node) Hub() *jetstream.Hub { return n.hub }

// HubLinked says whether a regional node's embedded server has its leaf
// connection to the hub up now; true on other nodes, which have no hub to
// lose, and on a regional node that joined its region's server (it cannot
// see that server's links: NATS' refusals say when the hub is away).
func (n *Node) HubLinked() bool { return n.linked == nil || n.linked() }

// hubLinkWait bounds /readyz's and /metrics' look at the regional mirror,
// which the region's own server answers.
const hubLinkWait = 2 * time.Second

// hubLink is what /readyz and /metrics show of a regional node's link to
// the hub; nil on other nodes.
func (n *Node) hubLink() func() (httpapi.HubLink, error) {
	if n.hub == nil {
		return nil
	}
	return func() (httpapi.HubLink, error) {
		ctx, cancel := context.WithTimeout(context.Background(), hubLinkWait)
		defer cancel()
		m, err := n.stream.Mirror(ctx)
		if err != nil {
			return httpapi.HubLink{}, err
		}
		// The mirror's own clock of the hub's silence is reset each time
		// nats-server asks the hub again for the mirror's consumer (every
		// 10 s or so of an outage), so the node's own proofs against the
		// hub's stream bound it from below: a region is as silent as the
		// longer of the two says.
		silence := m.Silence
		if n.cfg.MaxStaleness > 0 {
			silence = max(silence, n.follower.Staleness())
		}
		return httpapi.HubLink{Linked: n.HubLinked(), Lag: m.Lag, Silence: silence}, nil
	}
}
