package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/chclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/topics"
)

// benchEnvelopes returns n distinct full Segment events (about 1.3 kB each
// on the wire), encoded.
func benchEnvelopes(b *testing.B, topic string, n int) []kafka.Message {
	b.Helper()
	msgs := make([]kafka.Message, n)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range msgs {
		env := fullEnvelope("bench", fmt.Sprintf("m-%d", i))
		env.Event.AnonymousId = fmt.Sprintf("a-%d", i%5000)
		env.Event.Timestamp = tsAt(base.Add(time.Duration(i) * time.Second))
		v, err := proto.Marshal(env)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = kafka.Message{Topic: topic, Key: []byte(env.Event.AnonymousId), Value: v, Time: time.Now()}
	}
	return msgs
}

// BenchmarkConvert is the pure part: decode an Envelope and flatten it.
func BenchmarkConvert(b *testing.B) {
	names := topics.Defaults()
	msgs := benchEnvelopes(b, names.Resolved, 500)
	h := &handler{topics: names, now: time.Now, m: newMetrics(nil)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = h.convert(msgs[i%len(msgs) : i%len(msgs)+1])
	}
}

// BenchmarkHandleBatch inserts batches of full events into the real
// ClickHouse through the handler (decode, flatten, one batch insert), for
// several batch sizes: a part per insert costs the server a fixed time, so
// rows/s grows with the batch.
func BenchmarkHandleBatch(b *testing.B) {
	conn, _ := migrated(b)
	names := topics.Defaults()
	h := newHandler(conn, names, nil)
	all := benchEnvelopes(b, names.Resolved, 20000)
	for _, size := range []int{500, 5000, 20000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			msgs := all[:size]
			start := time.Now()
			for b.Loop() {
				if _, err := h.Handle(context.Background(), msgs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// BenchmarkTopicToTable measures the whole loader: n events (b.N, at least
// 20,000 so that joining the group does not dominate) are produced to the
// resolved topic first, then a loader with the default configuration loads
// them; the time is from its start until ClickHouse holds the last one
// (group join included), and ns/op is per event.
func BenchmarkTopicToTable(b *testing.B) {
	kc := testinfra.Kafka(b)
	names := testinfra.Topics(b, kc)
	conn, cc := migrated(b)
	n := max(b.N, 20000)
	msgs := benchEnvelopes(b, names.Resolved, n)
	produce(b, kc, msgs)
	group := testinfra.Unique(b)
	msgs = nil
	debug.FreeOSMemory()
	// The loader's own memory is what the process grows by from here.
	before := rss("VmRSS:")
	var peak atomic.Int64
	sampling := make(chan struct{})
	go func() {
		for {
			select {
			case <-sampling:
				return
			case <-time.After(20 * time.Millisecond):
				if v := rss("VmRSS:"); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	// FP_BENCH_LOADER_ENV: NAME=VALUE words for the loader, for A/B runs
	// ("FP_CONSUMER_BATCH_SIZE=5000").
	extra := map[string]string{}
	for _, kv := range strings.Fields(os.Getenv("FP_BENCH_LOADER_ENV")) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			extra[k] = v
		}
	}
	run := runLoader(b, kc, cc, names, group, extra)
	// Until every row is in ClickHouse (the commit follows right after).
	for count(b, conn, "SELECT count() FROM events") < uint64(n) {
		if time.Since(start) > 10*time.Minute {
			b.Fatal("not loaded within 10 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(sampling)
	testinfra.WaitCaughtUp(b, kc, group, names.Resolved, time.Minute)
	run.stop()
	if got := count(b, conn, "SELECT count() FROM events FINAL"); got != uint64(n) {
		b.Fatalf("loaded %d rows, want %d", got, n)
	}
	rate := float64(n) / elapsed.Seconds()
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(n), "ns/op")
	b.ReportMetric(rate, "rows/s")
	b.ReportMetric(float64(max(0, peak.Load()-before))/(1<<20), "loader-peak-MB")
	if os.Getenv("FP_BENCH_BASELINE") == "" {
		return
	}
	// The baseline, in the same run: clickhouse-client inserting the very
	// same rows as TSV into a table of the same schema, and narrow rows
	// (three columns) for the reference figure.
	same, narrow := clickhouseClientBaseline(b, cc, n)
	b.ReportMetric(same, "client-same-rows/s")
	b.ReportMetric(narrow, "client-narrow-rows/s")
	b.ReportMetric(rate/same, "ratio")
}

// clickhouseClientBaseline times Debian's clickhouse-client inserting the
// events table's rows again as TSV, and 2 M narrow rows, in rows/s.
func clickhouseClientBaseline(b *testing.B, cc chclient.Config, n int) (same, narrow float64) {
	b.Helper()
	bin, err := exec.LookPath("clickhouse-client")
	if err != nil {
		b.Skip("clickhouse-client not installed")
	}
	host, port, _ := strings.Cut(cc.Addrs[0], ":")
	client := func(query string, in io.Reader, out io.Writer) time.Duration {
		cmd := exec.Command(bin, "--host", host, "--port", port, "--database", cc.Database, "--query", query)
		cmd.Stdin, cmd.Stdout = in, out
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("clickhouse-client %q: %v: %s", query, err, stderr.String())
		}
		return time.Since(start)
	}
	dir := b.TempDir()
	tsv, err := os.Create(filepath.Join(dir, "events.tsv"))
	if err != nil {
		b.Fatal(err)
	}
	client("SELECT * FROM events FORMAT TabSeparated", nil, tsv)
	tsv.Close()
	client("CREATE TABLE events_baseline AS events", nil, io.Discard)
	f, _ := os.Open(tsv.Name())
	took := client("INSERT INTO events_baseline FORMAT TabSeparated", f, io.Discard)
	f.Close()
	same = float64(n) / took.Seconds()

	const narrowRows = 2_000_000
	var buf bytes.Buffer
	for i := 0; i < narrowRows; i++ {
		fmt.Fprintf(&buf, "%d\tm-%d\t2026-03-01 00:00:00\n", i, i)
	}
	client("CREATE TABLE narrow (id UInt64, message_id String, at DateTime) ENGINE = MergeTree ORDER BY id", nil, io.Discard)
	took = client("INSERT INTO narrow FORMAT TabSeparated", &buf, io.Discard)
	return same, narrowRows / took.Seconds()
}

// rss reads a memory line of /proc/self/status (VmRSS:, VmHWM:), in bytes.
func rss(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
