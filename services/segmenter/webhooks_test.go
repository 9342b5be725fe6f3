package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/webhook"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// TestWebhooks: an abandoned cart reaches the marketer's endpoint signed,
// once it was refused twice with 503; a destination that refuses for good
// gets the transition dead-lettered with the reason.
func TestWebhooks(t *testing.T) {
	const secret = "test-webhook-secret-0123456789"
	t.Setenv("FP_TEST_HOOK_SECRET", secret)
	var mu sync.Mutex
	var bodies [][]byte
	var deliveries []string
	calls := 0
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := webhook.Verify([]byte(secret), r.Header.Get("Firstparty-Signature"), b, time.Minute, time.Now()); err != nil {
			t.Errorf("signature: %v", err)
		}
		bodies = append(bodies, b)
		deliveries = append(deliveries, r.Header.Get("Firstparty-Delivery"))
	}))
	defer crm.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer broken.Close()

	h := newHarness(t, "- {id: placeholder, version: 1, name: P, condition: 'false'}")
	h.writeConfigWith(`
- id: abandoned-cart
  version: 1
  name: Abandoned cart
  condition: abandoned
  aggregates: {abandoned: {absence: {after: "Cart Added", missing: "Order Completed", within: 1h}}}
`, `
- {id: crm, url: "`+crm.URL+`", secret_env: FP_TEST_HOOK_SECRET, segments: [abandoned-cart], transitions: [enter], max_attempts: 5}
- {id: broken, url: "`+broken.URL+`", secret_env: FP_TEST_HOOK_SECRET}
`)
	h.start()
	h.track("ann", "Cart Added", nil)
	h.clock.Advance(time.Hour)
	h.waitFor("ann abandoned-cart enter")
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 || calls != 3 {
		t.Fatalf("%d deliveries after %d calls, want 1 after 3", len(bodies), calls)
	}
	var p webhook.Payload
	if err := json.Unmarshal(bodies[0], &p); err != nil || p.SegmentID != "abandoned-cart" || p.ProfileID != "ann" || p.Transition != "enter" ||
		deliveries[0] != h.memberships()[0].MembershipId {
		t.Fatalf("payload %s (delivery %s): %v", bodies[0], deliveries[0], err)
	}
	dead, _ := testinfra.Read(t, h.kc, h.names.WebhooksDead, 1, func() *segmentv1.WebhookFailure { return &segmentv1.WebhookFailure{} })
	if f := dead[0]; f.DestinationId != "broken" || f.LastStatus != http.StatusGone || f.Attempts != 1 || f.Membership.GetSegmentId() != "abandoned-cart" {
		t.Fatalf("dead letter = %v", f)
	}
}
