package keylens

import (
	"errors"
	"fmt"
)

// Error codes. Transports map each to a status code in one place (package
// rest's status.go); only EINTERNAL errors are logged, because every other
// code is a client's doing.
const (
	ECONFLICT     = "conflict"     // the request clashes with what is stored (duplicate email, key owned by another developer)
	EINTERNAL     = "internal"     // a failure that is ours, not the caller's
	EINVALID      = "invalid"      // the input is malformed or breaks a rule
	ENOTFOUND     = "not_found"    // the named object does not exist
	EUNAUTHORIZED = "unauthorized" // the credential is missing or wrong
	EFORBIDDEN    = "forbidden"    // the caller is known but may not do this now (an inactive developer)
	EUNAVAILABLE  = "unavailable"  // cannot be done now; the same request may succeed later
	EFULL         = "full"         // the store is out of space; nothing was written
	ELIMITED      = "limited"      // too many failed attempts: refused for a while
	EBADGATEWAY   = "bad_gateway"  // the API gateway refused or could not be reached; nothing was stored
)

// Error is the one error type the domain returns for expected failures.
// Message is safe to show to the caller.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("keylens error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the *Error wrapped in err, "" for nil and
// EINTERNAL for any other error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of err. Internal errors never
// leak their text.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error"
}
