package identity

import (
	"bytes"
	"encoding/json"
	"unsafe"
)

// IsJWT is keylens's one rule for "this credential is a JWT" (after any
// "Bearer " is removed), shared by the sidecar and the Tyk plugin so that
// both treat a credential alike: exactly two dots, and a first segment
// that is unpadded base64url of a JSON object with an "alg" member whose
// value is a string (a JOSE header, RFC 7515). Anything else, an API key
// with two dots among them, is not a JWT. Whether a JWT is valid is for
// its verification to say.
//
// A credential with other than two dots costs at most three byte
// searches. It allocates nothing for headers up to 384 bytes, so both can
// ask on every request, and a first segment longer than maxJOSEHeader is
// no JWT: a client cannot make it allocate more.
func IsJWT(token []byte) bool {
	first := bytes.IndexByte(token, '.')
	if first <= 0 || first > maxJOSEHeader {
		return false
	}
	second := bytes.IndexByte(token[first+1:], '.')
	if second < 0 || bytes.IndexByte(token[first+1+second+1:], '.') >= 0 {
		return false
	}
	var stack [384]byte
	buf := stack[:]
	if n := first * 3 / 4; n > len(buf) {
		buf = make([]byte, n)
	}
	n, ok := decodeBase64URL(token[:first], buf)
	return ok && isJOSEHeader(buf[:n])
}

// maxJOSEHeader bounds a JWT's first segment: 16 KiB of base64url, 12 KiB
// of header, room for a certificate chain in x5c.
const maxJOSEHeader = 16 << 10

// IsJWTString is IsJWT for a string, without copying it.
func IsJWTString(token string) bool {
	return IsJWT(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// decodeBase64URL decodes src, unpadded base64url (RFC 4648 §5), into dst,
// which holds len(src)*3/4 bytes; ok is false for any other text.
func decodeBase64URL(src, dst []byte) (n int, ok bool) {
	if len(src)%4 == 1 {
		return 0, false
	}
	var acc uint32
	bits := 0
	for _, c := range src {
		var v byte
		switch {
		case c >= 'A' && c <= 'Z':
			v = c - 'A'
		case c >= 'a' && c <= 'z':
			v = c - 'a' + 26
		case c >= '0' && c <= '9':
			v = c - '0' + 52
		case c == '-':
			v = 62
		case c == '_':
			v = 63
		default:
			return 0, false
		}
		acc = acc<<6 | uint32(v)
		if bits += 6; bits >= 8 {
			bits -= 8
			dst[n] = byte(acc >> bits)
			n++
		}
	}
	// The bits left over must be zero, as a canonical encoder writes them.
	return n, acc&(1<<bits-1) == 0
}

// isJOSEHeader reports whether b is a JSON object with a top-level "alg"
// member holding a string. The name is compared as written: a JOSE
// header's member names are case-sensitive and need no escapes.
func isJOSEHeader(b []byte) bool {
	// An object first: json.Valid allocates its error for anything else.
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' || !json.Valid(b) {
		return false
	}
	i++
	alg := false // as of the last "alg" member, as a JSON decoder reads duplicates
	for {
		i = skipSpace(b, i)
		if b[i] == '}' {
			return alg // an empty object
		}
		// A member: "name" : value. b is valid JSON, so each token is
		// where the grammar puts it.
		nameEnd := stringEnd(b, i)
		name := b[i+1 : nameEnd]
		i = skipSpace(b, skipSpace(b, nameEnd+1)+1) // past ':'
		if string(name) == "alg" {
			alg = b[i] == '"'
		}
		// Skip the value, to the ',' or '}' that ends it at this depth.
		for depth := 0; ; i++ {
			c := b[i]
			if c == '"' {
				i = stringEnd(b, i)
			} else if c == '{' || c == '[' {
				depth++
			} else if (c == '}' || c == ']') && depth > 0 {
				depth--
			} else if c == '}' {
				return alg // the object's end
			} else if c == ',' && depth == 0 {
				i++
				break
			}
		}
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the quote closing the JSON string that
// opens at b[i].
func stringEnd(b []byte, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i
}
