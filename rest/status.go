package rest

import (
	"net/http"

	"github.com/keylens/keylens"
)

// errorStatus is the one table between error codes and HTTP statuses:
// every transport (the REST API, the console) answers with it, and the
// REST client reads statuses back through it.
var errorStatus = map[string]int{
	keylens.ECONFLICT:     http.StatusConflict,
	keylens.EINVALID:      http.StatusBadRequest,
	keylens.ENOTFOUND:     http.StatusNotFound,
	keylens.EUNAUTHORIZED: http.StatusUnauthorized,
	keylens.EFORBIDDEN:    http.StatusForbidden,
	keylens.EINTERNAL:     http.StatusInternalServerError,
	keylens.EUNAVAILABLE:  http.StatusServiceUnavailable,
	keylens.EFULL:         http.StatusInsufficientStorage,
	keylens.ELIMITED:      http.StatusTooManyRequests,
	keylens.EBADGATEWAY:   http.StatusBadGateway,
}

// statusCode is errorStatus the other way round.
var statusCode = func() map[int]string {
	m := make(map[int]string, len(errorStatus))
	for code, status := range errorStatus {
		m[status] = code
	}
	return m
}()

// HTTPStatus is the HTTP status that answers an error of code (500 for a
// code it does not know).
func HTTPStatus(code string) int {
	if s, ok := errorStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeOfStatus is the error code an HTTP status stands for; "" for a
// status no code maps to.
func CodeOfStatus(status int) string { return statusCode[status] }
