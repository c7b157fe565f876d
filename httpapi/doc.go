// Package httpapi is tokenledger's HTTP transport (docs/http.md
// describes it): the health and metrics endpoints that orchestrators probe, the
// cPanel-compatible UAPI that scripts call, and the "Manage API Tokens" panel
// that people use.
//
// The UAPI (/execute/Tokens/create_full_access, list, rename, revoke) takes
// cPanel's parameter names and answers in UAPI's envelope with cPanel's
// wording and semantics (revoke counts an unknown name as revoked; list
// carries features and metadata.transformed), so a script written for
// cPanel works unchanged; rotate, whitelist_ip on create and
// status/last_used/allowed_ips in list go beyond cPanel with new names only.
// cPanel's older route, /json-api/cpanel with cpanel_jsonapi_apiversion=3,
// calls the same functions and wraps the envelope as cPanel does
// (jsonapi.go). /openapi.json describes all of it (openapi.json, kept true by
// openapi_test.go). It authenticates with "Authorization: cpanel ACCOUNT:TOKEN"
// (validated from the node's in-memory table, against the token's address
// allow-list, and noted to the use recorder) or HTTP Basic with a password
// from the accounts file, an htpasswd file of bcrypt hashes
// (accounts.Passwords). An account only ever sees and changes its own tokens,
// and every change records who made it and from what address. Failed
// credentials are counted by source for /metrics, and an account whose
// password keeps failing is locked for a while (accounts.Guard, which the NATS
// service reports to as well).
//
// A token may be limited to features (issue 18) and may be read-only. The
// UAPI honours both: every Tokens function needs the feature "apitokens"
// (TokensFeature; a token with full access has every feature), and only
// list may be called by a read-only token. A token refused for either is
// answered 403 with status 0 (its credential is good, the right is
// missing), as is one giving more than it has (commands' unauthorized).
// create_full_access takes readonly=1; create_limited_access (not cPanel's)
// takes feature-1, feature-2, … in cPanel's numbered style; set_features
// (not cPanel's) replaces a token's features, and gives full access back
// only with full_access=1. A parameter that would change what a token may
// do is refused by every function that does not take it, never ignored.
//
// The panel is server-rendered HTML with a stylesheet and a little
// JavaScript, all embedded, behind a login with the account's password (of
// at least accounts.MinPassword characters when set): sessions in an HttpOnly,
// SameSite=Strict cookie (Secure under TLS) that end when the account's
// password changes in the accounts file, a CSRF token on the login form
// (bound to a pre-session cookie) and on every change, no secret ever in a
// URL or a log, and no control character shown as it is on a page. A new
// secret is kept in the session for the one GET of the page that shows it,
// which the change redirects to (post/redirect/get).
//
// Both call the node's ledger (commands) and table (projections) in-process,
// through the small Ledger and Table interfaces; neither goes through NATS.
package httpapi
