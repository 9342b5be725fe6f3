package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/segmentapi"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/topics"
	"github.com/firstparty/firstparty/pkg/traceid"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// producer is the part of kafkaclient.Producer the collector uses.
type producer interface {
	Produce(ctx context.Context, msgs ...kafka.Message) error
}

// ingestor is the one path every request takes, from HTTP or gRPC:
// authenticate → check origin → decode → rate-limit → produce (acks=all).
type ingestor struct {
	cfg      Config
	sources  *sources.Live
	prod     producer
	topics   topics.Names
	m        *metrics
	log      *slog.Logger
	inflight *semaphore.Weighted

	mu       sync.Mutex
	limiters map[string]*rate.Limiter // by workspace/source
}

func newIngestor(cfg Config, live *sources.Live, p producer, t topics.Names, m *metrics, log *slog.Logger) *ingestor {
	return &ingestor{
		cfg: cfg, sources: live, prod: p, topics: t, m: m, log: log,
		inflight: semaphore.NewWeighted(int64(cfg.MaxInflightMB) << 20),
		limiters: map[string]*rate.Limiter{},
	}
}

// requestMeta is what the transport knew about a request.
type requestMeta struct {
	writeKey   string // from Basic auth or metadata; "" when the body must carry it
	origin     string
	ip         string
	userAgent  string
	api        string // "http" or "grpc"
	endpoint   string
	requestID  string
	traceID    string
	receivedAt time.Time
}

// outcome is the answer to a request, in transport-neutral form.
type outcome struct {
	status     int // HTTP status; grpc.go maps it to a gRPC code
	code       string
	message    string
	errors     []*segmentapi.Error
	accepted   int
	retryAfter time.Duration
	source     string // workspace/source, for metrics
}

func fail(status int, code, format string, args ...any) outcome {
	return outcome{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// acquire reserves room for a body of n bytes; false means the collector is
// holding as many request bytes as it may and the caller should answer 503.
func (in *ingestor) acquire(n int) bool {
	if !in.inflight.TryAcquire(int64(n)) {
		return false
	}
	in.m.inflightBytes.Add(float64(n))
	return true
}

func (in *ingestor) release(n int) {
	in.inflight.Release(int64(n))
	in.m.inflightBytes.Sub(float64(n))
}

func (in *ingestor) ingest(ctx context.Context, call segmentapi.Call, body []byte, meta requestMeta) outcome {
	reg := in.sources.Current()
	var src *sources.Resolved
	if meta.writeKey != "" {
		var ok bool
		if src, ok = reg.Lookup(meta.writeKey); !ok {
			return fail(http.StatusUnauthorized, "invalid_write_key", "the write key is unknown or revoked")
		}
	}

	req, perrs := segmentapi.Parse(call, body, meta.receivedAt, in.cfg.Limits)

	if src == nil {
		if req.WriteKey == "" {
			if len(perrs) > 0 && perrs[0].Index < 0 && req.WriteKey == "" {
				// The body could not be read far enough to find a key.
				return in.rejected(nil, body, meta, perrs)
			}
			return fail(http.StatusUnauthorized, "missing_write_key", "no write key: send it as the Basic-auth user name (password empty) or as \"writeKey\" in the body")
		}
		var ok bool
		if src, ok = reg.Lookup(req.WriteKey); !ok {
			return fail(http.StatusUnauthorized, "invalid_write_key", "the write key is unknown or revoked")
		}
	}
	label := src.WorkspaceID + "/" + src.SourceID
	if !src.AllowsOrigin(meta.origin) {
		o := fail(http.StatusForbidden, "origin_not_allowed", "origin %q may not send to this source", meta.origin)
		o.source = label
		return o
	}
	if len(perrs) > 0 {
		return in.rejected(src, body, meta, perrs)
	}

	n := len(req.Messages)
	if wait, ok := in.allow(src, n, meta.receivedAt); !ok {
		in.m.events.WithLabelValues(label, "rejected", "rate_limited").Add(float64(n))
		o := fail(http.StatusTooManyRequests, "rate_limited", "source %s is over its rate limit; retry after %s", label, wait.Round(time.Second))
		o.retryAfter, o.source = wait, label
		return o
	}

	msgs := make([]kafka.Message, n)
	for i := range req.Messages {
		m := &req.Messages[i]
		ev := m.Event
		if ev.Context == nil {
			ev.Context = &eventv1.Context{}
		}
		if ev.Context.Ip == "" {
			ev.Context.Ip = meta.ip // what Segment does when the SDK sent none
		}
		env := &eventv1.Envelope{
			SchemaVersion: 1,
			MessageId:     ev.MessageId,
			WorkspaceId:   src.WorkspaceID,
			SourceId:      src.SourceID,
			Collector: &eventv1.CollectorMeta{
				ReceivedAt: timestamppb.New(meta.receivedAt), Ip: meta.ip, UserAgent: meta.userAgent,
				RequestId: meta.requestID, Api: meta.api, Endpoint: meta.endpoint,
			},
			Raw:   m.Raw,
			Event: ev,
		}
		if !m.SentAt.IsZero() {
			env.Collector.SentAt = timestamppb.New(m.SentAt)
		}
		value, err := env.MarshalVT()
		if err != nil {
			return fail(http.StatusInternalServerError, "internal", "encoding event %d: %v", i, err)
		}
		msgs[i] = kafka.Message{
			Topic: in.topics.Raw, Key: []byte(m.Key()), Value: value,
			Headers: []kafka.Header{{Key: traceid.Header, Value: []byte(meta.traceID)}},
		}
	}

	pctx, cancel := context.WithTimeout(ctx, in.cfg.ProduceTimeout)
	defer cancel()
	start := time.Now()
	err := in.prod.Produce(pctx, msgs...)
	in.m.produceSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		in.m.events.WithLabelValues(label, "rejected", "kafka_unavailable").Add(float64(n))
		in.log.Warn("kafka did not acknowledge; answering 503", "source", label, "events", n, "request_id", meta.requestID, "err", err)
		o := fail(http.StatusServiceUnavailable, "unavailable", "the event bus did not acknowledge the events in time, so they may not have been stored; retry the same request (events are deduplicated by messageId)")
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			o.message = "request cancelled before the events were acknowledged; retry"
		}
		o.retryAfter, o.source = 5*time.Second, label
		return o
	}
	in.m.events.WithLabelValues(label, "accepted", "").Add(float64(n))
	return outcome{status: http.StatusOK, accepted: n, source: label}
}

// rejected answers a request that failed validation and, for an
// authenticated source, records the rejection on the dead-letter topic so
// data-quality dashboards see what senders got wrong.
func (in *ingestor) rejected(src *sources.Resolved, body []byte, meta requestMeta, errs []*segmentapi.Error) outcome {
	status := errs[0].Status
	code := string(errs[0].Code)
	msg := errs[0].Error()
	if len(errs) > 1 {
		msg = fmt.Sprintf("%s (and %d more problems)", msg, len(errs)-1)
	}
	o := outcome{status: status, code: code, message: msg, errors: errs}
	label := "unauthenticated"
	if src != nil {
		label = src.WorkspaceID + "/" + src.SourceID
		o.source = label
		in.deadLetter(src, body, meta, errs)
	}
	in.m.events.WithLabelValues(label, "rejected", code).Inc()
	return o
}

func (in *ingestor) deadLetter(src *sources.Resolved, body []byte, meta requestMeta, errs []*segmentapi.Error) {
	vs := make([]*eventv1.Violation, 0, len(errs))
	for _, e := range errs {
		reason := eventv1.Reason_REASON_FORMAT_VIOLATION
		if e.Code == segmentapi.CodeTooLarge {
			reason = eventv1.Reason_REASON_SIZE_VIOLATION
		}
		field := e.Field
		if e.Index >= 0 {
			field = fmt.Sprintf("/batch/%d%s", e.Index, e.Field)
		}
		vs = append(vs, &eventv1.Violation{Reason: reason, Field: field, Rule: string(e.Code), Detail: e.Message})
	}
	raw := body
	if len(raw) > in.cfg.Limits.MaxEventBytes {
		raw = raw[:in.cfg.Limits.MaxEventBytes] // enough to see the problem; bounded
	}
	rej := &eventv1.Rejection{
		Stage: "collector", Violations: vs, RejectedAt: timestamppb.New(meta.receivedAt),
		Envelope: &eventv1.Envelope{
			SchemaVersion: 1, MessageId: meta.requestID, WorkspaceId: src.WorkspaceID, SourceId: src.SourceID, Raw: raw,
			Collector: &eventv1.CollectorMeta{ReceivedAt: timestamppb.New(meta.receivedAt), Ip: meta.ip, UserAgent: meta.userAgent, RequestId: meta.requestID, Api: meta.api, Endpoint: meta.endpoint},
		},
	}
	value, err := proto.Marshal(rej)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Best effort: the sender already has its precise 4xx; a lost
	// dead-letter record costs a dashboard row, never an accepted event.
	if err := in.prod.Produce(ctx, kafka.Message{Topic: in.topics.Invalid, Key: []byte(meta.requestID), Value: value,
		Headers: []kafka.Header{{Key: traceid.Header, Value: []byte(meta.traceID)}}}); err != nil {
		in.log.Warn("recording a rejected request on the dead-letter topic failed", "request_id", meta.requestID, "err", err)
	}
}

// allow takes n events from the source's token bucket; when it is empty it
// says how long until n tokens are back.
func (in *ingestor) allow(src *sources.Resolved, n int, now time.Time) (time.Duration, bool) {
	key := src.WorkspaceID + "/" + src.SourceID
	limit, burst := rate.Limit(in.cfg.RateLimit), in.cfg.RateBurst
	if rl := src.RateLimit; rl != nil {
		limit, burst = rate.Limit(rl.EventsPerSecond), rl.Burst
	}
	in.mu.Lock()
	l, ok := in.limiters[key]
	if !ok || l.Limit() != limit || l.Burst() != burst {
		l = rate.NewLimiter(limit, burst) // new or reconfigured by a reload
		in.limiters[key] = l
	}
	in.mu.Unlock()
	if n > burst {
		// Larger than the bucket can ever hold: it would never pass.
		return time.Duration(math.Ceil(float64(n)/float64(limit))) * time.Second, false
	}
	if l.AllowN(now, n) {
		return 0, true
	}
	r := l.ReserveN(now, n)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	if wait < time.Second {
		wait = time.Second
	}
	return wait, false
}

// clientIP finds the sender's address: the connection's, unless the
// connection comes from a trusted proxy, in which case X-Forwarded-For is
// walked from the right past trusted proxies. A client cannot spoof its
// address by sending its own X-Forwarded-For.
func clientIP(remote, forwarded string, cfg *Config) string {
	addr, ok := parseAddr(remote)
	if !ok {
		return ""
	}
	if !trusted(addr, cfg) || forwarded == "" {
		return addr.String()
	}
	hops := strings.Split(forwarded, ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseAddr(strings.TrimSpace(hops[i]))
		if !ok {
			break
		}
		addr = hop
		if !trusted(hop, cfg) {
			break
		}
	}
	return addr.String()
}
