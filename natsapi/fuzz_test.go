package natsapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"tokenledger/events"
)

// FuzzParseValidate: any request body parses without a crash, an account it
// lets through is a valid account, and the hand-read plain form agrees with
// encoding/json on every body it accepts.
func FuzzParseValidate(f *testing.F) {
	for _, s := range []string{`{"token":"ABC","account":"bob"}`, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "", "{", `{"account":"bob.>"}`,
		`{"token":null}`, " \n ", strings.Repeat("{", 100), `{}`, `{ "account" : "bob" , "token" : "X" }`, `{"token":"A","token":"B"}`,
		`{"Token":"A"}`, `{"token":"A\u0042"}`, `{"token":"A"}x`, `{"token":"A",}`, `{"token":"é"}`, "{\"token\":\"A\x00\"}", `{"token":"A","ip":"192.0.2.1"}`, `{"ip":"a","ip":"b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, ok := parseValidate(body)
		if ok && v.Account != "" && events.CheckAccount(v.Account) != nil {
			t.Fatalf("account %q let through", v.Account)
		}
		if have, simple := parseFlatRequest(bytes.Trim(body, " \t\r\n")); simple {
			var want ValidateRequest
			if err := json.Unmarshal(body, &want); err != nil || have != want {
				t.Fatalf("%q: read by hand as %+v; encoding/json: %+v, %v", body, have, want, err)
			}
		}
	})
}

// FuzzValidateReply: the hand-written reply is what json.Marshal writes.
func FuzzValidateReply(f *testing.F) {
	f.Add(true, "", "bob", "01KAT8ZQ4Y7M3J9W2X5R6B1C0D", "deploy", int64(1795564799), "active")
	f.Add(false, "unknown", "", "", "", int64(0), "")
	f.Add(true, "", "b\"o\\b", "<&>", "\u2028é\x00\xff", int64(-1), "expiring")
	f.Fuzz(func(t *testing.T, valid bool, reason, account, tokenID, name string, expires int64, status string) {
		r := ValidateReply{Valid: valid, Reason: reason, Account: account, TokenID: tokenID, Name: name, Status: status}
		if expires != 0 {
			r.ExpiresAt = &expires
		}
		want, _ := json.Marshal(r)
		if have := appendValidateReply(nil, r); !bytes.Equal(have, want) {
			t.Fatalf("have %s, want %s", have, want)
		}
	})
}
