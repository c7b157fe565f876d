package natsapi

import (
	"strings"
	"testing"

	"tokenledger/events"
)

// FuzzParseValidate: any request body parses without a crash, and an
// account it lets through is a valid account.
func FuzzParseValidate(f *testing.F) {
	for _, s := range []string{`{"token":"ABC","account":"bob"}`, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "", "{", `{"account":"bob.>"}`,
		`{"token":null}`, " \n ", strings.Repeat("{", 100)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, account, ok := parseValidate(body)
		if ok && account != "" && events.CheckAccount(account) != nil {
			t.Fatalf("account %q let through", account)
		}
	})
}
