// Package identity is what keylens shares with gateways: the code that
// both the keylens sidecar (which nginx, Traefik, Envoy and other gateways
// ask over HTTP) and the Tyk Go plugin (which runs inside the Tyk gateway)
// are built on, so that the two answer a credential alike. It holds the
// contract between keylens, gateways and the services behind them:
//
//   - Identity, the developer behind a key, and the upstream header
//     contract (HeaderNames, Headers, IsIdentityHeader), with the one
//     sanitising of header names and values;
//   - IsJWT, the one rule for "this credential is a JWT";
//   - Client, a cached client that asks a sidecar who a key belongs to
//     (GET /developer, OutcomeHeader), and the change feed it and the
//     plugin follow to drop stale answers (Change, Changes, Follow);
//   - Verifier, for services behind a gateway, which checks the identity
//     assertion a sidecar signs (AssertionClaims).
//
// Its subpackages:
//
//   - cache: the fixed-capacity credential cache of the sidecar, the
//     plugin and Client, keyed by a per-process CredentialDigest;
//   - clock: the one clock of their request paths;
//   - hits: the hit pipeline and the POST /hits wire format, shared by
//     the keylens binary and the plugin.
//
// It is a module of its own, depending on the standard library and
// golang-jwt only, so that a Tyk Go plugin, which shares its dependencies
// with the gateway, can carry it. The rest of keylens (the portal, the
// store, the admin API) stays out of it.
package identity

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Identity is the developer behind a key.
type Identity struct {
	DeveloperID string            `json:"developer_id"`
	Email       string            `json:"email"`
	OrgID       string            `json:"org_id"`
	Fields      map[string]string `json:"fields"`
	// KeyID is the key's hash, never the key.
	KeyID            string         `json:"key_id"`
	Policies         []string       `json:"policies"`
	KeyRequestFields map[string]any `json:"key_request_fields"`
	// Expires is when the credential stops being valid (Unix seconds),
	// when known: a JWT's exp, an OAuth token's. 0 means no expiry known.
	Expires int64 `json:"expires,omitempty"`
	// ClientID is the OAuth client an access token was issued to; empty
	// for other credentials. KeyID is then the token's hash.
	ClientID string `json:"client_id,omitempty"`
	// IssuedAt is when an OAuth access token was issued (Unix seconds).
	IssuedAt int64 `json:"issued_at,omitempty"`
}

// HeaderNames are the upstream header names; configurable, with
// DefaultHeaderNames as the contract's defaults. FieldPrefix and
// KeyRequestFieldPrefix are followed by the field's name.
type HeaderNames struct {
	DeveloperID           string
	Email                 string
	KeyID                 string
	Policies              string
	FieldPrefix           string
	KeyRequestFieldPrefix string
	Assertion             string
	// Truncated is set to "true" when custom fields were left out to keep
	// the identity headers within their size limit.
	Truncated string
}

// DefaultHeaderNames are the names of the upstream header contract.
var DefaultHeaderNames = HeaderNames{
	DeveloperID:           "X-Developer-Id",
	Email:                 "X-Developer-Email",
	KeyID:                 "X-Key-Id",
	Policies:              "X-Developer-Policies",
	FieldPrefix:           "X-Developer-Field-",
	KeyRequestFieldPrefix: "X-Key-Request-Field-",
	Assertion:             "X-Developer-Assertion",
	Truncated:             "X-Developer-Fields-Truncated",
}

// IsIdentityHeader reports whether a request header of this name claims an
// identity: those must be removed from anything a client sends before
// keylens adds its own. Names compare ignoring case.
func (n HeaderNames) IsIdentityHeader(name string) bool {
	for _, exact := range []string{n.DeveloperID, n.Email, n.KeyID, n.Policies, n.Assertion, n.Truncated} {
		if exact != "" && strings.EqualFold(name, exact) {
			return true
		}
	}
	for _, prefix := range []string{n.FieldPrefix, n.KeyRequestFieldPrefix} {
		if prefix != "" && len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) {
			return true
		}
	}
	return false
}

// Header is one header to send upstream.
type Header struct{ Name, Value string }

// MaxHeaderValue bounds one header value; longer values are cut.
const MaxHeaderValue = 4096

// DefaultMaxHeaderBytes bounds the identity headers of one request (names,
// values and separators), well inside nginx's default proxy_buffer_size
// and the header limits of common servers.
const DefaultMaxHeaderBytes = 8 << 10

// Headers returns the identity as upstream headers within
// DefaultMaxHeaderBytes (HeadersWithin).
func (id *Identity) Headers(n HeaderNames) []Header {
	hs, _ := id.HeadersWithin(n, DefaultMaxHeaderBytes)
	return hs
}

// HeadersWithin returns the identity as upstream headers, in a stable
// order: fixed headers first, then custom fields sorted by name. Field
// names are reduced to header-safe characters and values stripped of
// control characters, so that no field can inject a header. Custom fields
// that would take the headers past max bytes (each header counting its
// name, value and ": " and CRLF) are left out, in order, and the
// Truncated header says so; truncated reports it. The fixed headers always
// go. The sidecar and the Tyk plugin both build their headers here.
func (id *Identity) HeadersWithin(n HeaderNames, max int) (hs []Header, truncated bool) {
	hs = make([]Header, 0, 5+len(id.Fields)+len(id.KeyRequestFields))
	size := 0
	add := func(name, value string, custom bool) {
		if name == "" || value == "" {
			return
		}
		value = SanitizeValue(value)
		cost := len(name) + len(value) + 4
		if custom && (truncated || size+cost > max-truncationCost(n)) {
			truncated = true
			return
		}
		size += cost
		hs = append(hs, Header{name, value})
	}
	add(n.DeveloperID, id.DeveloperID, false)
	add(n.Email, id.Email, false)
	add(n.KeyID, id.KeyID, false)
	add(n.Policies, strings.Join(id.Policies, ","), false)
	if n.FieldPrefix != "" {
		for _, k := range sortedKeys(id.Fields) {
			if name := HeaderToken(k); name != "" {
				add(n.FieldPrefix+name, id.Fields[k], true)
			}
		}
	}
	if n.KeyRequestFieldPrefix != "" {
		for _, k := range sortedKeys(id.KeyRequestFields) {
			if name := HeaderToken(k); name != "" {
				add(n.KeyRequestFieldPrefix+name, FieldString(id.KeyRequestFields[k]), true)
			}
		}
	}
	if truncated && n.Truncated != "" {
		hs = append(hs, Header{n.Truncated, "true"})
	}
	return hs, truncated
}

// truncationCost is the room kept for the Truncated header itself.
func truncationCost(n HeaderNames) int {
	if n.Truncated == "" {
		return 0
	}
	return len(n.Truncated) + len("true") + 4
}

// FieldString renders a key-request field value as text: strings as they
// are, numbers and booleans as Go formats them, anything else as JSON.
func FieldString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return ""
		}
		return string(b)
	}
}

// HeaderToken reduces a field name to the characters a header name may
// safely carry ([A-Za-z0-9-]; spaces and underscores become '-'), so that
// "Use case" becomes "Use-case".
func HeaderToken(name string) string {
	var b strings.Builder
	for i := 0; i < len(name) && b.Len() < 128; i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
			b.WriteByte(c)
		case c == ' ' || c == '_':
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// MetaToken reduces a field name to [A-Za-z0-9_-], the form of the
// flattened session metadata keys (tyk_key_request_fields_<name>).
func MetaToken(name string) string {
	var b strings.Builder
	for i := 0; i < len(name) && b.Len() < 128; i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('_')
		}
	}
	return b.String()
}

// SanitizeValue makes s safe as a header value: control characters (CR and
// LF among them) become spaces, and it is cut to MaxHeaderValue bytes on a
// UTF-8 boundary.
func SanitizeValue(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			clean = false
			break
		}
	}
	if !clean {
		b := []byte(s)
		for i, c := range b {
			if c < 0x20 || c == 0x7f {
				b[i] = ' '
			}
		}
		s = string(b)
	}
	if len(s) > MaxHeaderValue {
		cut := MaxHeaderValue
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		s = s[:cut]
	}
	return strings.TrimSpace(s)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
