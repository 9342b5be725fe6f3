package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/privacy"
	"github.com/firstparty/firstparty/pkg/profileview"
	apiv1 "github.com/firstparty/firstparty/proto/api/v1"
)

// privacyAPI serves the privacy requests (apiv1.PrivacyService; paths
// and scopes in proto/api/v1/privacy.proto), each audited. Erase answers
// when the person is gone from Redis and ClickHouse, with the report that
// was also written to the audit log. Export streams one JSON document (see
// pkg/privacy export.go; check its "complete").
type privacyAPI struct {
	apiv1.UnimplementedPrivacyServiceServer
	auth *auth
	svc  *privacy.Service
	now  func() time.Time
}

// logError logs what the client is not told: errors can quote the
// identifiers of the request.
func (p *privacyAPI) logError(msg string, err error) {
	if p.svc.Log != nil {
		p.svc.Log.Warn(msg, "err", err)
	}
}

func (p *privacyAPI) Erase(ctx context.Context, req *apiv1.EraseRequest) (*apiv1.PrivacyReport, error) {
	key, err := p.auth.authorize(ctx, access.PrivacyErase)
	if err != nil {
		return nil, err
	}
	id, ok := parseIdentifier(req.Identifier)
	if !ok {
		return nil, invalid(`identifier must be <type>:<value>; send {"identifier": "<type>:<value>", "reason": "the request's reference"}`, withField("identifier"))
	}
	if strings.TrimSpace(req.Reason) == "" {
		return nil, invalid(`reason is required: the request's reference (a ticket number), kept in the audit log`, withField("reason"))
	}
	rep, err := p.svc.Erase(ctx, key.Workspace, id, req.Reason)
	if err != nil {
		// rep.Status names the step, never the error (it may quote the
		// identifiers); the service logged the error.
		return nil, unavailable("erase not finished: " + rep.Status + " (the request " + rep.RequestID + " resumes where it stopped); it is safe to send again")
	}
	return reportMessage(privacy.MaskReport(rep, p.auth.redaction(key))), nil
}

func reportMessage(r privacy.Report) *apiv1.PrivacyReport {
	return &apiv1.PrivacyReport{RequestId: r.RequestID, Type: r.Type, Workspace: r.Workspace, Identifier: r.Identifier,
		Reason: r.Reason, ProfileIds: r.ProfileIDs, SuppressedIdentifiers: r.Suppressed, ClickhouseTables: r.Tables,
		RequestedAt: timestamp(r.RequestedAt), CompletedAt: timestamp(r.CompletedAt), Status: r.Status,
		Categories: r.Categories, Source: r.Source, Rows: r.Rows}
}

// exportChunk is the size of the pieces an export is sent in.
const exportChunk = 64 << 10

// chunkWriter sends what is written as HttpBody messages of exportChunk
// bytes; n tells whether the document has begun.
type chunkWriter struct {
	send func(*httpbody.HttpBody) error
	n    int
}

func (c *chunkWriter) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		// bufio passes a write larger than its buffer through whole.
		piece := b[:min(len(b), exportChunk)]
		m := &httpbody.HttpBody{Data: append([]byte(nil), piece...)}
		if c.n == 0 {
			m.ContentType = "application/json"
		}
		if err := c.send(m); err != nil {
			return written, err
		}
		c.n += len(piece)
		written += len(piece)
		b = b[len(piece):]
	}
	return written, nil
}

func (p *privacyAPI) Export(req *apiv1.ExportRequest, stream grpc.ServerStreamingServer[httpbody.HttpBody]) error {
	ctx := stream.Context()
	key, err := p.auth.authorize(ctx, access.PrivacyExport)
	if err != nil {
		return err
	}
	id, ok := parseIdentifier(req.Identifier)
	if !ok {
		return invalid(`identifier must be <type>:<value>; send {"identifier": "<type>:<value>"}, e.g. {"identifier": "email:a@b.c"}`, withField("identifier"))
	}
	cw := &chunkWriter{send: stream.Send}
	bw := bufio.NewWriterSize(cw, exportChunk)
	_, err = p.svc.Export(ctx, key.Workspace, id, bw, p.auth.redaction(key))
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil && cw.n == 0 {
		p.logError("export not started", err)
		return unavailable("export not started (Redis or ClickHouse unavailable); retry")
	}
	// Once the document has begun, a failure is told inside it
	// ("complete": false, "error") and in the audit log.
	return nil
}

// exportREST serves POST /v1/privacy/export in place of the generated
// gateway handler: the document's chunks go out as they are, with no
// delimiters between them, and an error before the first chunk gets the
// Error body of every other call.
func exportREST(mux *runtime.ServeMux, client apiv1.PrivacyServiceClient) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		req := &apiv1.ExportRequest{}
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = protojson.Unmarshal(body, req)
		}
		if err != nil {
			writeErrorBody(w, gatewayError(rpcError(codes.InvalidArgument, `the request is not valid: `+strings.TrimPrefix(err.Error(), "proto: ")+`; send {"identifier": "<type>:<value>"}`)))
			return
		}
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, apiv1.PrivacyService_Export_FullMethodName, runtime.WithHTTPPathPattern("/v1/privacy/export"))
		if err != nil {
			writeErrorBody(w, err)
			return
		}
		stream, err := client.Export(ctx, req)
		if err != nil {
			writeErrorBody(w, err)
			return
		}
		first, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			writeErrorBody(w, unavailable("export ended before it began; retry"))
			return
		}
		if err != nil {
			writeErrorBody(w, err)
			return
		}
		w.Header().Set("Content-Type", first.GetContentType())
		rc := http.NewResponseController(w)
		for m := first; ; {
			if _, err := w.Write(m.GetData()); err != nil {
				return
			}
			_ = rc.Flush()
			if m, err = stream.Recv(); err != nil {
				return // io.EOF: done; otherwise the document says it is not complete
			}
		}
	}
}

func (p *privacyAPI) RecordConsent(ctx context.Context, req *apiv1.RecordConsentRequest) (*apiv1.ConsentAnswer, error) {
	key, err := p.auth.authorize(ctx, access.ConsentWrite)
	if err != nil {
		return nil, err
	}
	const usage = `send {"identifier": "<type>:<value>", "categories": {"analytics": true, "marketing": false}, "source": "where it came from", "at": "RFC 3339 time of the decision (optional, default now)"}`
	id, ok := parseIdentifier(req.Identifier)
	if !ok {
		return nil, invalid("identifier must be <type>:<value>; "+usage, withField("identifier"))
	}
	u := consent.Update{Categories: req.Categories, Source: req.Source, At: p.now()}
	if req.At != nil {
		if err := req.At.CheckValid(); err != nil {
			return nil, invalid("at is not a valid time: "+err.Error(), withField("at"))
		}
		at := req.At.AsTime()
		if at.After(p.now().Add(5 * time.Minute)) {
			return nil, invalid("at is in the future; send the time the person decided", withField("at"))
		}
		u.At = at
	}
	u, err = u.Normalize()
	if err != nil {
		return nil, invalid(err.Error())
	}
	ans, err := p.svc.RecordConsent(ctx, key.Workspace, id, u)
	if errors.Is(err, privacy.ErrSuppressed) || errors.Is(err, consent.ErrTooManyCategories) {
		return nil, rpcError(codes.FailedPrecondition, err.Error())
	}
	if err != nil {
		p.logError("consent not recorded", err)
		return nil, unavailable("consent not recorded (Redis unavailable); it is safe to send again")
	}
	return consentMessage(ans, p.auth.redaction(key)), nil
}

func (p *privacyAPI) GetConsent(ctx context.Context, req *apiv1.GetConsentRequest) (*apiv1.ConsentAnswer, error) {
	key, err := p.auth.authorize(ctx, access.ConsentRead)
	if err != nil {
		return nil, err
	}
	id, ok := parseIdentifier(req.Identifier)
	if !ok {
		return nil, invalid("send ?identifier=<type>:<value>, e.g. ?identifier=email:a@b.c", withField("identifier"))
	}
	ans, err := p.svc.ReadConsent(ctx, key.Workspace, id)
	if err != nil {
		p.logError("consent unavailable", err)
		return nil, unavailable("consent unavailable (Redis unavailable); retry")
	}
	return consentMessage(ans, p.auth.redaction(key)), nil
}

func consentMessage(a privacy.ConsentAnswer, red *pii.Redaction) *apiv1.ConsentAnswer {
	out := &apiv1.ConsentAnswer{RequestId: a.RequestID, Identifier: a.Identifier, ProfileId: a.ProfileID,
		Consent: consentMessages(profileview.Consent(a.Consent, red)), Categories: a.Consent.Granted(), Applied: a.Applied}
	if t, v, ok := strings.Cut(a.Identifier, ":"); ok {
		out.Identifier = profileview.Identifier(red, t, v)
	}
	if out.Categories == nil {
		out.Categories = map[string]bool{}
	}
	return out
}

func (p *privacyAPI) ListAudit(ctx context.Context, req *apiv1.ListAuditRequest) (*apiv1.ListAuditResponse, error) {
	key, err := p.auth.authorize(ctx, access.AuditRead)
	if err != nil {
		return nil, err
	}
	n, err := bounded("limit", req.Limit, 100, 1, 1000)
	if err != nil {
		return nil, err
	}
	reps, err := p.svc.Audit(ctx, key.Workspace, int64(n))
	if err != nil {
		return nil, unavailable("audit log unavailable; retry")
	}
	red := p.auth.redaction(key)
	out := &apiv1.ListAuditResponse{Requests: make([]*apiv1.PrivacyReport, 0, len(reps))}
	for _, r := range reps {
		out.Requests = append(out.Requests, reportMessage(privacy.MaskReport(r, red)))
	}
	return out, nil
}
