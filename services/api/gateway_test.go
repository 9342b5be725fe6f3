package main

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestErrorBody: every code gets its HTTP status and the Error body keeps
// the server's extra fields; errors without a detail get one built.
func TestErrorBody(t *testing.T) {
	for _, tt := range []struct {
		err   error
		http  int
		code  string
		field string
	}{
		{invalid("bad", withField("id")), 400, "INVALID_ARGUMENT", "id"},
		{rpcError(codes.Unauthenticated, "who"), 401, "UNAUTHENTICATED", ""},
		{rpcError(codes.PermissionDenied, "no", withScope("pii:read")), 403, "PERMISSION_DENIED", ""},
		{missing("gone"), 404, "NOT_FOUND", ""},
		{rpcError(codes.AlreadyExists, "taken"), 409, "ALREADY_EXISTS", ""},
		{rpcError(codes.Aborted, "raced", withVersion(7)), 409, "ABORTED", ""},
		{rpcError(codes.FailedPrecondition, "erased"), 409, "FAILED_PRECONDITION", ""},
		{unavailable("later"), 503, "UNAVAILABLE", ""},
		{status.Error(codes.InvalidArgument, "plain"), 400, "INVALID_ARGUMENT", ""},
		{errors.New("not a status"), 500, "UNKNOWN", ""},
	} {
		body, code := errorBody(tt.err)
		if code != tt.http || body.Code != tt.code || body.Field != tt.field || body.Error == "" {
			t.Errorf("%v: %d %v; want %d %s field %q", tt.err, code, body, tt.http, tt.code, tt.field)
		}
	}
	if b, _ := errorBody(rpcError(codes.Aborted, "raced", withVersion(7))); b.CurrentVersion != 7 {
		t.Errorf("current_version lost: %v", b)
	}
	if b, _ := errorBody(rpcError(codes.PermissionDenied, "no", withScope("pii:read"))); b.Scope != "pii:read" {
		t.Errorf("scope lost: %v", b)
	}
	var mbe = &http.MaxBytesError{Limit: 10}
	if err := gatewayError(mbe); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "over 10 bytes") {
		t.Errorf("body too large: %v", err)
	}
}

func TestParseSearchCursor(t *testing.T) {
	for _, tt := range []struct {
		in     string
		cursor uint64
		skip   int
		ok     bool
	}{
		{"", 0, 0, true},
		{"17", 17, 0, true},
		{"17.4", 17, 4, true},
		{"0.100", 0, 100, true},
		{"17.0", 0, 0, false},
		{"17.", 0, 0, false},
		{".4", 0, 0, false},
		{"x", 0, 0, false},
		{"-1", 0, 0, false},
		{"1.999999999", 0, 0, false},
		{"18446744073709551616", 0, 0, false},
	} {
		c, s, err := parseSearchCursor(tt.in)
		if (err == nil) != tt.ok || c != tt.cursor || s != tt.skip {
			t.Errorf("parseSearchCursor(%q) = %d, %d, %v", tt.in, c, s, err)
		}
	}
}

func FuzzParseSearchCursor(f *testing.F) {
	for _, s := range []string{"", "17", "17.4", "x.y", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, skip, err := parseSearchCursor(s)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("%q: %v is not INVALID_ARGUMENT", s, err)
			}
			return
		}
		if skip < 0 {
			t.Fatalf("%q: negative skip", s)
		}
		_ = c
	})
}

func FuzzParseIdentifier(f *testing.F) {
	for _, s := range []string{"user_id:42", "email:a@b.c", ":", "a:", ":b", "a:b:c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := parseIdentifier(s)
		if ok && (id.Type == "" || id.Value == "" || id.Type+":"+id.Value != s) {
			t.Fatalf("%q parsed as %+v", s, id)
		}
	})
}
