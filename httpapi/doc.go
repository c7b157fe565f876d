// Package httpapi is tokenledger's HTTP transport: the health endpoints that
// orchestrators probe, and (see shared/CONTRACT.md section 5) the place for
// the cPanel-compatible UAPI and the panel.
package httpapi
