package segmentapi

import (
	"fmt"
	"net/http"
)

// Code classifies a client error for metrics and for callers that want to
// react programmatically.
type Code string

const (
	CodeInvalidJSON     Code = "invalid_json"
	CodeInvalidUTF8     Code = "invalid_utf8"
	CodeTooDeep         Code = "too_deep"
	CodeTooLarge        Code = "too_large"
	CodeTooManyEvents   Code = "too_many_events"
	CodeEmptyBatch      Code = "empty_batch"
	CodeInvalidField    Code = "invalid_field"
	CodeMissingField    Code = "missing_field"
	CodeMissingIdentity Code = "missing_identity"
	CodeDuplicateKey    Code = "duplicate_key"
	CodeUnknownType     Code = "unknown_type"
)

// Error is one thing wrong with a request, precise enough for the sender to
// fix it: which event (Index, -1 for the request itself), which field (a
// JSON pointer into that event or the request), and why.
type Error struct {
	Status  int    `json:"-"`
	Code    Code   `json:"code"`
	Index   int    `json:"index"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	where := ""
	if e.Index >= 0 {
		where = fmt.Sprintf("batch[%d]", e.Index)
	}
	if e.Field != "" {
		where += e.Field
	}
	if where == "" {
		return e.Message
	}
	return where + ": " + e.Message
}

func badRequest(code Code, index int, field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Index: index, Field: field, Message: fmt.Sprintf(format, args...)}
}

func tooLarge(index int, format string, args ...any) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Index: index, Message: fmt.Sprintf(format, args...)}
}
