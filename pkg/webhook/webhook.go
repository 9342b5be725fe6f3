// Package webhook delivers segment transitions to marketers' HTTP
// endpoints: signed, retried with backoff, rate-limited per destination,
// and dead-lettered when a destination will not take them.
//
// A destination is declared in the workspace configuration (pkg/sources):
//
//	destinations:
//	  - id: crm
//	    url: https://crm.example/hooks/firstparty
//	    secret_env: FP_CRM_WEBHOOK_SECRET    # HMAC key, from the environment
//	    segments: [abandoned-cart]           # empty: every segment
//	    transitions: [enter]                 # empty: enter and exit
//	    rate_limit: {per_second: 50, burst: 100}
//	    max_attempts: 8
//	    timeout: 10s
//
// # The request
//
// POST with a JSON body (Payload): membership_id, workspace_id, segment_id,
// segment_version, profile_id, transition ("enter" or "exit"), occurred_at
// and evaluated_at (RFC 3339). Headers:
//
//	Content-Type: application/json
//	User-Agent: Firstparty-Webhooks/1
//	Firstparty-Delivery: <membership_id>     the same on every retry: dedup on it
//	Firstparty-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// Receivers check the signature with Verify (or the same few lines in
// their language) and refuse old timestamps, so a captured request cannot
// be replayed later.
//
// # Delivery
//
// 2xx is delivered. Network errors, 408, 429 and 5xx are retried with
// exponential backoff and jitter (Retry-After is honoured, capped at
// MaxRetryAfter); other 4xx are permanent. After max_attempts, or on a
// permanent failure, the transition is dead-lettered. Deliver returns only
// when every destination delivered or dead-lettered it, so the caller
// commits its Kafka offsets after Deliver: a crash means redelivery, never
// loss (receivers dedup on Firstparty-Delivery).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// Destination is one endpoint, as configured.
type Destination struct {
	ID          string     `json:"id"`
	URL         string     `json:"url"`
	SecretEnv   string     `json:"secret_env"`
	Segments    []string   `json:"segments,omitempty"`
	Transitions []string   `json:"transitions,omitempty"`
	RateLimit   *RateLimit `json:"rate_limit,omitempty"`
	MaxAttempts int        `json:"max_attempts,omitempty"`
	Timeout     Duration   `json:"timeout,omitempty"`
}

// RateLimit caps requests to a destination.
type RateLimit struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
}

// Duration reads "10s" style durations from the configuration.
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"10s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Defaults.
const (
	DefaultMaxAttempts = 8
	DefaultTimeout     = 10 * time.Second
	MaxRetryAfter      = 5 * time.Minute
)

// Compiled is a validated destination with its secret and limiter.
type Compiled struct {
	Destination
	secret  []byte
	limiter *rate.Limiter
	enter   bool
	exit    bool
}

// Compile checks d and reads its secret through lookupEnv.
func Compile(d Destination, lookupEnv func(string) (string, bool)) (*Compiled, error) {
	if d.ID == "" {
		return nil, errors.New("destination needs an id")
	}
	u, err := url.Parse(d.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("destination %s: url %q must be an absolute http or https URL", d.ID, d.URL)
	}
	if d.SecretEnv == "" {
		return nil, fmt.Errorf("destination %s: secret_env must name the environment variable holding the signing secret", d.ID)
	}
	secret, ok := lookupEnv(d.SecretEnv)
	if !ok || len(secret) < 16 {
		return nil, fmt.Errorf("destination %s: environment variable %s must hold a secret of at least 16 characters", d.ID, d.SecretEnv)
	}
	c := &Compiled{Destination: d, secret: []byte(secret), limiter: rate.NewLimiter(rate.Inf, 1)}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 100 {
		return nil, fmt.Errorf("destination %s: max_attempts must be 1..100", d.ID)
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultTimeout)
	}
	if c.Timeout < Duration(100*time.Millisecond) || c.Timeout > Duration(2*time.Minute) {
		return nil, fmt.Errorf("destination %s: timeout must be between 100ms and 2m", d.ID)
	}
	if rl := d.RateLimit; rl != nil {
		if rl.PerSecond <= 0 || rl.Burst < 1 {
			return nil, fmt.Errorf("destination %s: rate_limit needs per_second > 0 and burst >= 1", d.ID)
		}
		c.limiter = rate.NewLimiter(rate.Limit(rl.PerSecond), rl.Burst)
	}
	if len(d.Transitions) == 0 {
		c.enter, c.exit = true, true
	}
	for _, t := range d.Transitions {
		switch t {
		case "enter":
			c.enter = true
		case "exit":
			c.exit = true
		default:
			return nil, fmt.Errorf("destination %s: transition %q must be enter or exit", d.ID, t)
		}
	}
	return c, nil
}

// Wants reports whether the destination subscribes to the transition.
func (c *Compiled) Wants(m *segmentv1.Membership) bool {
	if len(c.Segments) > 0 && !slices.Contains(c.Segments, m.SegmentId) {
		return false
	}
	if m.Transition == segmentv1.Transition_TRANSITION_ENTER {
		return c.enter
	}
	return c.exit
}

// Payload is the JSON body of a delivery.
type Payload struct {
	MembershipID   string    `json:"membership_id"`
	WorkspaceID    string    `json:"workspace_id"`
	SegmentID      string    `json:"segment_id"`
	SegmentVersion uint32    `json:"segment_version"`
	ProfileID      string    `json:"profile_id"`
	Transition     string    `json:"transition"`
	OccurredAt     time.Time `json:"occurred_at"`
	EvaluatedAt    time.Time `json:"evaluated_at"`
}

// Body is the request body of m.
func Body(m *segmentv1.Membership) []byte {
	tr := "exit"
	if m.Transition == segmentv1.Transition_TRANSITION_ENTER {
		tr = "enter"
	}
	b, _ := json.Marshal(Payload{MembershipID: m.MembershipId, WorkspaceID: m.WorkspaceId, SegmentID: m.SegmentId, SegmentVersion: m.SegmentVersion,
		ProfileID: m.ProfileId, Transition: tr, OccurredAt: m.GetOccurredAt().AsTime(), EvaluatedAt: m.GetEvaluatedAt().AsTime()})
	return b
}

// Sign returns the Firstparty-Signature header value for body at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Errors of Verify.
var (
	ErrMalformedSignature = errors.New("malformed Firstparty-Signature header")
	ErrBadSignature       = errors.New("signature does not match")
	ErrStale              = errors.New("signature timestamp outside the tolerance")
)

// Verify checks a Firstparty-Signature header against body: the HMAC must
// match (any of several v1 values, for secret rotation) and the timestamp
// must be within tolerance of now.
func Verify(secret []byte, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformedSignature
		}
		switch k {
		case "t":
			if ts != "" {
				return ErrMalformedSignature
			}
			ts = v
		case "v1":
			s, err := hex.DecodeString(v)
			if err != nil || len(s) != sha256.Size {
				return ErrMalformedSignature
			}
			sigs = append(sigs, s)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrMalformedSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrBadSignature
}

// Failure is a transition a destination did not take.
type Failure struct {
	Destination *Compiled
	Membership  *segmentv1.Membership
	Attempts    int
	LastStatus  int
	LastError   string
}

// Deliverer sends transitions to destinations.
type Deliverer struct {
	Client *http.Client
	Log    *slog.Logger
	// Sleep waits between attempts (tests replace it); it returns false
	// when ctx ended first.
	Sleep func(ctx context.Context, d time.Duration) bool
	// Now is the signing clock.
	Now func() time.Time
	// Policy is checked against the address every request dials (see
	// URLPolicy): a destination whose URL names a host by name never
	// reaches a loopback, private or link-local address unless
	// Policy.AllowPrivate. A URL naming such an address literally
	// ("http://10.0.0.5/hook", "http://localhost:9000") is delivered: the
	// API refuses it from workspace keys, so only an operator saved it.
	// The segmenter sets AllowPrivate from -webhooks.allow-private. It
	// applies to the client NewDeliverer builds; a Client set by the caller
	// is used as it is.
	Policy URLPolicy
	// BaseBackoff is the first retry's delay (doubling, with jitter, up to
	// MaxBackoff).
	BaseBackoff, MaxBackoff time.Duration

	// resolve resolves destination hosts (tests replace it).
	resolve func(ctx context.Context, network, host string) ([]netip.Addr, error)

	deliveries *prometheus.CounterVec
	attempts   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

// NewDeliverer returns a deliverer with real clocks, registering its
// metrics with reg (nil: unregistered).
func NewDeliverer(log *slog.Logger, reg prometheus.Registerer) *Deliverer {
	d := &Deliverer{
		Log: log, Now: time.Now, BaseBackoff: 500 * time.Millisecond, MaxBackoff: time.Minute,
		Sleep: func(ctx context.Context, d time.Duration) bool {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return false
			case <-t.C:
				return true
			}
		},
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_webhook_deliveries_total", Help: "Transitions by destination and outcome: delivered, dead (dead-lettered).",
		}, []string{"destination", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_webhook_attempts_total", Help: "HTTP attempts by destination and result: 2xx, retry, permanent, error.",
		}, []string{"destination", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "firstparty_webhook_attempt_seconds", Help: "Time of one HTTP attempt.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"destination"}),
	}
	// No proxy from the environment: the guard must see the address the
	// request goes to, not a proxy's.
	// Redirects are not followed: a destination answers, it does not
	// send the request on (a 3xx is a permanent failure).
	d.Client = &http.Client{
		Transport: &http.Transport{DialContext: guardedDial(func() URLPolicy { return d.Policy }, d.lookup),
			ForceAttemptHTTP2: true, MaxIdleConns: 100, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if reg != nil {
		reg.MustRegister(d.deliveries, d.attempts, d.latency)
	}
	return d
}

func (d *Deliverer) lookup(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if d.resolve != nil {
		return d.resolve(ctx, network, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, network, host)
}

// Deliver sends m to every destination in dests that wants it,
// concurrently, and returns the failures to dead-letter. An error means ctx
// ended before every destination was done: nothing is settled, deliver the
// transition again later.
func (d *Deliverer) Deliver(ctx context.Context, dests []*Compiled, m *segmentv1.Membership) ([]Failure, error) {
	body := Body(m)
	var mu sync.Mutex
	var failures []Failure
	var wg sync.WaitGroup
	var cancelled error
	for _, c := range dests {
		if !c.Wants(m) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := d.deliverOne(ctx, c, m, body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				cancelled = err
			} else if f != nil {
				failures = append(failures, *f)
			}
		}()
	}
	wg.Wait()
	if cancelled != nil {
		return nil, cancelled
	}
	return failures, nil
}

func (d *Deliverer) deliverOne(ctx context.Context, c *Compiled, m *segmentv1.Membership, body []byte) (*Failure, error) {
	f := &Failure{Destination: c, Membership: m}
	for f.Attempts < c.MaxAttempts {
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, err
		}
		f.Attempts++
		status, retryAfter, err := d.attempt(ctx, c, m, body)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		f.LastStatus, f.LastError = status, ""
		if err != nil {
			f.LastError = err.Error()
		}
		switch {
		case err == nil && status/100 == 2:
			d.attempts.WithLabelValues(c.ID, "2xx").Inc()
			d.deliveries.WithLabelValues(c.ID, "delivered").Inc()
			return nil, nil
		case err == nil && !retryable(status):
			d.attempts.WithLabelValues(c.ID, "permanent").Inc()
			d.deliveries.WithLabelValues(c.ID, "dead").Inc()
			d.logFailure(f, "refused for good")
			return f, nil
		case err != nil:
			d.attempts.WithLabelValues(c.ID, "error").Inc()
		default:
			d.attempts.WithLabelValues(c.ID, "retry").Inc()
		}
		if f.Attempts == c.MaxAttempts {
			break
		}
		wait := d.backoff(f.Attempts)
		if retryAfter > 0 {
			wait = min(retryAfter, MaxRetryAfter)
		}
		if !d.Sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
	d.deliveries.WithLabelValues(c.ID, "dead").Inc()
	d.logFailure(f, "gave up after every attempt")
	return f, nil
}

func (d *Deliverer) logFailure(f *Failure, why string) {
	if d.Log != nil {
		d.Log.Warn("webhook dead-lettered: "+why, "destination", f.Destination.ID, "membership", f.Membership.MembershipId,
			"attempts", f.Attempts, "status", f.LastStatus, "err", f.LastError)
	}
}

// retryable: the destination may take it later.
func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// backoff is the delay before attempt n+1: BaseBackoff·2^(n-1), capped, with
// ±25% jitter.
func (d *Deliverer) backoff(n int) time.Duration {
	w := d.BaseBackoff << min(n-1, 20)
	if w > d.MaxBackoff || w <= 0 {
		w = d.MaxBackoff
	}
	return time.Duration(float64(w) * (0.75 + rand.Float64()/2))
}

// attempt makes one request; retryAfter is the server's Retry-After.
func (d *Deliverer) attempt(ctx context.Context, c *Compiled, m *segmentv1.Membership, body []byte) (status int, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.Timeout))
	defer cancel()
	ctx = context.WithValue(ctx, explicitKey{}, literalInternal(c.URL))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Firstparty-Webhooks/1")
	req.Header.Set("Firstparty-Delivery", m.MembershipId)
	req.Header.Set("Firstparty-Signature", Sign(c.secret, body, d.Now()))
	start := time.Now()
	resp, err := d.Client.Do(req)
	d.latency.WithLabelValues(c.ID).Observe(time.Since(start).Seconds())
	if err != nil {
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			retryAfter = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(s); err == nil {
			retryAfter = time.Until(t)
		}
	}
	return resp.StatusCode, retryAfter, nil
}
