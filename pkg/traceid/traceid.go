// Package traceid carries one id per request from the HTTP edge, through every
// Kafka topic (as a message header), to the ClickHouse row, so any event can
// be traced end to end. Ids are W3C trace-context trace ids (32 lowercase hex
// digits), so a caller's `traceparent` header is honoured.
package traceid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Header is the Kafka message header that carries the trace id.
const Header = "fp-trace-id"

type ctxKey struct{}

// New returns a fresh random trace id.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the trace id carried by ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Valid reports whether id is 32 lowercase hex digits and not all zero.
func Valid(id string) bool {
	if len(id) != 32 || id == strings.Repeat("0", 32) {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// FromTraceparent extracts the trace id from a W3C traceparent header
// ("00-<trace-id>-<parent-id>-<flags>"); ok is false when it is malformed.
func FromTraceparent(h string) (id string, ok bool) {
	parts := strings.Split(strings.TrimSpace(h), "-")
	if len(parts) != 4 || len(parts[0]) != 2 || parts[0] == "ff" || !Valid(parts[1]) {
		return "", false
	}
	return parts[1], true
}
