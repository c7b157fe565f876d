package access

import (
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

// Users are the server's nkey users for ids, each with its role's permissions.
func Users(ids map[string]Identity, cfg events.Config) []*server.NkeyUser {
	users := make([]*server.NkeyUser, 0, len(ids))
	for _, role := range Roles {
		if id, ok := ids[role]; ok {
			users = append(users, &server.NkeyUser{Nkey: id.PublicKey(), Permissions: Permissions(role, cfg)})
		}
	}
	if id, ok := ids[Admin]; ok {
		users = append(users, &server.NkeyUser{Nkey: id.PublicKey()}) // no limits
	}
	return users
}
