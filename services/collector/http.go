package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/firstparty/firstparty/pkg/segmentapi"
	"github.com/firstparty/firstparty/pkg/traceid"
)

// Paths: Segment's /v1/<call>, and the one-letter forms analytics.js (Segment's
// analytics-next) posts to.
var shortPaths = map[string]segmentapi.Call{
	"t": segmentapi.CallTrack, "i": segmentapi.CallIdentify, "p": segmentapi.CallPage,
	"s": segmentapi.CallScreen, "g": segmentapi.CallGroup, "a": segmentapi.CallAlias, "b": segmentapi.CallBatch,
}

type httpHandler struct {
	in   *ingestor
	cfg  Config
	bufs sync.Pool
}

func newHTTPHandler(in *ingestor, cfg Config) *httpHandler {
	return &httpHandler{in: in, cfg: cfg, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

func (h *httpHandler) register(mux *http.ServeMux) {
	for _, c := range segmentapi.Calls {
		h.route(mux, "/v1/"+string(c), c)
	}
	for p, c := range shortPaths {
		h.route(mux, "/v1/"+p, c)
	}
}

func (h *httpHandler) route(mux *http.ServeMux, path string, call segmentapi.Call) {
	mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, call, path) })
	mux.HandleFunc("OPTIONS "+path, h.preflight)
}

// corsOrigin returns the Access-Control-Allow-Origin value for origin, or "".
func (h *httpHandler) corsOrigin(origin string) string {
	if origin == "" {
		return ""
	}
	for _, o := range h.cfg.CORSOrigins {
		if o == "*" {
			return "*" // credentials are refused with * at config time
		}
		if strings.EqualFold(o, origin) {
			return origin
		}
	}
	return ""
}

func (h *httpHandler) setCORS(w http.ResponseWriter, r *http.Request) bool {
	allow := h.corsOrigin(r.Header.Get("Origin"))
	if allow == "" {
		return false
	}
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", allow)
	if allow != "*" {
		hd.Add("Vary", "Origin")
		if h.cfg.CORSCredentials {
			hd.Set("Access-Control-Allow-Credentials", "true")
		}
	}
	hd.Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id")
	return true
}

func (h *httpHandler) preflight(w http.ResponseWriter, r *http.Request) {
	if !h.setCORS(w, r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	hd := w.Header()
	hd.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding, X-Request-Id, traceparent")
	hd.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

func (h *httpHandler) serve(w http.ResponseWriter, r *http.Request, call segmentapi.Call, path string) {
	start := time.Now()
	meta := requestMeta{
		origin: r.Header.Get("Origin"), userAgent: r.UserAgent(),
		ip:  clientIP(r.RemoteAddr, r.Header.Get("X-Forwarded-For"), &h.cfg),
		api: "http", endpoint: path, receivedAt: start.UTC(),
		requestID: uuid.NewString(),
	}
	if id, ok := traceid.FromTraceparent(r.Header.Get("traceparent")); ok {
		meta.traceID = id
	} else {
		meta.traceID = traceid.New()
	}
	meta.writeKey = basicUser(r.Header.Get("Authorization"))
	h.setCORS(w, r)
	w.Header().Set("X-Request-Id", meta.requestID)

	o := h.handle(r, call, meta)
	h.in.m.requests.WithLabelValues(string(call), strconv.Itoa(o.status)).Inc()
	h.in.m.requestSeconds.WithLabelValues(string(call)).Observe(time.Since(start).Seconds())
	writeOutcome(w, o)
}

func (h *httpHandler) handle(r *http.Request, call segmentapi.Call, meta requestMeta) outcome {
	// Content-Type is not checked: SDKs label the same JSON body
	// application/json, text/plain (browsers, to avoid a preflight) or even
	// application/x-www-form-urlencoded (RudderStack's Node SDK). The JSON
	// decoder answers a body that is not JSON with a precise 400.
	limit := h.in.cfg.Limits.MaxBodyBytes(call)
	buf := h.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 { // do not keep an outsized buffer alive
			h.bufs.Put(buf)
		}
	}()
	if o, ok := readBody(r, buf, limit); !ok {
		return o
	}
	n := buf.Len()
	if !h.in.acquire(n) {
		o := fail(http.StatusServiceUnavailable, "overloaded", "the collector is holding its maximum of request bytes; retry")
		o.retryAfter = time.Second
		return o
	}
	defer h.in.release(n)
	return h.in.ingest(r.Context(), call, buf.Bytes(), meta)
}

// readBody reads the request body into buf, decompressing gzip, and refuses
// a body whose decompressed size exceeds limit without reading more than
// limit+1 bytes of it (a zip bomb costs us nothing).
func readBody(r *http.Request, buf *bytes.Buffer, limit int) (outcome, bool) {
	var src io.Reader = http.MaxBytesReader(nil, r.Body, int64(limit)+1)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(src)
		if err != nil {
			return fail(http.StatusBadRequest, "invalid_gzip", "Content-Encoding is gzip but the body is not gzip: %v", err), false
		}
		defer gz.Close()
		src = gz
	default:
		return fail(http.StatusUnsupportedMediaType, "unsupported_encoding", "Content-Encoding %q is not supported: send gzip or no encoding", enc), false
	}
	_, err := buf.ReadFrom(io.LimitReader(src, int64(limit)+1))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || buf.Len() > limit {
		return fail(http.StatusRequestEntityTooLarge, "too_large", "request body exceeds %d bytes (after decompression), the limit for this call", limit), false
	}
	if err != nil {
		return fail(http.StatusBadRequest, "unreadable_body", "reading the body: %v", err), false
	}
	return outcome{}, true
}

// basicUser returns the user name of a Basic Authorization header: Segment's
// write key, with an empty password.
func basicUser(h string) string {
	const prefix = "basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return ""
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil {
		return ""
	}
	user, _, _ := strings.Cut(string(dec), ":")
	return user
}

type errorBody struct {
	Success bool                `json:"success"`
	Code    string              `json:"code,omitempty"`
	Message string              `json:"message,omitempty"`
	Errors  []*segmentapi.Error `json:"errors,omitempty"`
}

func writeOutcome(w http.ResponseWriter, o outcome) {
	w.Header().Set("Content-Type", "application/json")
	if o.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((o.retryAfter+time.Second-1)/time.Second)))
	}
	if o.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="firstparty", charset="UTF-8"`)
	}
	w.WriteHeader(o.status)
	if o.status == http.StatusOK {
		_, _ = w.Write([]byte(`{"success":true}` + "\n"))
		return
	}
	_ = json.NewEncoder(w).Encode(errorBody{Code: o.code, Message: o.message, Errors: o.errors})
}
