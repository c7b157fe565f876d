package events

import (
	"errors"
	"fmt"
)

// Error codes. Each transport maps them to its own form (exit status, HTTP
// status, reply code) in one table; any error without a code is Internal.
const (
	Invalid      = "invalid"
	NotFound     = "not_found"
	Duplicate    = "duplicate"
	Conflict     = "conflict"
	Unauthorized = "unauthorized"
	Unavailable  = "unavailable"
	Internal     = "internal"
)

// Error is an error that knows what kind of failure it is. It is made where the
// fact is known and wrapped with %w on the way up.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf makes an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, Internal for
// any other error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the readable message of the first *Error in err's
// chain; other errors are internal and say so without their details.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
