package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	apiv1 "github.com/firstparty/firstparty/proto/api/v1"
)

// The admin API is defined once, in proto/api/v1: the gRPC server below
// implements it, and the REST/JSON face is grpc-gateway's translation of
// the same services (the paths are the protos' google.api.http options).
// The gateway reaches the server through an in-memory listener, so both
// faces run the same code, interceptors included, whether or not the
// gRPC port is open.

// maxBody bounds a REST request body (a whole configuration file is the
// largest). maxMessage bounds a gRPC message: the proto form of a JSON body
// can be several times larger (a google.protobuf.Struct, a tracking plan,
// is about 5.5 times its JSON), and the gateway's own messages must pass.
const (
	maxBody    = 4 << 20
	maxMessage = 8 * maxBody
)

// rpcError is a gRPC status carrying the REST Error body's extra fields.
func rpcError(c codes.Code, msg string, extra ...func(*apiv1.Error)) error {
	e := &apiv1.Error{Error: msg, Code: codeName(c)}
	for _, f := range extra {
		f(e)
	}
	st, err := status.New(c, msg).WithDetails(e)
	if err != nil {
		return status.Error(c, msg)
	}
	return st.Err()
}

func withField(f string) func(*apiv1.Error)  { return func(e *apiv1.Error) { e.Field = f } }
func withScope(s string) func(*apiv1.Error)  { return func(e *apiv1.Error) { e.Scope = s } }
func withVersion(v int64) func(*apiv1.Error) { return func(e *apiv1.Error) { e.CurrentVersion = v } }
func invalid(msg string, extra ...func(*apiv1.Error)) error {
	return rpcError(codes.InvalidArgument, msg, extra...)
}
func missing(msg string) error     { return rpcError(codes.NotFound, msg) }
func unavailable(msg string) error { return rpcError(codes.Unavailable, msg) }

// errorBody is the REST answer for err: the Error the server attached, or
// one built from the status (errors of the gateway itself: a malformed
// body, an unknown path).
func errorBody(err error) (*apiv1.Error, int) {
	st := status.Convert(err)
	body := &apiv1.Error{Error: st.Message(), Code: codeName(st.Code())}
	for _, d := range st.Details() {
		if e, ok := d.(*apiv1.Error); ok {
			body = e
		}
	}
	code := runtime.HTTPStatusFromCode(st.Code())
	if st.Code() == codes.FailedPrecondition {
		// The request is well formed but the state refuses it (an erased
		// identifier, identifiers on different profiles): a conflict.
		code = http.StatusConflict
	}
	return body, code
}

// codeName is a code as google.rpc.Code spells it: NOT_FOUND.
func codeName(c codes.Code) string {
	if n, ok := rpccode.Code_name[int32(c)]; ok {
		return n
	}
	return c.String()
}

var jsonOut = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

func writeErrorBody(w http.ResponseWriter, err error) {
	body, code := errorBody(err)
	// Only the fields that apply: no "field": "" beside every message.
	b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// gateway is the REST face of srv's services, served through an
// in-memory connection to srv.
type gateway struct {
	mux  *runtime.ServeMux
	conn *grpc.ClientConn
	ln   *bufconn.Listener
}

func newGateway(ctx context.Context, srv *grpc.Server, register ...func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error) (*gateway, error) {
	ln := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(ln) }()
	conn, err := grpc.NewClient("passthrough:///api",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)))
	if err != nil {
		return nil, err
	}
	json := &runtime.JSONPb{MarshalOptions: jsonOut, UnmarshalOptions: protojson.UnmarshalOptions{}}
	mux := runtime.NewServeMux(
		// Identifiers may hold any character. The path is split at its
		// slashes before it is unescaped, so an escaped slash stays inside
		// its parameter (gateway.ServeHTTP and slashParams).
		runtime.WithUnescapingMode(runtime.UnescapingModeAllExceptSlash),
		runtime.WithMiddlewares(slashParams),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &jsonOrYAML{HTTPBodyMarshaler: &runtime.HTTPBodyMarshaler{Marshaler: json}, yaml: &yamlMarshaler{JSONPb: json}}),
		runtime.WithMarshalerOption("application/yaml", &yamlMarshaler{JSONPb: json}),
		runtime.WithMarshalerOption("application/x-yaml", &yamlMarshaler{JSONPb: json}),
		runtime.WithForwardResponseOption(httpStatus),
		runtime.WithErrorHandler(func(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, _ *http.Request, err error) {
			writeErrorBody(w, gatewayError(err))
		}),
		runtime.WithRoutingErrorHandler(func(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
			msg := "no such endpoint: " + r.Method + " " + r.URL.Path + " (see the OpenAPI document at /v1/openapi.json)"
			c := codes.NotFound
			if code == http.StatusMethodNotAllowed {
				msg, c = r.Method+" is not allowed on "+r.URL.Path, codes.Unimplemented
			}
			writeErrorBody(w, status.Error(c, msg))
		}),
	)
	for _, reg := range register {
		if err := reg(ctx, mux, conn); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	return &gateway{mux: mux, conn: conn, ln: ln}, nil
}

// httpCodeHeader is header metadata by which a method sets its REST
// answer's status (201 when it created something); httpStatus applies it
// and keeps it out of the HTTP headers.
const httpCodeHeader = "x-http-code"

func httpStatus(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	md, ok := runtime.ServerMetadataFromContext(ctx)
	if !ok {
		return nil
	}
	v := md.HeaderMD.Get(httpCodeHeader)
	if len(v) == 0 {
		return nil
	}
	w.Header().Del(runtime.MetadataHeaderPrefix + httpCodeHeader)
	if code, err := strconv.Atoi(v[0]); err == nil && code >= 200 && code < 300 {
		w.WriteHeader(code)
	}
	return nil
}

// slashParams restores the escaped slashes of path parameters (NUL
// stands for them, see gateway.ServeHTTP).
func slashParams(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		for k, v := range params {
			if strings.Contains(v, "\x00") {
				params[k] = strings.ReplaceAll(v, "\x00", "/")
			}
		}
		next(w, r, params)
	}
}

// gatewayError words the gateway's own errors (the request never reached
// the server) for people: a body that does not parse is INVALID_ARGUMENT
// naming what protojson found.
func gatewayError(err error) error {
	st := status.Convert(err)
	if st.Code() == codes.InvalidArgument && len(st.Details()) == 0 {
		msg := st.Message()
		if strings.Contains(msg, "http: request body too large") {
			// The gateway passes a decoding error on as text only.
			return status.Error(codes.InvalidArgument, fmt.Sprintf("the body is over %d bytes (the limit of one request)", maxBody))
		}
		msg = strings.TrimPrefix(msg, "proto: ")
		return status.Error(codes.InvalidArgument, "the request is not valid: "+msg)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return status.Error(codes.InvalidArgument, fmt.Sprintf("the body is over %d bytes", mbe.Limit))
	}
	return err
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if raw := r.URL.RawPath; raw != "" && strings.Contains(strings.ToUpper(raw), "%2F") {
		// An escaped slash inside a parameter: the gateway unescapes
		// everything but %2F, so a literal "%2F" (sent as %252F) could not
		// be told from it. It becomes %00 here, which slashParams turns
		// into the slash (identifiers hold no NUL).
		u := *r.URL
		u.RawPath = strings.NewReplacer("%2F", "%00", "%2f", "%00").Replace(raw)
		r = r.Clone(r.Context())
		r.URL = &u
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	g.mux.ServeHTTP(w, r)
}

func (g *gateway) Close() error {
	err := g.conn.Close()
	_ = g.ln.Close()
	return err
}

// rpcMetrics counts and times every call, gRPC and REST alike (REST calls
// pass through the same server).
type rpcMetrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	log      *slog.Logger
}

func newRPCMetrics(reg prometheus.Registerer, log *slog.Logger) *rpcMetrics {
	m := &rpcMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firstparty_api_calls_total",
			Help: "Admin API calls by method and gRPC code (REST calls included)."}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "firstparty_api_call_seconds",
			Help: "Admin API call duration by method.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}, []string{"method"}),
		log: log,
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.duration)
	}
	return m
}

func (m *rpcMetrics) observe(method string, start time.Time, err error) {
	method = method[strings.LastIndex(method, "/")+1:]
	c := status.Code(err)
	m.calls.WithLabelValues(method, c.String()).Inc()
	m.duration.WithLabelValues(method).Observe(time.Since(start).Seconds())
	if m.log != nil && (c == codes.Unavailable || c == codes.Internal || c == codes.Unknown) {
		m.log.Warn("api call failed", "method", method, "code", c.String(), "err", status.Convert(err).Message())
	}
}

func (m *rpcMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	m.observe(info.FullMethod, start, err)
	return resp, err
}

func (m *rpcMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	m.observe(info.FullMethod, start, err)
	return err
}

// yamlMarshaler reads request bodies sent as application/yaml (a
// configuration file as it is kept in Git) by converting them to JSON
// first; answers are JSON.
type yamlMarshaler struct{ *runtime.JSONPb }

func (m *yamlMarshaler) Unmarshal(data []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(data) // a key given twice is an error, as in sources.ParseConfig
	if err != nil {
		return fmt.Errorf("the YAML does not parse: %w", err)
	}
	return m.JSONPb.Unmarshal(j, v)
}

func (m *yamlMarshaler) NewDecoder(r io.Reader) runtime.Decoder { return wholeBody(r, m.Unmarshal) }

// wholeBody decodes with unmarshal once the whole body is read (YAML, and
// telling JSON from YAML, need all of it).
func wholeBody(r io.Reader, unmarshal func([]byte, any) error) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		return unmarshal(data, v)
	})
}

func (m *yamlMarshaler) ContentType(any) string { return "application/json" }

// jsonOrYAML reads a body that does not say it is YAML as JSON, unless it
// plainly is not JSON (it starts with neither '{' nor '['): then as YAML,
// so `curl --data-binary @config.yaml` works without a Content-Type.
// Answers are JSON.
type jsonOrYAML struct {
	*runtime.HTTPBodyMarshaler
	yaml *yamlMarshaler
}

func looksLikeJSON(data []byte) bool {
	b := bytes.TrimLeft(data, " \t\r\n")
	return len(b) == 0 || b[0] == '{' || b[0] == '['
}

func (m *jsonOrYAML) Unmarshal(data []byte, v any) error {
	if looksLikeJSON(data) {
		return m.HTTPBodyMarshaler.Unmarshal(data, v)
	}
	return m.yaml.Unmarshal(data, v)
}

func (m *jsonOrYAML) NewDecoder(r io.Reader) runtime.Decoder { return wholeBody(r, m.Unmarshal) }
