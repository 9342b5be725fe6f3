package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/firstparty/firstparty/pkg/segmentapi"
	"github.com/firstparty/firstparty/pkg/traceid"
	ingestv1 "github.com/firstparty/firstparty/proto/ingest/v1"
)

type grpcIngest struct {
	ingestv1.UnimplementedIngestServiceServer
	in  *ingestor
	cfg Config
}

func newGRPCServer(in *ingestor, cfg Config) *grpc.Server {
	// Room for the largest batch plus protobuf framing.
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(cfg.Limits.MaxBatchBytes + 64<<10))
	ingestv1.RegisterIngestServiceServer(srv, &grpcIngest{in: in, cfg: cfg})
	return srv
}

func (g *grpcIngest) Send(ctx context.Context, req *ingestv1.SendRequest) (*ingestv1.SendResponse, error) {
	resp := g.handle(ctx, req)
	if resp.Code != uint32(codes.OK) {
		return nil, status.Error(codes.Code(resp.Code), resp.Message)
	}
	return resp, nil
}

func (g *grpcIngest) SendStream(stream ingestv1.IngestService_SendStreamServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(g.handle(stream.Context(), req)); err != nil {
			return err
		}
	}
}

func (g *grpcIngest) handle(ctx context.Context, req *ingestv1.SendRequest) *ingestv1.SendResponse {
	start := time.Now()
	resp := &ingestv1.SendResponse{RequestId: req.GetRequestId()}
	call := segmentapi.Call(strings.ToLower(req.GetCall()))
	known := false
	for _, c := range segmentapi.Calls {
		known = known || c == call
	}
	if !known {
		resp.Code, resp.Message = uint32(codes.InvalidArgument), "call must be one of track, identify, page, screen, group, alias, batch, import"
		return resp
	}
	md, _ := metadata.FromIncomingContext(ctx)
	meta := requestMeta{
		api: "grpc", endpoint: "/firstparty.ingest.v1.IngestService/" + string(call),
		receivedAt: start.UTC(), requestID: req.GetRequestId(), traceID: traceid.New(),
	}
	if meta.requestID == "" {
		meta.requestID = uuid.NewString()
	}
	if v := first(md, "authorization"); v != "" {
		meta.writeKey = basicUser(v)
	}
	if v := first(md, "x-write-key"); v != "" {
		meta.writeKey = v
	}
	if v := first(md, "traceparent"); v != "" {
		if id, ok := traceid.FromTraceparent(v); ok {
			meta.traceID = id
		}
	}
	meta.userAgent = first(md, "user-agent")
	if p, ok := peer.FromContext(ctx); ok {
		meta.ip = clientIP(p.Addr.String(), first(md, "x-forwarded-for"), &g.cfg)
	}

	var o outcome
	payload := req.GetPayload()
	if len(payload) > g.cfg.Limits.MaxBodyBytes(call) {
		o = fail(http.StatusRequestEntityTooLarge, "too_large", "payload is %d bytes; the limit for %s is %d", len(payload), call, g.cfg.Limits.MaxBodyBytes(call))
	} else if !g.in.acquire(len(payload)) {
		o = fail(http.StatusServiceUnavailable, "overloaded", "the collector is holding its maximum of request bytes; retry")
	} else {
		o = g.in.ingest(ctx, call, payload, meta)
		g.in.release(len(payload))
	}
	g.in.m.requests.WithLabelValues(string(call), "grpc_"+codeFor(o.status).String()).Inc()
	g.in.m.requestSeconds.WithLabelValues(string(call)).Observe(time.Since(start).Seconds())

	resp.Code = uint32(codeFor(o.status))
	resp.Message = o.message
	resp.Accepted = uint32(o.accepted)
	for _, e := range o.errors {
		resp.Errors = append(resp.Errors, &ingestv1.FieldError{Code: string(e.Code), Index: int32(e.Index), Field: e.Field, Message: e.Message})
	}
	return resp
}

// codeFor maps the HTTP answer to the gRPC status with the same meaning.
func codeFor(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusOK:
		return codes.OK
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.Internal
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}
