package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/topics"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// TestBrokerKilledUnderLoad is the collector's central promise under the
// worst failure a single-broker deployment has: the broker's JVM is
// SIGKILLed while clients are sending, and restarted a few seconds later on
// the same data. Every event of every request answered 200 must be on the
// raw topic afterwards; every other request must have been told to retry
// (503 with Retry-After) or have lost its connection. The broker is private
// to this test (its own KRaft node, data dir and ports), so killing it
// disturbs nobody.
func TestBrokerKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a private Kafka broker (~40 s)")
	}
	began := time.Now()
	kb := newPrivateKafka(t)
	kb.start(t)

	const produceTimeout = 2 * time.Second
	h := startCollectorOn(t, kb.addr, map[string]string{
		"FP_PRODUCE_TIMEOUT": produceTimeout.String(), "FP_KAFKA_PARTITIONS": "3",
		"FP_KAFKA_DIAL_TIMEOUT": "1s", "FP_KAFKA_WRITE_TIMEOUT": "2s",
	})
	t.Logf("broker and collector up after %v", time.Since(began).Round(time.Millisecond))

	ld := newKillLoad(h.base, 8, 10, 10*time.Millisecond)
	ld.start()
	stopped := false
	defer func() {
		if !stopped {
			ld.stop()
		}
	}()

	// Healthy: requests are acknowledged.
	eventually(t, 20*time.Second, "requests acknowledged before the kill", func() bool { return ld.okSince(time.Time{}) >= 50 })

	kb.kill(t)
	killedAt := time.Now()
	t.Logf("broker SIGKILLed after %d acknowledged requests", ld.okSince(time.Time{}))
	// The outage is a fixed pause: the broker stays down while clients keep
	// sending; then requests must be failing, not piling up or succeeding.
	time.Sleep(5 * time.Second)
	eventually(t, 3*produceTimeout+5*time.Second, "requests refused while the broker is down", func() bool { return ld.failedSince(killedAt) >= 4 })

	kb.start(t)
	restartedAt := time.Now()
	t.Logf("broker restarted on the same data after %v down", restartedAt.Sub(killedAt).Round(time.Millisecond))
	eventually(t, 45*time.Second, "requests acknowledged after the restart", func() bool { return ld.okSince(restartedAt) >= 20 })
	ld.stop()
	stopped = true

	reqs := ld.results()
	onTopic, dups := readAllEnvelopes(t, kb.addr, h.topics.Raw)
	var ok, unavailable, connErrs, okAfterRestart, failedDuringOutage, ambiguousLanded int
	var recovered time.Duration // restart → first 200 of a request sent after it
	for _, r := range reqs {
		switch {
		case r.err != nil:
			connErrs++
		case r.status == http.StatusOK:
			ok++
			if r.sent.After(restartedAt) {
				okAfterRestart++
				if d := r.done.Sub(restartedAt); recovered == 0 || d < recovered {
					recovered = d
				}
			}
			for _, id := range r.ids {
				if !onTopic[id] {
					t.Errorf("request %s answered 200 at %s but event %s is not on the raw topic (acknowledged and lost)", r.name, r.done.Format("15:04:05.000"), id)
				}
			}
		case r.status == http.StatusServiceUnavailable:
			unavailable++
			if r.retryAfter == "" {
				t.Errorf("request %s: 503 without Retry-After (body %s)", r.name, r.body)
			}
		default:
			t.Errorf("request %s: status %d (%s); want 200, 503 or a connection error", r.name, r.status, r.body)
		}
		if r.status != http.StatusOK {
			if r.done.After(killedAt) && r.sent.Before(restartedAt) {
				failedDuringOutage++
			}
			for _, id := range r.ids {
				if onTopic[id] {
					ambiguousLanded++ // written, but the ack never came: the sender's retry makes a duplicate, which is allowed
				}
			}
		}
	}
	if failedDuringOutage == 0 {
		t.Error("no request failed during the outage: the test proved nothing")
	}
	if okAfterRestart == 0 {
		t.Error("no request succeeded after the restart")
	}
	t.Logf("%d requests: %d answered 200 (%d after the restart, the first %v after it), %d answered 503, %d connection errors; %d failed during the outage; "+
		"%d distinct events on the raw topic (%d duplicate copies), %d events of unacknowledged requests landed anyway; %v in all",
		len(reqs), ok, okAfterRestart, recovered.Round(time.Millisecond), unavailable, connErrs, failedDuringOutage, len(onTopic), dups, ambiguousLanded, time.Since(began).Round(time.Millisecond))
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- load

type killReq struct {
	name       string
	ids        []string
	sent, done time.Time
	status     int
	retryAfter string
	body       string
	err        error
}

// killLoad is several clients, each sending batches of events with unique
// messageIds at a steady pace and recording every answer.
type killLoad struct {
	base     string
	clients  int
	batch    int
	interval time.Duration
	client   *http.Client

	mu   sync.Mutex
	reqs []killReq
	quit chan struct{}
	wg   sync.WaitGroup
}

func newKillLoad(base string, clients, batch int, interval time.Duration) *killLoad {
	return &killLoad{
		base: base, clients: clients, batch: batch, interval: interval, quit: make(chan struct{}),
		client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}},
	}
}

func (l *killLoad) start() {
	auth := basic(backendKey)["Authorization"]
	for c := 0; c < l.clients; c++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(l.interval)
			defer tick.Stop()
			for seq := 0; ; seq++ {
				select {
				case <-l.quit:
					return
				case <-tick.C:
				}
				r := killReq{name: fmt.Sprintf("c%d-r%d", c, seq)}
				var body bytes.Buffer
				body.WriteString(`{"batch":[`)
				for i := 0; i < l.batch; i++ {
					id := fmt.Sprintf("kill-%s-e%d", r.name, i)
					r.ids = append(r.ids, id)
					if i > 0 {
						body.WriteByte(',')
					}
					fmt.Fprintf(&body, `{"type":"track","event":"Product Viewed","anonymousId":"dev-%d-%d","messageId":%q,"properties":{"product_id":"p-%d","price":19.99}}`, c, seq%50, id, i)
				}
				body.WriteString(`]}`)
				req, _ := http.NewRequest(http.MethodPost, l.base+"/v1/batch", &body)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", auth)
				r.sent = time.Now()
				resp, err := l.client.Do(req)
				if err != nil {
					r.err = err
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					r.status, r.retryAfter, r.body = resp.StatusCode, resp.Header.Get("Retry-After"), strings.TrimSpace(string(b))
				}
				r.done = time.Now()
				l.mu.Lock()
				l.reqs = append(l.reqs, r)
				l.mu.Unlock()
			}
		}()
	}
}

func (l *killLoad) stop() {
	close(l.quit)
	l.wg.Wait()
}

func (l *killLoad) results() []killReq {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]killReq(nil), l.reqs...)
}

func (l *killLoad) okSince(t time.Time) int {
	n := 0
	for _, r := range l.results() {
		if r.status == http.StatusOK && !r.sent.Before(t) {
			n++
		}
	}
	return n
}

func (l *killLoad) failedSince(t time.Time) int {
	n := 0
	for _, r := range l.results() {
		if r.status != http.StatusOK && r.done.After(t) {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------- topic

// readAllEnvelopes reads every partition of topic from its first offset to
// its end and returns the message ids found, with the number of duplicate
// copies.
func readAllEnvelopes(t *testing.T, broker, topic string) (map[string]bool, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", broker)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	seen := map[string]bool{}
	dups := 0
	for _, p := range parts {
		leader, err := kafka.DialLeader(ctx, "tcp", broker, topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		first, last, err := leader.ReadOffsets()
		leader.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last <= first {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: p.ID, MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(first); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("reading %s/%d at offset %d of %d..%d: %v", topic, p.ID, r.Offset(), first, last, err)
			}
			var env eventv1.Envelope
			if err := proto.Unmarshal(m.Value, &env); err != nil {
				t.Fatalf("%s/%d@%d is not an Envelope: %v", topic, p.ID, m.Offset, err)
			}
			if seen[env.MessageId] {
				dups++
			}
			seen[env.MessageId] = true
			if m.Offset >= last-1 {
				break
			}
		}
		r.Close()
	}
	return seen, dups
}

// ---------------------------------------------------------------- broker

// privateKafka is a single KRaft node (broker + controller) in a temporary
// directory on free loopback ports, started from the jars in FP_KAFKA_LIBS.
type privateKafka struct {
	libs, java, dir, props string
	addr                   string
	cmd                    *exec.Cmd
	exited                 chan struct{}
}

func newPrivateKafka(t *testing.T) *privateKafka {
	t.Helper()
	libs := os.Getenv("FP_KAFKA_LIBS")
	if libs == "" {
		msg := "FP_KAFKA_LIBS is not set: it names the directory of the Kafka jars this test starts a private broker from " +
			"(`deploy/local/servers.sh install kafka`, then export the variables from `deploy/local/servers.sh env`)"
		if os.Getenv("FP_REQUIRE_SERVERS") == "1" {
			t.Fatal(msg + " (FP_REQUIRE_SERVERS=1 forbids skipping)")
		}
		t.Skip(msg)
	}
	if m, _ := filepath.Glob(filepath.Join(libs, "kafka_2.13-*.jar")); len(m) == 0 {
		t.Fatalf("FP_KAFKA_LIBS=%s holds no kafka_2.13 jar", libs)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("java (17 or newer) is needed to run Kafka: %v", err)
	}
	dir := t.TempDir()
	kb := &privateKafka{libs: libs, java: java, dir: dir, props: filepath.Join(dir, "server.properties")}
	port, ctrl := freePort(t), freePort(t)
	kb.addr = "127.0.0.1:" + strconv.Itoa(port)
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:%d
listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d
advertised.listeners=PLAINTEXT://127.0.0.1:%d
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=%s
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
`, ctrl, port, ctrl, port, filepath.Join(dir, "data"))
	if err := os.WriteFile(kb.props, []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	// A cluster id is a base64url UUID; StorageTool refuses one starting
	// with '-' (it would read as an option).
	var id string
	for id == "" || id[0] == '-' {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id = base64.RawURLEncoding.EncodeToString(b[:])
	}
	out, err := exec.Command(java, kb.jvmArgs("kafka.tools.StorageTool", "format", "-t", id, "-c", kb.props)...).CombinedOutput()
	if err != nil {
		t.Fatalf("formatting the private broker's storage: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if kb.cmd != nil {
			kb.kill(t)
		}
	})
	return kb
}

func (kb *privateKafka) jvmArgs(main string, args ...string) []string {
	log4j, _ := filepath.Abs("../../deploy/local/kafka/log4j2.xml")
	return append([]string{
		// A test broker carries little: start fast (C1 only, serial GC)
		// rather than run fast; the machine may be busy with other tests.
		"-Xms128m", "-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
		"-Dkafka.logs.dir=" + filepath.Join(kb.dir, "logs"), "-Dlog4j2.configurationFile=" + log4j,
		"-cp", filepath.Join(kb.libs, "*"), main,
	}, args...)
}

// start launches the broker and waits until it answers metadata requests.
func (kb *privateKafka) start(t *testing.T) {
	t.Helper()
	out, err := os.OpenFile(filepath.Join(kb.dir, "kafka.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kb.java, kb.jvmArgs("kafka.Kafka", kb.props)...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("starting the private broker: %v", err)
	}
	kb.cmd, kb.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(kb.exited) }()

	var kc kafkaclient.Config
	kc.Brokers, kc.ClientID, kc.DialTimeout = config.List{kb.addr}, "kill-test", time.Second
	deadline := time.Now().Add(45 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := kafkaclient.Ping(ctx, kc)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-kb.exited:
			t.Fatalf("the private broker exited during start:\n%s", kb.tail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the private broker does not answer on %s after 45 s: %v\n%s", kb.addr, err, kb.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill SIGKILLs the JVM, as an OOM killer or a lost machine would, and
// waits until it is gone.
func (kb *privateKafka) kill(t *testing.T) {
	t.Helper()
	if kb.cmd == nil {
		return
	}
	_ = syscall.Kill(-kb.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-kb.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("the private broker (pid %d) survived SIGKILL for 10 s", kb.cmd.Process.Pid)
	}
	kb.cmd = nil
}

func (kb *privateKafka) tail() string {
	b, _ := os.ReadFile(filepath.Join(kb.dir, "kafka.out"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// ---------------------------------------------------------------- collector

// startCollectorOn runs the collector in-process against the given broker,
// with topics of its own (the collector creates them at start).
func startCollectorOn(t *testing.T, broker string, extra map[string]string) *harness {
	t.Helper()
	dir := t.TempDir()
	srcPath := filepath.Join(dir, "sources.yaml")
	if err := os.WriteFile(srcPath, []byte(testSources), 0o600); err != nil {
		t.Fatal(err)
	}
	names := topics.Defaults().WithPrefix("kill.")
	env := map[string]string{
		"FP_KAFKA_BROKERS": broker, "FP_SOURCES_FILE": srcPath, "FP_GRPC_ADDR": "",
		"FP_TOPIC_RAW": names.Raw, "FP_TOPIC_VALID": names.Valid, "FP_TOPIC_INVALID": names.Invalid,
		"FP_TOPIC_RESOLVED": names.Resolved, "FP_TOPIC_PROFILES": names.Profiles, "FP_TOPIC_MEMBERSHIP": names.Membership,
		"FP_DRAIN_TIMEOUT": "2s", "FP_RATELIMIT_EVENTS_PER_SECOND": "1000000", "FP_RATELIMIT_BURST": "1000000",
	}
	for k, v := range extra {
		env[k] = v
	}
	s := &service{}
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	var ac app.Config
	ac.RegisterFlags(fs, "127.0.0.1:0")
	s.RegisterFlags(fs)
	if err := config.Parse(fs, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := config.ValidateAll(&ac, s); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	a := app.New("collector", ac, log)
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx, a); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("collector stopped with error: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("collector did not stop within 15 s")
		}
	})
	waitListening(t, a.Addr())
	return &harness{t: t, base: "http://" + a.Addr(), kafka: s.kafka, topics: names, sources: srcPath}
}
