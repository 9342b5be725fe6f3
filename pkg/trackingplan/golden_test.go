package trackingplan

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

var update = flag.Bool("update", false, "rewrite golden files")

// checkGolden compares got (JSON) with testdata/name, indented for diffs.
// Run `go test -update` to accept a deliberate change.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(got), "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, buf.Bytes(), want)
	}
}

func readPlan(t testing.TB, name string) *Plan {
	t.Helper()
	def, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(def)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// goldenResult is a Result as the validator will record it: the reason by
// its proto name, so the file reads like the DLQ record.
type goldenResult struct {
	Plan       string            `json:"plan"`
	Version    uint32            `json:"version"`
	Planned    bool              `json:"planned"`
	Block      bool              `json:"block"`
	Violations []goldenViolation `json:"violations"`
}

type goldenViolation struct {
	Reason string `json:"reason"`
	Field  string `json:"field"`
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
}

// TestGoldenOrderCompleted checks a realistic broken "Order Completed"
// (string revenue, negative total, lower-case currency, an unplanned
// property, no order_id, and bad products) against a realistic ecommerce
// plan, and pins every violation: pointer, keyword and wording.
func TestGoldenOrderCompleted(t *testing.T) {
	p := readPlan(t, "ecommerce.yaml")
	props, err := os.ReadFile(filepath.Join("testdata", "order_completed_bad.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Check(&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, Event: "Order Completed", PropertiesJson: props})
	g := goldenResult{Plan: p.ID, Version: p.Version, Planned: r.Planned, Block: r.Block}
	for _, v := range r.Violations {
		g.Violations = append(g.Violations, goldenViolation{v.Reason.String(), v.Field, v.Rule, v.Detail})
	}
	var got bytes.Buffer
	enc := json.NewEncoder(&got)
	enc.SetEscapeHTML(false) // keep ">=" readable in the file
	if err := enc.Encode(g); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "order_completed.golden.json", got.Bytes())

	// The same plan passes a good order: the golden file is about the
	// event, not a plan that refuses everything.
	good := `{"order_id":"50314b8e9bcf000000000000","total":27.5,"revenue":25,"shipping":3,"tax":2,"discount":2.5,
		"coupon":"hasbros","currency":"USD","products":[{"product_id":"507f1f77bcf86cd799439011","sku":"45790-32",
		"name":"Monopoly: 3rd Edition","price":19,"quantity":1,"category":"Games","url":"https://www.example.com/product/path",
		"image_url":"https://www.example.com/product/path.jpg"}]}`
	if r := p.Check(&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, Event: "Order Completed", PropertiesJson: []byte(good)}); len(r.Violations) > 0 {
		t.Errorf("a good order has violations:\n%s", dump(r.Violations))
	}
}
