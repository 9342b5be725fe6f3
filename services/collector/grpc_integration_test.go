package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/segmentapi"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/topics"
	ingestv1 "github.com/firstparty/firstparty/proto/ingest/v1"
)

func grpcClient(t *testing.T, addr string) ingestv1.IngestServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return ingestv1.NewIngestServiceClient(conn)
}

func withKey(ctx context.Context, header, value string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, header, value)
}

func TestGRPCSend(t *testing.T) {
	h := startCollector(t, nil)
	c := grpcClient(t, h.grpcAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	basicKey := "Basic " + base64.StdEncoding.EncodeToString([]byte(backendKey+":"))

	resp, err := c.Send(withKey(ctx, "authorization", basicKey), &ingestv1.SendRequest{
		Call: "batch", RequestId: "r-1",
		Payload: []byte(`{"batch":[{"type":"track","userId":"g-1","event":"Server Event"},{"type":"identify","userId":"g-1","traits":{"plan":"pro"}}]}`),
	})
	if err != nil || resp.Accepted != 2 || resp.RequestId != "r-1" {
		t.Fatalf("Send = %v, %v", resp, err)
	}
	tests := []struct {
		name    string
		ctx     context.Context
		req     *ingestv1.SendRequest
		code    codes.Code
		message string
	}{
		{"x-write-key", withKey(ctx, "x-write-key", backendKey), &ingestv1.SendRequest{Call: "track", Payload: []byte(`{"userId":"g-2","event":"Via Header"}`)}, codes.OK, ""},
		{"no key", ctx, &ingestv1.SendRequest{Call: "track", Payload: []byte(`{"userId":"u","event":"x"}`)}, codes.Unauthenticated, "no write key"},
		{"bad key", withKey(ctx, "x-write-key", "wk_nobody_0123456789abcdef"), &ingestv1.SendRequest{Call: "track", Payload: []byte(`{"userId":"u","event":"x"}`)}, codes.Unauthenticated, "unknown or revoked"},
		{"bad call", withKey(ctx, "x-write-key", backendKey), &ingestv1.SendRequest{Call: "purchase", Payload: []byte(`{}`)}, codes.InvalidArgument, "call must be"},
		{"bad payload", withKey(ctx, "x-write-key", backendKey), &ingestv1.SendRequest{Call: "track", Payload: []byte(`{"event":"x"}`)}, codes.InvalidArgument, "userId or anonymousId"},
		{"too large", withKey(ctx, "x-write-key", backendKey), &ingestv1.SendRequest{Call: "track", Payload: []byte(`{"userId":"u","event":"x","properties":{"p":"` + strings.Repeat("x", 40<<10) + `"}}`)}, codes.ResourceExhausted, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Send(tt.ctx, tt.req)
			if status.Code(err) != tt.code || !strings.Contains(fmt.Sprint(err), tt.message) {
				t.Fatalf("Send = %v; want %v containing %q", err, tt.code, tt.message)
			}
		})
	}
	envs, _ := envelopes(t, h, 3)
	for _, env := range envs {
		if env.Collector.GetApi() != "grpc" || env.SourceId != "backend" || env.Collector.GetIp() != "127.0.0.1" {
			t.Errorf("grpc envelope metadata: %v", env.Collector)
		}
	}
}

func TestGRPCSendStream(t *testing.T) {
	h := startCollector(t, nil)
	c := grpcClient(t, h.grpcAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := c.SendStream(withKey(ctx, "x-write-key", backendKey))
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	go func() {
		for i := 0; i < n; i++ {
			payload := fmt.Sprintf(`{"batch":[{"type":"track","anonymousId":"s-%d","event":"Streamed","messageId":"stream-%d"}]}`, i, i)
			if i == 7 {
				payload = `{"batch":[{"type":"track","event":"no identity"}]}` // one bad request must not end the stream
			}
			if err := stream.Send(&ingestv1.SendRequest{Call: "batch", RequestId: fmt.Sprint(i), Payload: []byte(payload)}); err != nil {
				t.Errorf("stream send: %v", err)
				return
			}
		}
		_ = stream.CloseSend()
	}()
	got := 0
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if resp.RequestId != fmt.Sprint(got) {
			t.Fatalf("answer %d is for request %q: answers must come in order", got, resp.RequestId)
		}
		if got == 7 {
			if codes.Code(resp.Code) != codes.InvalidArgument || len(resp.Errors) != 1 || resp.Errors[0].Index != 0 || resp.Errors[0].Code != "missing_identity" {
				t.Fatalf("bad request answer = %v", resp)
			}
		} else if resp.Code != 0 || resp.Accepted != 1 {
			t.Fatalf("answer %d = %v", got, resp)
		}
		got++
	}
	if got != n {
		t.Fatalf("%d answers for %d requests", got, n)
	}
	envs, _ := envelopes(t, h, n-1)
	seen := map[string]bool{}
	for _, e := range envs {
		seen[e.MessageId] = true
	}
	for i := 0; i < n; i++ {
		if i != 7 && !seen[fmt.Sprintf("stream-%d", i)] {
			t.Fatalf("stream-%d missing from the raw topic", i)
		}
	}
}

// TestKafkaDownAnswers503 points a collector at a broker address where
// nothing listens, and at one that accepts connections but never answers
// (a hung broker): each request must get 503 with Retry-After, never 200.
func TestKafkaDownAnswers503(t *testing.T) {
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold the connection open, say nothing
		}
	}()
	for _, broker := range []string{"127.0.0.1:1", hung.Addr().String()} {
		t.Run(broker, func(t *testing.T) { kafkaDown(t, broker) })
	}
}

func kafkaDown(t *testing.T, broker string) {
	var kc kafkaclient.Config
	kc.Brokers = config.List{broker}
	kc.ClientID, kc.BatchSize, kc.BatchBytes, kc.Compression = "test", 100, 1<<20, "none"
	kc.BatchTimeout, kc.WriteTimeout, kc.DialTimeout = time.Millisecond, time.Second, 200*time.Millisecond
	p, err := kafkaclient.NewProducer(kc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	reg, err := sources.Parse([]byte(testSources))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Limits: segmentapi.DefaultLimits(), ProduceTimeout: 500 * time.Millisecond, MaxInflightMB: 8, RateLimit: 1000, RateBurst: 1000}
	in := newIngestor(cfg, sources.Static(reg), p, topics.Defaults(), newMetrics(nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	o := in.ingest(context.Background(), segmentapi.CallTrack, []byte(`{"userId":"u","event":"x"}`), requestMeta{writeKey: backendKey, receivedAt: time.Now(), traceID: "t"})
	if o.status != http.StatusServiceUnavailable || o.retryAfter <= 0 {
		t.Fatalf("outcome with Kafka down = %+v", o)
	}
}
