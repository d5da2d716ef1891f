// Package keylens is keylens's domain: developers, key requests, keys
// (hashes only, never raw keys), OAuth clients, the catalogue and the
// portal configuration, per-key hit counters and the change feed; the
// service interfaces that store them, with their contracts; one error type
// with a few codes (error.go); and the Tyk facts the rest must match: key
// generation and hashing (key.go), password hashing.
//
// How the layers depend on each other:
//
//	cmd/keylens           wires everything; main only parses, runs, exits
//	web                   the admin console and the developer portal
//	rest                  Tyk Classic Portal REST API (net/http) and its
//	                      client; the error code ↔ HTTP status table
//	sqlstore              SQLite and PostgreSQL: persists, does not decide
//	sidecar, analytics    the resolver and fasthttp server; the hit committer
//	keylens (the root)    this package: the domain, depending on nothing of
//	                      keylens's but the shared contract module below
//	identity, identity/…  the contract every part shares, the Tyk plugin
//	                      included: identity headers, the credential cache,
//	                      the hit pipeline (identity/hits); stdlib only
//
// Storage and transports depend on this package, never on each other:
// sqlstore does not import rest, the sidecar does not import rest, and the
// domain imports neither, nor net/http: error codes become HTTP statuses in
// rest, whose table web answers with too (the one thing web takes from
// rest). Rules (validation, merging an update, what an approval issues, how
// a key reference becomes a hash) live here as plain functions, so that
// every backend applies the same ones.
package keylens
