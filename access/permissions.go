package access

import (
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"

	"tokenledger/events"
)

// Permissions is what role may publish and subscribe to on a NATS that keeps
// the ledger under cfg. Everything not allowed is refused by the server. No
// role may delete, purge or update the stream, nor delete its messages: that
// takes an administrator with the server's own rights (see the README).
//
// Replies travel only to the roles' own inbox prefixes: a role subscribes to
// its own and no other, and the service may publish into them and nowhere
// else, so a request that names another reply subject (a stream's, an API's)
// cannot make a node write there.
func Permissions(role string, cfg events.Config) *server.Permissions {
	s, p := cfg.Stream, cfg.Prefix
	inbox := InboxPrefix(role) + ".>"
	switch role {
	case Node:
		allow := []string{
			p + ".events.>",  // appends, with the expected-sequence check
			p + ".notices.>", // expiry notices
			"$JS.API.INFO",
			"$JS.API.STREAM.CREATE." + s, // the first node makes it; a different config is refused
			"$JS.API.STREAM.INFO." + s,
		}
		allow = append(allow, readStream(s)...)
		for _, bucket := range []string{"OBJ_" + s + "_SNAPSHOTS", "KV_" + s + "_CLAIMS", "KV_" + s + "_USED"} {
			allow = append(allow,
				"$JS.API.STREAM.*."+bucket, "$JS.API.STREAM.MSG.GET."+bucket,
				"$JS.API.DIRECT.GET."+bucket, "$JS.API.DIRECT.GET."+bucket+".>",
				"$JS.API.CONSUMER.*."+bucket+".>", "$JS.ACK."+bucket+".>", "$JS.FC."+bucket+".>")
		}
		allow = append(allow, "$O."+s+"_SNAPSHOTS.>", "$KV."+s+"_CLAIMS.>", "$KV."+s+"_USED.>")
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: allow, Deny: streamAdmin(s)},
			Subscribe: &server.SubjectPermission{Allow: []string{inbox}},
		}
	case Service:
		var replies []string
		for _, r := range Roles {
			if r != Service {
				replies = append(replies, InboxPrefix(r)+".>")
			}
		}
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: replies},
			Subscribe: &server.SubjectPermission{Allow: []string{p + ".validate", p + ".cmd.>", "$SRV.>"}},
		}
	case Operator:
		allow := []string{p + ".validate", p + ".cmd.>", "$SRV.>", "$JS.API.INFO", "$JS.API.STREAM.INFO." + s}
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: append(allow, readStream(s)...), Deny: streamAdmin(s)},
			Subscribe: &server.SubjectPermission{Allow: []string{inbox, p + ".notices.>"}},
		}
	case Validator:
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{p + ".validate"}},
			Subscribe: &server.SubjectPermission{Allow: []string{inbox}},
		}
	case Auditor:
		allow := []string{"$JS.API.INFO", "$JS.API.STREAM.INFO." + s}
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: append(allow, readStream(s)...), Deny: streamAdmin(s)},
			Subscribe: &server.SubjectPermission{Allow: []string{inbox}},
		}
	}
	return &server.Permissions{ // an unknown role may do nothing
		Publish:   &server.SubjectPermission{Deny: []string{">"}},
		Subscribe: &server.SubjectPermission{Deny: []string{">"}},
	}
}

// readStream is reading stream s: single messages, and consumers that
// deliver to the reader's own inbox (pull), which it deletes when done.
func readStream(s string) []string {
	return []string{
		"$JS.API.STREAM.MSG.GET." + s,
		"$JS.API.DIRECT.GET." + s, "$JS.API.DIRECT.GET." + s + ".>",
		"$JS.API.CONSUMER.CREATE." + s + ".>",
		"$JS.API.CONSUMER.INFO." + s + ".>",
		"$JS.API.CONSUMER.DELETE." + s + ".>",
		"$JS.API.CONSUMER.MSG.NEXT." + s + ".>",
		"$JS.ACK." + s + ".>", "$JS.FC." + s + ".>",
	}
}

// streamAdmin is what changes or erases stream s: refused to every role,
// even where another rule would allow it.
func streamAdmin(s string) []string {
	return []string{
		"$JS.API.STREAM.DELETE." + s,
		"$JS.API.STREAM.PURGE." + s,
		"$JS.API.STREAM.UPDATE." + s,
		"$JS.API.STREAM.MSG.DELETE." + s,
		"$JS.API.STREAM.RESTORE." + s,
		"$JS.API.STREAM.SNAPSHOT." + s,
		"$JS.API.CONSUMER.DURABLE.CREATE." + s + ".>",
	}
}

// RegionPermissions are those of a regional server's leaf connection to the
// hub whose JetStream domain is hubDomain, written as the leaf sees them (the
// hub reverses them): what the region may send to the hub (Publish) and
// hear from it (Subscribe). It may read the stream and keep the mirror's
// consumer (the hub's JetStream API for that stream only, through the
// domain's prefix), answer its flow control, append events and ask the
// service; it hears replies in the roles' inboxes and JetStream's, the
// mirror's deliveries and the expiry notices. It may not change, purge or
// delete the hub's stream, nor take the service's requests from the hub.
func RegionPermissions(cfg events.Config, hubDomain string) *server.Permissions {
	s, p := cfg.Stream, cfg.Prefix
	api := "$JS." + hubDomain + ".API."
	allow := []string{
		p + ".events.>", p + ".validate", p + ".cmd.>",
		api + "INFO",
		api + "STREAM.INFO." + s,
		api + "STREAM.MSG.GET." + s,
		api + "DIRECT.GET." + s, api + "DIRECT.GET." + s + ".>",
		api + "CONSUMER.CREATE." + s, api + "CONSUMER.CREATE." + s + ".>",
		api + "CONSUMER.INFO." + s + ".>",
		api + "CONSUMER.DELETE." + s + ".>",
		api + "CONSUMER.MSG.NEXT." + s + ".>",
		"$JS.ACK." + s + ".>", "$JS.FC." + s + ".>",
	}
	var deny []string
	for _, d := range streamAdmin(s) {
		deny = append(deny, "$JS."+hubDomain+d[len("$JS"):])
	}
	hear := []string{"$JS.M.>", "$JSC.R.>", p + ".notices.>"}
	for _, r := range []string{Node, Operator, Validator, Auditor} {
		hear = append(hear, InboxPrefix(r)+".>")
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: allow, Deny: deny},
		Subscribe: &server.SubjectPermission{Allow: hear},
	}
}

// RegionUsers are Users on a regional server: the node may also read the
// hub's stream through the hub's domain, where its commands decide and its
// freshness is proven (its appends are the usual subjects).
func RegionUsers(ids map[string]Identity, cfg events.Config, hubDomain string) []*server.NkeyUser {
	users := Users(ids, cfg)
	if id, ok := ids[Node]; ok {
		for _, u := range users {
			if u.Nkey == id.PublicKey() {
				pub := u.Permissions.Publish
				pub.Allow = append(pub.Allow, "$JS."+hubDomain+".API.STREAM.INFO."+cfg.Stream)
				for _, r := range readStream(cfg.Stream) {
					if strings.HasPrefix(r, "$JS.API.") {
						pub.Allow = append(pub.Allow, "$JS."+hubDomain+r[len("$JS"):])
					}
				}
				for _, d := range streamAdmin(cfg.Stream) {
					pub.Deny = append(pub.Deny, "$JS."+hubDomain+d[len("$JS"):])
				}
			}
		}
	}
	return users
}

// Users are the server's nkey users for ids, each with its role's permissions.
func Users(ids map[string]Identity, cfg events.Config) []*server.NkeyUser {
	return HubUsers(ids, cfg, "")
}

// HubUsers are Users on a hub whose JetStream domain is hubDomain, with the
// Region role among ids.
func HubUsers(ids map[string]Identity, cfg events.Config, hubDomain string) []*server.NkeyUser {
	users := make([]*server.NkeyUser, 0, len(ids))
	for _, role := range Roles {
		if id, ok := ids[role]; ok {
			users = append(users, &server.NkeyUser{Nkey: id.PublicKey(), Permissions: Permissions(role, cfg)})
		}
	}
	if id, ok := ids[Region]; ok {
		// Only as a leaf node: the region's identity is not a client's.
		users = append(users, &server.NkeyUser{Nkey: id.PublicKey(), Permissions: RegionPermissions(cfg, hubDomain),
			AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeLeafnode: {}}})
	}
	if id, ok := ids[Admin]; ok {
		users = append(users, &server.NkeyUser{Nkey: id.PublicKey()}) // no limits
	}
	return users
}
