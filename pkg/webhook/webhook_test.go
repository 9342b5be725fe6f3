package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

const secret = "0123456789abcdef-secret"

func env(k string) (string, bool) {
	if k == "SECRET" {
		return secret, true
	}
	return "", false
}

func membership(seg string, tr segmentv1.Transition) *segmentv1.Membership {
	ts := timestamppb.New(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
	return &segmentv1.Membership{MembershipId: "m-" + seg, WorkspaceId: "w", SegmentId: seg, SegmentVersion: 2, ProfileId: "p",
		Transition: tr, OccurredAt: ts, EvaluatedAt: ts, CauseId: "web/x"}
}

func TestCompile(t *testing.T) {
	ok := Destination{ID: "crm", URL: "https://crm.example/h", SecretEnv: "SECRET"}
	tests := []struct {
		name   string
		mutate func(*Destination)
		want   string
	}{
		{"ok", func(*Destination) {}, ""},
		{"no id", func(d *Destination) { d.ID = "" }, "needs an id"},
		{"relative url", func(d *Destination) { d.URL = "/hook" }, "absolute http or https"},
		{"ftp url", func(d *Destination) { d.URL = "ftp://x/y" }, "absolute http or https"},
		{"no secret env", func(d *Destination) { d.SecretEnv = "" }, "secret_env"},
		{"missing secret", func(d *Destination) { d.SecretEnv = "NOPE" }, "NOPE"},
		{"bad rate", func(d *Destination) { d.RateLimit = &RateLimit{PerSecond: 0, Burst: 1} }, "rate_limit"},
		{"bad transition", func(d *Destination) { d.Transitions = []string{"left"} }, "enter or exit"},
		{"attempts", func(d *Destination) { d.MaxAttempts = 1000 }, "max_attempts"},
		{"timeout", func(d *Destination) { d.Timeout = Duration(time.Hour) }, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := ok
			tc.mutate(&d)
			_, err := Compile(d, env)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Compile = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestWants(t *testing.T) {
	c, err := Compile(Destination{ID: "d", URL: "http://x", SecretEnv: "SECRET", Segments: []string{"cart"}, Transitions: []string{"enter"}}, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m    *segmentv1.Membership
		want bool
	}{
		{membership("cart", segmentv1.Transition_TRANSITION_ENTER), true},
		{membership("cart", segmentv1.Transition_TRANSITION_EXIT), false},
		{membership("vip", segmentv1.Transition_TRANSITION_ENTER), false},
	} {
		if got := c.Wants(tc.m); got != tc.want {
			t.Errorf("Wants(%s %v) = %v", tc.m.SegmentId, tc.m.Transition, got)
		}
	}
}

func TestSignVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"a":1}`)
	h := Sign([]byte(secret), body, now)
	if err := Verify([]byte(secret), h, body, 5*time.Minute, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		header string
		body   string
		now    time.Time
		want   error
	}{
		"tampered body": {h, `{"a":2}`, now, ErrBadSignature},
		"other secret":  {Sign([]byte("another-secret-0000"), body, now), string(body), now, ErrBadSignature},
		"too old":       {h, string(body), now.Add(10 * time.Minute), ErrStale},
		"garbage":       {"nonsense", string(body), now, ErrMalformedSignature},
		"no v1":         {"t=1800000000", string(body), now, ErrMalformedSignature},
		"short v1":      {"t=1800000000,v1=abcd", string(body), now, ErrMalformedSignature},
		"rotation":      {h + ",v1=" + strings.Repeat("00", 32), string(body), now, nil},
	} {
		if err := Verify([]byte(secret), tc.header, []byte(tc.body), 5*time.Minute, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", name, err, tc.want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("t=1800000000,v1=" + strings.Repeat("ab", 32))
	f.Add("t=,v1=")
	f.Add(",,,=")
	f.Fuzz(func(t *testing.T, header string) {
		_ = Verify([]byte(secret), header, []byte("body"), time.Minute, time.Unix(1_800_000_000, 0))
	})
}

// receiver is a real HTTP server answering with the given statuses in turn.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []*http.Request
	bodies   [][]byte
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, req)
		r.bodies = append(r.bodies, b)
		st := r.statuses[min(len(r.got)-1, len(r.statuses)-1)]
		if st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(st)
	}))
	t.Cleanup(r.Close)
	return r
}

func testDeliverer() (*Deliverer, *[]time.Duration) {
	d := NewDeliverer(nil, nil)
	var slept []time.Duration
	var mu sync.Mutex
	d.Sleep = func(ctx context.Context, w time.Duration) bool {
		mu.Lock()
		slept = append(slept, w)
		mu.Unlock()
		return ctx.Err() == nil
	}
	return d, &slept
}

func dest(t *testing.T, url string, attempts int) *Compiled {
	c, err := Compile(Destination{ID: "d", URL: url, SecretEnv: "SECRET", MaxAttempts: attempts}, env)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDeliverRetriesThenSucceeds(t *testing.T) {
	r := newReceiver(t, 503, 503, 200)
	d, slept := testDeliverer()
	m := membership("cart", segmentv1.Transition_TRANSITION_ENTER)
	failures, err := d.Deliver(context.Background(), []*Compiled{dest(t, r.URL, 5)}, m)
	if err != nil || len(failures) != 0 {
		t.Fatalf("Deliver = %v, %v", failures, err)
	}
	if len(r.got) != 3 || len(*slept) != 2 || (*slept)[1] <= (*slept)[0]/2 {
		t.Fatalf("%d requests, waits %v", len(r.got), *slept)
	}
	for i, req := range r.got {
		if req.Header.Get("Firstparty-Delivery") != m.MembershipId {
			t.Fatalf("attempt %d: delivery id %q", i, req.Header.Get("Firstparty-Delivery"))
		}
		if err := Verify([]byte(secret), req.Header.Get("Firstparty-Signature"), r.bodies[i], time.Minute, time.Now()); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	var p Payload
	if err := json.Unmarshal(r.bodies[2], &p); err != nil || p.Transition != "enter" || p.SegmentID != "cart" || p.SegmentVersion != 2 || p.ProfileID != "p" {
		t.Fatalf("payload %s: %v", r.bodies[2], err)
	}
}

func TestDeliverDeadLetters(t *testing.T) {
	m := membership("cart", segmentv1.Transition_TRANSITION_ENTER)
	t.Run("permanent refusal at once", func(t *testing.T) {
		r := newReceiver(t, 400)
		d, _ := testDeliverer()
		failures, err := d.Deliver(context.Background(), []*Compiled{dest(t, r.URL, 5)}, m)
		if err != nil || len(failures) != 1 || failures[0].Attempts != 1 || failures[0].LastStatus != 400 {
			t.Fatalf("Deliver = %+v, %v", failures, err)
		}
	})
	t.Run("after max attempts", func(t *testing.T) {
		r := newReceiver(t, 500)
		d, _ := testDeliverer()
		failures, err := d.Deliver(context.Background(), []*Compiled{dest(t, r.URL, 4)}, m)
		if err != nil || len(failures) != 1 || failures[0].Attempts != 4 || len(r.got) != 4 {
			t.Fatalf("Deliver = %+v, %v; %d requests", failures, err, len(r.got))
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		d, _ := testDeliverer()
		failures, err := d.Deliver(context.Background(), []*Compiled{dest(t, "http://127.0.0.1:1/", 2)}, m)
		if err != nil || len(failures) != 1 || failures[0].LastError == "" || failures[0].LastStatus != 0 {
			t.Fatalf("Deliver = %+v, %v", failures, err)
		}
	})
}

func TestRetryAfterHonoured(t *testing.T) {
	r := newReceiver(t, 429, 200)
	d, slept := testDeliverer()
	if _, err := d.Deliver(context.Background(), []*Compiled{dest(t, r.URL, 3)}, membership("cart", segmentv1.Transition_TRANSITION_ENTER)); err != nil {
		t.Fatal(err)
	}
	if len(*slept) != 1 || (*slept)[0] != 7*time.Second {
		t.Fatalf("waits %v, want the server's 7 s", *slept)
	}
}

func TestCancelledDeliveryIsNotSettled(t *testing.T) {
	r := newReceiver(t, 503)
	d := NewDeliverer(nil, nil)
	d.BaseBackoff = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	failures, err := d.Deliver(ctx, []*Compiled{dest(t, r.URL, 5)}, membership("cart", segmentv1.Transition_TRANSITION_ENTER))
	if err == nil || failures != nil {
		t.Fatalf("Deliver = %v, %v; want an error and no dead letter", failures, err)
	}
}

func TestRateLimitAndFanOut(t *testing.T) {
	var slow, fast atomic.Int64
	slowSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { slow.Add(1) }))
	defer slowSrv.Close()
	fastSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fast.Add(1) }))
	defer fastSrv.Close()
	limited, err := Compile(Destination{ID: "slow", URL: slowSrv.URL, SecretEnv: "SECRET", RateLimit: &RateLimit{PerSecond: 20, Burst: 1}}, env)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := testDeliverer()
	start := time.Now()
	for i := 0; i < 5; i++ {
		if _, err := d.Deliver(context.Background(), []*Compiled{limited, dest(t, fastSrv.URL, 1)}, membership("cart", segmentv1.Transition_TRANSITION_ENTER)); err != nil {
			t.Fatal(err)
		}
	}
	// Five requests at 20/s with a burst of one cannot take less than 200 ms.
	if el := time.Since(start); el < 190*time.Millisecond || slow.Load() != 5 || fast.Load() != 5 {
		t.Fatalf("%v elapsed, %d slow and %d fast deliveries", el, slow.Load(), fast.Load())
	}
}
