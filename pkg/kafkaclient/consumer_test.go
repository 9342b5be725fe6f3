package kafkaclient

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestConsumerConfigDefaultsAndValidate(t *testing.T) {
	var c ConsumerConfig
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs, "test")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.Pipeline || c.FetchMinBytes != 1 || c.FetchMaxWait != 250*time.Millisecond {
		t.Fatalf("defaults: pipeline %v, fetch-min-bytes %d, fetch-max-wait %v", c.Pipeline, c.FetchMinBytes, c.FetchMaxWait)
	}
	for _, tc := range []struct {
		mod  func(*ConsumerConfig)
		want string
	}{
		{func(c *ConsumerConfig) { c.FetchMinBytes = -1 }, "consumer.fetch-min-bytes"},
		{func(c *ConsumerConfig) { c.FetchMaxWait = 0 }, "consumer.fetch-max-wait"},
	} {
		bad := c
		tc.mod(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate = %v, want an error naming %s", err, tc.want)
		}
	}
}
