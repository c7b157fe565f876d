// Package benchtable builds the large tables that benchmarks validate
// against: a hundred tokens in each account, created by events applied as a
// node applies them, and every tenth token's secret kept to ask for.
package benchtable

import (
	"fmt"
	"time"

	"tokenledger/events"
	"tokenledger/projections"
)

// Probe is a live token's secret and account, to validate.
type Probe struct{ Secret, Account string }

// PerAccount is how many tokens each account of a built table holds.
const PerAccount = 100

// Features are some of cPanel's feature names, which a limited table's
// tokens have.
var Features = []string{"email", "ftp", "zoneedit", "ssl", "cron", "mysql", "backup", "webdisk"}

// Build returns a table of accounts*PerAccount live tokens and a probe of
// every tenth. With limited, every token has features: one of eight sets of
// two to nine of Features, each with "api".
func Build(accounts int, limited bool) (*projections.Table, []Probe, error) {
	t := projections.NewTable(projections.DefaultWarn)
	actor := events.Actor{Kind: events.ActorOperator, Name: "bench"}
	at := time.Now()
	seq := uint64(0)
	probes := make([]Probe, 0, accounts*PerAccount/10)
	for a := range accounts {
		var head events.Hash
		account := fmt.Sprintf("a%06d", a)
		for i := range PerAccount {
			seq++
			secret := events.NewSecret()
			d := events.TokenCreated{Name: fmt.Sprintf("token-%d", i), TokenHash: events.HashSecret(secret), FullAccess: true}
			if limited {
				d.Features, d.FullAccess = append([]string{"api"}, Features[:1+i%8]...), false
			}
			e := events.Event{ID: events.NewID(), At: at, Account: account, TokenID: events.NewTokenID(), Actor: actor, Data: d}
			if head != (events.Hash{}) {
				e.Prev = head.String()
			}
			head = events.Digest([]byte(e.ID))
			if err := t.Apply(seq, e, head); err != nil {
				return nil, nil, err
			}
			if i%10 == 0 {
				probes = append(probes, Probe{secret, account})
			}
		}
	}
	return t, probes, nil
}
