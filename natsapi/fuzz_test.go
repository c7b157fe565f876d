package natsapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"tokenledger/events"
	"tokenledger/projections"
)

// FuzzParseValidate: any request body parses without a crash, an account it
// lets through is a valid account, and the hand-read plain form agrees with
// encoding/json (unmarshalValidate, the path the service takes for any other
// body) on every body it accepts.
func FuzzParseValidate(f *testing.F) {
	for _, s := range []string{`{"token":"ABC","account":"bob"}`, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "", "{", `{"account":"bob.>"}`,
		`{"token":null}`, " \n ", strings.Repeat("{", 100), `{}`, `{ "account" : "bob" , "token" : "X" }`, `{"token":"A","token":"B"}`,
		`{"Token":"A"}`, `{"token":"A\u0042"}`, `{"token":"A"}x`, `{"token":"A",}`, `{"token":"é"}`, "{\"token\":\"A\x00\"}", `{"token":"A","ip":"192.0.2.1"}`, `{"ip":"a","ip":"b"}`,
		`{"token":"A","feature":"email"}`, `{"token":"A","feature":""}`, `{"token":"A","feature":null}`, `{"token":"A","feature":1}`,
		`{"token":"A","features":["email","ftp"]}`, `{"token":"A","features":[]}`, `{"token":"A","features":[ "a" , "b" ]}`, `{"token":"A","features":null}`,
		`{"token":"A","features":["a",]}`, `{"token":"A","features":[,]}`, `{"token":"A","features":"a"}`, `{"token":"A","features":[1]}`, `{"token":"A","features":["a"],"features":["b"]}`,
		`{"token":"A","write":true}`, `{"token":"A","write":false}`, `{"token":"A","write":1}`, `{"token":"A","write":"true"}`, `{"token":"A","write":null}`, `{"token":"A","write":tru}`,
		`{"token":"A","write":true,"write":false}`, `{"token":"A","feature":"email","features":["ftp"],"write":true,"account":"bob","ip":"::1"}`,
		`{"token":"A","Write":true}`, `{"token":"A","scope":"email"}`, `{"token":"A","features":["\u0061"]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, ok := parseValidate(body)
		if ok && v.Account != "" && events.CheckAccount(v.Account) != nil {
			t.Fatalf("account %q let through", v.Account)
		}
		if ok && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) && bytes.Contains(body, []byte(`"feature":""`)) {
			t.Fatalf("%q: an empty feature let through", body)
		}
		if have, simple := parseFlatRequest(bytes.Trim(body, " \t\r\n")); simple {
			want, ok := unmarshalValidate(body)
			if !ok || !reflect.DeepEqual(have, want) {
				t.Fatalf("%q: read by hand as %+v; encoding/json: %+v, %v", body, have, want, ok)
			}
			var loose ValidateRequest
			if err := json.Unmarshal(body, &loose); err != nil || !reflect.DeepEqual(have, loose) {
				t.Fatalf("%q: read by hand as %+v; json.Unmarshal: %+v, %v", body, have, loose, err)
			}
		}
	})
}

// FuzzValidateReply: the hand-written reply to the table's answer is what
// json.Marshal writes of the ValidateReply it stands for (wireReply).
func FuzzValidateReply(f *testing.F) {
	id := []byte(events.NewTokenID().String())
	f.Add(true, "", "bob", id, "deploy", int64(1795564799), "active", "", 0, false)
	f.Add(false, "unknown", "", []byte{}, "", int64(0), "", "", -1, false)
	f.Add(false, "", "bob", id, "deploy", int64(0), "", "", 2, true)
	f.Add(true, "", "b\"o\\b", []byte("<&>"), "\u2028é\x00\xff", int64(-1), "expiring", "a<b", 3, true)
	f.Add(true, "", "bob", id, "deploy", int64(0), "active", "email", 2, true)
	f.Add(true, "", "", []byte{}, "", int64(0), "", "", -1, false)
	f.Fuzz(func(t *testing.T, valid bool, reason, account string, idBytes []byte, name string, expires int64, status, feature string, features int, readOnly bool) {
		r := projections.Result{Valid: valid, Reason: reason, Account: account, Status: status, ReadOnly: readOnly}
		r.SetName(name) // cut to a token name's length, as the table never holds a longer one
		copy(r.TokenID[:], idBytes)
		if expires != 0 {
			r.ExpiresAt = &expires
		}
		if features >= 0 { // -1: nil, full access; 0: [], which the table does not give
			r.Features = []string{}
			for i := range features % 5 {
				r.Features = append(r.Features, feature+strings.Repeat("x", i))
			}
		}
		want, _ := json.Marshal(wireReply(r))
		if have := appendValidateReply(nil, r); !bytes.Equal(have, want) {
			t.Fatalf("have %s, want %s", have, want)
		}
	})
}

// wireReply is the ValidateReply that the table's answer r stands for: what
// appendValidateReply writes, by reflection.
func wireReply(r projections.Result) ValidateReply {
	if !r.Valid {
		return ValidateReply{Reason: r.Reason}
	}
	return ValidateReply{Valid: true, Account: r.Account, TokenID: r.TokenID.String(), Name: r.Name(), ExpiresAt: r.ExpiresAt, Status: r.Status,
		Features: listed(r.Features), ReadOnly: r.ReadOnly}
}
