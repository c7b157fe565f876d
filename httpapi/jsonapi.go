package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// cPanel's older route to UAPI, which clients that go through WHM's proxy
// still use:
//
//	/json-api/cpanel?cpanel_jsonapi_apiversion=3&cpanel_jsonapi_module=Tokens&cpanel_jsonapi_func=list&…
//
// It calls the same functions as /execute/Tokens/<func>, with the same
// credentials, and wraps their envelope as cPanel does:
//
//	{"apiversion":3,"func":"list","module":"Tokens","result":{"status":1,…}}
//
// Module and function names are case-sensitive, as in cPanel. Without
// cpanel_jsonapi_apiversion cPanel calls cPanel API 2, which this server does
// not have, so the version must be 3. cpanel_jsonapi_user, which WHM needs
// to pick the account, may be given, and must then be the caller's own
// account. Every refusal, an unknown module, function or version among them,
// is an envelope in the same wrapper.
const jsonAPIPath = "/json-api/cpanel"

// isJSONAPI says whether r is for the json-api route. A request line too
// long to parse has its query in the path, hence a prefix.
func isJSONAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, jsonAPIPath) }

// jsonAPIReply is cPanel's json-api wrapper around a UAPI envelope.
type jsonAPIReply struct {
	APIVersion int      `json:"apiversion"`
	Func       string   `json:"func"`
	Module     string   `json:"module"`
	Result     envelope `json:"result"`
}

// jsonAPIReplier wraps replies to r, naming the module and function it
// asked for: from the query and form once they are read, from the query
// before.
func jsonAPIReplier(r *http.Request) replier {
	return func(w http.ResponseWriter, status int, e envelope) {
		params := r.Form
		if params == nil {
			params = r.URL.Query()
		}
		writeJSON(w, status, jsonAPIReply{
			APIVersion: 3,
			Func:       clip(params.Get("cpanel_jsonapi_func")),
			Module:     clip(params.Get("cpanel_jsonapi_module")),
			Result:     e.withMetadata(),
		})
	}
}

// jsonAPI serves /json-api/cpanel.
func (h *handler) jsonAPI(w http.ResponseWriter, r *http.Request) {
	h.serveUAPI(w, r, jsonAPIReplier(r), func(who principal, form url.Values) (string, int, string) {
		switch v := form.Get("cpanel_jsonapi_apiversion"); v {
		case "3":
		case "":
			return "", http.StatusBadRequest, "Send “cpanel_jsonapi_apiversion=3”: this server answers UAPI calls only, and cPanel calls cPanel API 2 without it."
		default:
			return "", http.StatusBadRequest, fmt.Sprintf("The API version “%s” is not available here: send “cpanel_jsonapi_apiversion=3” for UAPI.", clip(v))
		}
		if user := form.Get("cpanel_jsonapi_user"); user != "" && user != who.account {
			return "", http.StatusForbidden, fmt.Sprintf("This credential is the account “%s”'s and cannot act as “%s”.", who.account, clip(user))
		}
		return lookup(form.Get("cpanel_jsonapi_module"), form.Get("cpanel_jsonapi_func"))
	})
}
