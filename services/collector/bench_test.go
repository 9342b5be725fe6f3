package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/segmentapi"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

// The collector's hot path, without the network: what one /v1/batch of 100
// analytics.js events (~780 B each, like tools/loadgen sends) costs in CPU
// and allocations. deploy/bench/collector.sh measures the whole thing.
//
//	go test -run '^$' -bench . -benchmem -cpuprofile cpu.out ./services/collector

const benchKey = "wk_bench_0123456789abcdef01"

// benchBatch returns a /v1/batch body of n events shaped like analytics.js's:
// page views and product views with a full context.
func benchBatch(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"batch":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		anon := fmt.Sprintf("2f0b1c9e-6a4d-4e8b-9c1f-%012d", i%37)
		if i%3 == 0 {
			fmt.Fprintf(&b, `{"type":"page","name":"Storm Shell 2","properties":{"path":"/p/prod_%d","referrer":"https://shop.example/c/jackets","search":"","title":"Storm Shell 2","url":"https://shop.example/p/prod_%d"},`, 10000+i, 10000+i)
		} else {
			fmt.Fprintf(&b, `{"type":"track","event":"Product Viewed","properties":{"product_id":"prod_%d","category":"Jackets","name":"Storm Shell 2","brand":"Alpenglow","price":163.58,"currency":"USD"},`, 10000+i)
		}
		fmt.Fprintf(&b, `"anonymousId":"%s","messageId":"ajs-next-1795469961667-1cc23082-707a-406b-9dc6-%012d","timestamp":"2026-05-01T12:00:00.%03dZ",`, anon, i, i%1000)
		fmt.Fprintf(&b, `"context":{"library":{"name":"analytics.js","version":"npm:next-1.72.0"},"page":{"path":"/p/prod_%d","referrer":"https://shop.example/c/jackets","search":"","title":"Storm Shell 2","url":"https://shop.example/p/prod_%d"},`, 10000+i, 10000+i)
		b.WriteString(`"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15","locale":"en-US","ip":"198.51.100.23"},"integrations":{}}`)
	}
	b.WriteString(`],"sentAt":"2026-05-01T12:00:01.000Z"}`)
	return b.Bytes()
}

// discard is a producer that acknowledges at once, so a benchmark measures
// the collector and not Kafka.
type discard struct{ bytes atomic.Int64 }

func (d *discard) Produce(_ context.Context, msgs ...kafka.Message) error {
	for _, m := range msgs {
		d.bytes.Add(int64(len(m.Value)))
	}
	return nil
}

func benchIngestor(b *testing.B, p producer) *ingestor {
	b.Helper()
	reg, err := sources.Parse([]byte("workspaces:\n  - id: bench\n    sources:\n      - id: web\n        write_keys: [" + benchKey + "]\n"))
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Limits: segmentapi.DefaultLimits(), ProduceTimeout: 10 * time.Second, MaxInflightMB: 256, RateLimit: 1e12, RateBurst: 1 << 40}
	return newIngestor(cfg, sources.Static(reg), p, defaultTopics(), newMetrics(nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// BenchmarkParseBatch100 is segmentapi.Parse alone.
func BenchmarkParseBatch100(b *testing.B) {
	body := benchBatch(100)
	lim := segmentapi.DefaultLimits()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := segmentapi.Parse(segmentapi.CallBatch, body, time.Now(), lim); errs != nil {
			b.Fatal(errs[0])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/event")
}

// BenchmarkIngestBatch100 is the transport-neutral path: authenticate,
// parse, rate-limit, build and marshal 100 envelopes (producer discards).
func BenchmarkIngestBatch100(b *testing.B) {
	body := benchBatch(100)
	p := &discard{}
	in := benchIngestor(b, p)
	meta := requestMeta{writeKey: benchKey, ip: "127.0.0.1", userAgent: "bench", api: "http", endpoint: "/v1/batch", requestID: "req-1", traceID: "0123456789abcdef0123456789abcdef"}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		meta.receivedAt = time.Now()
		if o := in.ingest(context.Background(), segmentapi.CallBatch, body, meta); o.status != http.StatusOK {
			b.Fatalf("ingest = %+v", o)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/event")
	b.ReportMetric(float64(p.bytes.Load())/float64(b.N)/100, "envelope-B/event")
}

// BenchmarkHTTPBatch100 adds the HTTP handler: headers, body read, request
// id, metrics and the answer (producer discards).
func BenchmarkHTTPBatch100(b *testing.B) {
	body := benchBatch(100)
	in := benchIngestor(b, &discard{})
	h := newHTTPHandler(in, in.cfg)
	mux := http.NewServeMux()
	h.register(mux)
	auth := basic(benchKey)["Authorization"]
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/batch", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("= %d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/event")
}

// BenchmarkKafkaHTTP is the whole collector as deploy/bench/collector.sh
// drives it — a real HTTP server on loopback, the real producer and broker
// (acks=all, lz4) — fed by 64 concurrent clients in the same process, at 1,
// 20 and 100 events per request. A CPU profile of it shows where a running
// collector spends its time (client frames: net/http.(*Transport),
// persistConn). Skipped without a broker.
//
//	go test -run '^$' -bench 'KafkaHTTP/batch=20$' -benchtime 20s -cpuprofile cpu.out .
func BenchmarkKafkaHTTP(b *testing.B) {
	kc := testinfra.Kafka(b)
	kc.Partitions = 6 // as the collector's default, and the bench script
	names := testinfra.Topics(b, kc)
	p, err := kafkaclient.NewProducer(kc, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	in := benchIngestor(b, p)
	in.topics = names
	h := newHTTPHandler(in, in.cfg)
	mux := http.NewServeMux()
	h.register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	auth := basic(benchKey)["Authorization"]
	for _, n := range []int{1, 20, 100} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			body, path := benchBatch(n), "/v1/batch"
			if n == 1 {
				body, path = benchTrack(), "/v1/track"
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.SetParallelism(32) // × GOMAXPROCS (2 here) = 64 concurrent requests
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", auth)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("POST %s = %d", path, resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchTrack is one event of benchBatch as a /v1/track body.
func benchTrack() []byte {
	b := benchBatch(2)
	start := bytes.Index(b, []byte(`},{"type"`)) + 2
	return append([]byte(nil), b[start:len(b)-len(`],"sentAt":"2026-05-01T12:00:01.000Z"}`)]...)
}

func TestBenchBatchIsValid(t *testing.T) {
	body := benchBatch(100)
	req, errs := segmentapi.Parse(segmentapi.CallBatch, body, time.Now(), segmentapi.DefaultLimits())
	if errs != nil || len(req.Messages) != 100 {
		t.Fatalf("benchmark batch rejected: %v", errs)
	}
	if avg := len(body) / 100; avg < 650 || avg > 900 {
		t.Errorf("benchmark events average %d bytes, want ~780 like loadgen's", avg)
	}
	if !strings.Contains(string(body), `"type":"page"`) {
		t.Error("no page views in the benchmark batch")
	}
	if _, errs := segmentapi.Parse(segmentapi.CallTrack, benchTrack(), time.Now(), segmentapi.DefaultLimits()); errs != nil {
		t.Fatalf("benchmark track rejected: %v\n%s", errs[0], benchTrack())
	}
}
