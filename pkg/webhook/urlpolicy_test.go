package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

func TestURLPolicy(t *testing.T) {
	strict, open := URLPolicy{}, URLPolicy{AllowHTTP: true, AllowPrivate: true}
	for _, tc := range []struct {
		url          string
		strict, open bool // allowed
	}{
		{"https://crm.example/hook", true, true},
		{"http://crm.example/hook", false, true},
		{"https://169.254.169.254/latest/meta-data/", false, true},
		{"https://127.0.0.1:8080/", false, true},
		{"https://[::1]/", false, true},
		{"https://[::ffff:10.0.0.1]/", false, true},
		{"https://10.1.2.3/", false, true},
		{"https://192.168.1.1/", false, true},
		{"https://100.64.0.1/", false, true},
		{"https://0.0.0.0/", false, true},
		{"https://localhost/", false, true},
		{"https://api.localhost/", false, true},
		{"https://[fe80::1]/", false, true},
		{"https://[fd00::1]/", false, true},
		{"https://8.8.8.8/", true, true},
		{"https://user:pw@crm.example/", false, false},
		{"ftp://crm.example/", false, false},
		{"/hook", false, false},
	} {
		for _, p := range []struct {
			name string
			pol  URLPolicy
			want bool
		}{{"strict", strict, tc.strict}, {"open", open, tc.open}} {
			err := p.pol.CheckURL(tc.url)
			if (err == nil) != p.want || (err != nil && !errors.Is(err, ErrURLRefused)) {
				t.Errorf("%s CheckURL(%s) = %v, want allowed %v", p.name, tc.url, err, p.want)
			}
		}
	}
}

// TestDeliveryChecksTheResolvedAddress: a destination named by a host
// name that resolves to an internal address (DNS rebinding, or a name an
// attacker controls) is not dialled; the same server named by its
// loopback address literally (only an operator can save that) is.
func TestDeliveryChecksTheResolvedAddress(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	_, port, _ := net.SplitHostPort(u.Host)
	d := NewDeliverer(nil, nil)
	d.Sleep = func(context.Context, time.Duration) bool { return true }
	d.resolve = func(_ context.Context, _, host string) ([]netip.Addr, error) {
		if host == "hooks.attacker.example" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, errors.New("no such host")
	}
	named, err := Compile(Destination{ID: "named", URL: "https://hooks.attacker.example:" + port + "/", SecretEnv: "SECRET", MaxAttempts: 1}, env)
	if err != nil {
		t.Fatal(err)
	}
	fails, err := d.Deliver(context.Background(), []*Compiled{named}, membership("s", segmentv1.Transition_TRANSITION_ENTER))
	if err != nil || len(fails) != 1 || !strings.Contains(fails[0].LastError, "internal address") || hits.Load() != 0 {
		t.Fatalf("named internal host: %+v %v (hits %d)", fails, err, hits.Load())
	}
	d.Policy.AllowPrivate = true // the operator's -webhooks.allow-private
	named.URL = "http://hooks.attacker.example:" + port + "/"
	if fails, err := d.Deliver(context.Background(), []*Compiled{named}, membership("s", segmentv1.Transition_TRANSITION_ENTER)); err != nil || len(fails) != 0 || hits.Load() != 1 {
		t.Fatalf("allowed by the operator: %+v %v", fails, err)
	}
	d.Policy.AllowPrivate = false
	literal, _ := Compile(Destination{ID: "lit", URL: srv.URL, SecretEnv: "SECRET", MaxAttempts: 1}, env)
	if fails, err := d.Deliver(context.Background(), []*Compiled{literal}, membership("s", segmentv1.Transition_TRANSITION_ENTER)); err != nil || len(fails) != 0 || hits.Load() != 2 {
		t.Fatalf("literal loopback (operator's): %+v %v", fails, err)
	}
}
