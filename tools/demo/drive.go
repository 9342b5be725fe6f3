package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/firstparty/firstparty/tools/clickstream"
)

// Sent is what the shop sent so far.
type Sent struct {
	Accepted, Failed int64
	FirstErr         string
	Shop             clickstream.Stats
}

// shop plays the simulated shop through the collector, as an SDK would:
// /v1/batch, Basic auth with the write key.
type shop struct {
	cfg    Config
	client *http.Client
	auth   string

	mu   sync.Mutex
	sent Sent
}

func newShop(cfg Config) *shop {
	return &shop{cfg: cfg, client: &http.Client{Timeout: 10 * time.Second},
		auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.WriteKey+":"))}
}

func (s *shop) snapshot() Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// run sends cfg.Rate events a second in batches until ctx ends. A request
// that takes longer than its slot delays the next ones: the demo's rate is
// modest, so falling behind means the collector is in trouble, which the
// view shows.
func (s *shop) run(ctx context.Context) {
	gen := clickstream.New(s.cfg.Seed, s.cfg.Devices)
	interval := time.Duration(float64(time.Second) * float64(s.cfg.Batch) / float64(s.cfg.Rate))
	t := time.NewTicker(interval)
	defer t.Stop()
	var body []byte
	for {
		body, _ = gen.Request(body[:0], s.cfg.Batch, time.Now())
		err := s.post(ctx, body)
		s.mu.Lock()
		if err == nil {
			s.sent.Accepted += int64(s.cfg.Batch)
		} else if ctx.Err() == nil {
			s.sent.Failed += int64(s.cfg.Batch)
			if s.sent.FirstErr == "" {
				s.sent.FirstErr = err.Error()
			}
		}
		s.sent.Shop = gen.Stats()
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *shop) post(ctx context.Context, body []byte) error {
	url := strings.TrimSuffix(s.cfg.CollectorURL, "/") + "/v1/batch"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("posting batch: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", s.auth)
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting batch: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("posting batch: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
