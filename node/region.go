package node

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
