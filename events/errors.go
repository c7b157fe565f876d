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
	// Account and Names say what the error is about, when it is about
	// tokens (a not_found or a duplicate): the account, and the token names
	// it did not find or found taken, in the order the command gave them.
	// A transport words its reply from them, never from Message, and
	// without a second look at its table.
	Account string
	Names   []string
}

func (e *Error) Error() string { return e.Message }

// Errorf makes an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// About sets what e is about, the account and token names, and returns e:
// events.Errorf(events.NotFound, "no token named %q", n).About(account, n).
func (e *Error) About(account string, names ...string) *Error {
	e.Account, e.Names = account, names
	return e
}

// ErrorNames returns the token names that the first *Error in err's chain
// is about (see Error.Names), nil when it names none.
func ErrorNames(err error) []string {
	var e *Error
	if errors.As(err, &e) {
		return e.Names
	}
	return nil
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
