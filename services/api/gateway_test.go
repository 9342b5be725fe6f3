package main

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/httpbody"
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
		after  string
		ok     bool
	}{
		{"", 0, "", true},
		{"17", 17, "", true},
		{"17.p_01a2-bc", 17, "p_01a2-bc", true},
		{"0.p.x", 0, "p.x", true},
		{"17.", 0, "", false},
		{".p_1", 0, "", false},
		{"x", 0, "", false},
		{"-1", 0, "", false},
		{"18446744073709551616", 0, "", false},
		{"1." + strings.Repeat("p", 129), 0, "", false},
	} {
		c, a, err := parseSearchCursor(tt.in)
		if (err == nil) != tt.ok || c != tt.cursor || a != tt.after {
			t.Errorf("parseSearchCursor(%q) = %d, %q, %v", tt.in, c, a, err)
		}
	}
}

func FuzzParseSearchCursor(f *testing.F) {
	for _, s := range []string{"", "17", "17.p_1", "x.y", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, after, err := parseSearchCursor(s)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("%q: %v is not INVALID_ARGUMENT", s, err)
			}
			return
		}
		if want := strconv.FormatUint(c, 10); after != "" {
			want += "." + after
			if want != s {
				t.Fatalf("%q read as %d, %q", s, c, after)
			}
		}
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

// TestChunkWriter: the export goes out in pieces of at most exportChunk
// bytes, whatever the size of a write; the first says it is JSON.
func TestChunkWriter(t *testing.T) {
	var got [][]byte
	var types []string
	cw := &chunkWriter{send: func(m *httpbody.HttpBody) error {
		got, types = append(got, m.Data), append(types, m.ContentType)
		return nil
	}}
	data := []byte(strings.Repeat("0123456789", 20000)) // 200,000 bytes
	if n, err := cw.Write(data); n != len(data) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	var joined []byte
	for i, c := range got {
		if len(c) > exportChunk || len(c) == 0 {
			t.Errorf("chunk %d has %d bytes", i, len(c))
		}
		joined = append(joined, c...)
	}
	if string(joined) != string(data) || len(got) != 4 || types[0] != "application/json" || types[1] != "" || cw.n != len(data) {
		t.Errorf("%d chunks, types %v, n %d; the data came through intact: %v", len(got), types, cw.n, string(joined) == string(data))
	}
}
