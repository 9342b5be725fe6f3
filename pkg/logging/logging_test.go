package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewJSONCarriesServiceAndLevel(t *testing.T) {
	var buf bytes.Buffer
	log := New(Config{Format: "json", Level: "warn"}, &buf, "collector")
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want 1 line (info filtered), got %d: %q", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["service"] != "collector" || rec["msg"] != "shown" || rec["k"] != float64(1) {
		t.Errorf("unexpected record %v", rec)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		c    Config
		want string
	}{
		{Config{Format: "json", Level: "info"}, ""},
		{Config{Format: "text", Level: "DEBUG"}, ""},
		{Config{Format: "xml", Level: "info"}, "FP_LOG_FORMAT"},
		{Config{Format: "json", Level: "loud"}, "FP_LOG_LEVEL"},
	}
	for _, tt := range tests {
		err := tt.c.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("Validate(%+v) = %v, want mention of %q", tt.c, err, tt.want)
		}
	}
}
