package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/chclient"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/topics"
	"github.com/firstparty/firstparty/pkg/traceid"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

type loaderRun struct {
	app  *app.App
	stop func()
}

// runLoader runs the loader in-process with its own consumer group until
// stop is called. env overrides the defaults (FP_DRAIN_TIMEOUT,
// FP_CONSUMER_BATCH_SIZE, …).
func runLoader(t testing.TB, kc kafkaclient.Config, cc chclient.Config, names topics.Names, group string, extra map[string]string) loaderRun {
	t.Helper()
	env := testinfra.With(testinfra.TopicEnv(names),
		"FP_KAFKA_BROKERS", kc.Brokers.String(), "FP_KAFKA_PARTITIONS", "3",
		"FP_CLICKHOUSE_ADDR", cc.Addrs.String(), "FP_CLICKHOUSE_DATABASE", cc.Database,
		"FP_CONSUMER_GROUP", group, "FP_DRAIN_TIMEOUT", "5s", "FP_CONSUMER_SESSION_TIMEOUT", "6s")
	for k, v := range extra {
		env[k] = v
	}
	a, stop := testinfra.StartService(t, "loader", &service{}, env)
	return loaderRun{app: a, stop: stop}
}

func waitLoaded(t *testing.T, kc kafkaclient.Config, names topics.Names, group string) {
	t.Helper()
	for _, topic := range []string{names.Resolved, names.Invalid, names.Profiles, names.Membership} {
		testinfra.WaitCaughtUp(t, kc, group, topic, 60*time.Second)
	}
}

func count(t testing.TB, conn driver.Conn, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func produce(t testing.TB, kc kafkaclient.Config, msgs []kafka.Message) {
	t.Helper()
	p, err := kafkaclient.NewProducer(kc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for start := 0; start < len(msgs); start += 500 {
		end := min(start+500, len(msgs))
		// Produce mutates its messages (headers); send copies so the caller
		// can produce the same messages again.
		batch := append([]kafka.Message(nil), msgs[start:end]...)
		if err := p.Produce(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
}

func message(t testing.TB, topic, key string, m proto.Message) kafka.Message {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: topic, Key: []byte(key), Value: b}
}

// simpleEvent is a resolved track event of one person.
func simpleEvent(ws, id, event, anon, profile string, at time.Time) *eventv1.Envelope {
	return &eventv1.Envelope{
		SchemaVersion: 1, MessageId: id, WorkspaceId: ws, SourceId: "web",
		Event: &eventv1.Event{
			Type: eventv1.EventType_EVENT_TYPE_TRACK, MessageId: id, AnonymousId: anon, Event: event,
			Timestamp: tsAt(at), ReceivedAt: tsAt(at.Add(time.Second)), PropertiesJson: []byte(`{}`),
		},
		Resolution: &eventv1.Resolution{ProfileId: profile, ResolvedAt: tsAt(at.Add(2 * time.Second))},
	}
}

// mixedStream is one of every kind of message the loader reads, with the
// row counts they must leave in each table.
type mixedStream struct {
	msgs []kafka.Message
	want map[string]uint64 // table -> count() FINAL
}

func buildMixedStream(t *testing.T, ws string, names topics.Names) mixedStream {
	t.Helper()
	var msgs []kafka.Message
	full := message(t, names.Resolved, "anon-1", fullEnvelope(ws, "full-1"))
	full.Headers = []kafka.Header{{Key: traceid.Header, Value: []byte("4bf92f3577b34da6a3ce929d0e0e4736")}}
	msgs = append(msgs, full)
	base := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	// 200 events of 20 devices; devices 0-9 were resolved to p1 (later
	// merged into p2), the others to their own profiles.
	for i := range 200 {
		dev := i % 20
		profile := fmt.Sprintf("p-dev-%d", dev)
		if dev < 10 {
			profile = "p1"
		}
		env := simpleEvent(ws, fmt.Sprintf("ev-%03d", i), []string{"Product Viewed", "Product Added", "Order Completed"}[i%3],
			fmt.Sprintf("a%d", dev), profile, base.Add(time.Duration(i)*time.Minute))
		msgs = append(msgs, message(t, names.Resolved, env.Event.AnonymousId, env))
	}
	// Not loadable: garbage, and an envelope without a message id.
	msgs = append(msgs, kafka.Message{Topic: names.Resolved, Key: []byte("x"), Value: []byte("\xff\xffnot an envelope")})
	noID := simpleEvent(ws, "", "Order Completed", "a1", "p1", base)
	msgs = append(msgs, message(t, names.Resolved, "a1", noID))

	for i := range 20 {
		rej := &eventv1.Rejection{
			Envelope: &eventv1.Envelope{MessageId: fmt.Sprintf("bad-%d", i), WorkspaceId: ws, SourceId: []string{"web", "ios"}[i%2],
				Event: &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, Event: "Order Completed"}},
			Stage: "validator", RejectedAt: tsAt(base.Add(time.Duration(i) * time.Second)),
			Violations: []*eventv1.Violation{{Reason: []eventv1.Reason{eventv1.Reason_REASON_SCHEMA_VIOLATION, eventv1.Reason_REASON_DUPLICATE}[i%2], Field: "/properties/revenue", Rule: "type", Detail: "want number"}},
		}
		msgs = append(msgs, message(t, names.Invalid, "k", rej))
	}
	msgs = append(msgs, kafka.Message{Topic: names.Invalid, Key: []byte("x"), Value: []byte("\xff\xffnot a rejection")})

	changes := []*profilev1.ProfileChange{
		created("c-1", "p1", "anonymous_id:a0"),
		created("c-2", "p2", "user_id:u2", "email:ann@example.com"),
		merged("c-3", "p2", []string{"p1"}),
	}
	for i := range 30 {
		changes = append(changes, &profilev1.ProfileChange{
			ChangeId: fmt.Sprintf("t-%d", i), WorkspaceId: ws, ProfileId: fmt.Sprintf("p-dev-%d", 10+i%10),
			Kind: profilev1.ChangeKind_CHANGE_KIND_TRAITS_UPDATED, OccurredAt: tsAt(base), Version: uint64(i + 1),
			TraitChanges: []*profilev1.TraitChange{{Key: "plan", NewValueJson: []byte(`"pro"`)}},
		})
	}
	for _, c := range changes {
		c.WorkspaceId = ws
		if c.OccurredAt == nil {
			c.OccurredAt = tsAt(base)
		}
		msgs = append(msgs, message(t, names.Profiles, c.ProfileId, c))
	}
	for i := range 15 {
		msgs = append(msgs, message(t, names.Membership, "k", &segmentv1.Membership{
			MembershipId: fmt.Sprintf("s-%d", i), WorkspaceId: ws, SegmentId: "buyers", SegmentVersion: 1,
			ProfileId: fmt.Sprintf("p-dev-%d", i%10), Transition: segmentv1.Transition(1 + i%2),
			OccurredAt: tsAt(base), EvaluatedAt: tsAt(base.Add(time.Second)), CauseId: fmt.Sprintf("ev-%03d", i),
		}))
	}
	return mixedStream{msgs: msgs, want: map[string]uint64{
		"events":              201,
		"rejected_events":     23, // 20 rejections + 3 the loader could not load
		"profile_changes":     33,
		"segment_memberships": 15,
		"identities":          4, // a0, u2, ann@example.com, $profile_id p1
	}}
}

func checkCounts(t *testing.T, conn driver.Conn, want map[string]uint64, when string) {
	t.Helper()
	for table, n := range want {
		if got := count(t, conn, "SELECT count() FROM "+table+" FINAL"); got != n {
			t.Errorf("%s: %s has %d rows (FINAL), want %d", when, table, got, n)
		}
	}
}

// TestLoadsEveryTopic produces every kind of message the loader reads
// through the real broker, loads them into the real ClickHouse, checks the
// exact row counts and one full Segment payload column by column, then
// produces everything again (as an upstream redelivery would) and restarts
// the loader: the counts stay, and no migration is applied again.
func TestLoadsEveryTopic(t *testing.T) {
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	conn, cc := testDB(t)
	ws := testinfra.Unique(t)
	stream := buildMixedStream(t, ws, names)
	produce(t, kc, stream.msgs)

	group := testinfra.Unique(t)
	start := time.Now()
	run := runLoader(t, kc, cc, names, group, nil)
	waitLoaded(t, kc, names, group)
	t.Logf("loaded %d messages in %v", len(stream.msgs), time.Since(start))
	metricsBody := scrape(t, run.app)
	run.stop()

	checkCounts(t, conn, stream.want, "first load")

	// One full Segment payload, column by column.
	var got eventRow
	if err := conn.QueryRow(context.Background(), "SELECT "+strings.Join(eventsTable.columns, ", ")+" FROM events FINAL WHERE message_id = 'full-1'").ScanStruct(&got); err != nil {
		t.Fatal(err)
	}
	for _, d := range diffFields(wantFullRow(ws, "full-1", "4bf92f3577b34da6a3ce929d0e0e4736"), got, "loaded_at") {
		t.Error(d)
	}
	if time.Since(got.LoadedAt) > 5*time.Minute || got.LoadedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("loaded_at = %v, want about now", got.LoadedAt)
	}

	// The loader's own format violations, one per unloadable message.
	if n := count(t, conn, "SELECT count() FROM rejected_events FINAL WHERE stage = 'loader' AND reason = 'format_violation'"); n != 3 {
		t.Errorf("%d loader format violations, want 3", n)
	}
	if n := count(t, conn, "SELECT count() FROM rejected_events FINAL WHERE stage = 'validator' AND reason = 'duplicate' AND source_id = 'ios'"); n != 10 {
		t.Errorf("%d duplicate rejections from ios, want 10", n)
	}
	for _, want := range []string{
		fmt.Sprintf(`firstparty_loader_undecodable_total{topic=%q} 2`, names.Resolved),
		fmt.Sprintf(`firstparty_loader_undecodable_total{topic=%q} 1`, names.Invalid),
		`firstparty_loader_rows_total{table="events"}`,
		`firstparty_loader_insert_duration_seconds_count{table="events"}`,
	} {
		if !strings.Contains(metricsBody, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Identities: p1 was merged into p2, so p1's identifier and p1 itself
	// belong to p2; events keep p1 and events_current maps them to p2.
	for _, tc := range []struct{ typ, value, want string }{
		{"anonymous_id", "a0", "p2"}, {"user_id", "u2", "p2"}, {"email", "ann@example.com", "p2"}, {profileIDType, "p1", "p2"},
	} {
		var p string
		if err := conn.QueryRow(context.Background(), "SELECT argMax(profile_id, version) FROM identities WHERE identifier_type = ? AND identifier_value = ?", tc.typ, tc.value).Scan(&p); err != nil || p != tc.want {
			t.Errorf("identity %s:%s -> %q (%v), want %s", tc.typ, tc.value, p, err, tc.want)
		}
	}
	if n := count(t, conn, "SELECT count() FROM events FINAL WHERE profile_id = 'p1'"); n != 100 {
		t.Errorf("%d events resolved to p1 at processing time, want 100", n)
	}
	if n := count(t, conn, "SELECT count() FROM events_current WHERE current_profile_id = 'p2'"); n != 100 {
		t.Errorf("events_current maps %d events to p2, want the 100 of p1", n)
	}
	if n := count(t, conn, "SELECT count() FROM events_current WHERE current_profile_id = profile_id"); n != 101 {
		t.Errorf("%d events keep their profile, want 101", n)
	}

	// Everything again: duplicates collapse, and the restart applies no migration.
	produce(t, kc, stream.msgs)
	run = runLoader(t, kc, cc, names, group, nil)
	waitLoaded(t, kc, names, group)
	run.stop()
	checkCounts(t, conn, stream.want, "after duplicates")
	if n := count(t, conn, "SELECT count() FROM events"); n < stream.want["events"] {
		t.Errorf("raw count %d below the FINAL count", n)
	}
	ms, _ := Migrations()
	if n := count(t, conn, "SELECT count() FROM schema_migrations"); n != uint64(len(ms)) {
		t.Errorf("schema_migrations has %d rows after a restart, want %d (one per migration)", n, len(ms))
	}
}

// TestRestartMidInsertLosesNothing stops a loader (drain timeout 0) as soon
// as its first batch reached ClickHouse, so later batches are cut off
// mid-insert and never committed; a second loader in the same group then
// loads everything exactly once.
func TestRestartMidInsertLosesNothing(t *testing.T) {
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	conn, cc := testDB(t)
	ws := testinfra.Unique(t)
	const total = 3000
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var msgs []kafka.Message
	for i := range total {
		env := simpleEvent(ws, "m-"+strconv.Itoa(i), "Page Viewed", fmt.Sprintf("a%d", i%97), fmt.Sprintf("p%d", i%97), base.Add(time.Duration(i)*time.Second))
		msgs = append(msgs, message(t, names.Resolved, env.Event.AnonymousId, env))
	}
	produce(t, kc, msgs)

	group := testinfra.Unique(t)
	first := runLoader(t, kc, cc, names, group, map[string]string{"FP_DRAIN_TIMEOUT": "0s", "FP_CONSUMER_BATCH_SIZE": "50"})
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n uint64
		// The table exists once the loader started (migrations run in Start).
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM events").Scan(&n); err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first loader inserted nothing within a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
	first.stop()
	partial := count(t, conn, "SELECT count() FROM events FINAL")
	if partial >= total {
		t.Fatalf("the first loader loaded all %d events before it was stopped; the test needs more events", total)
	}
	t.Logf("first loader stopped after %d of %d events", partial, total)

	second := runLoader(t, kc, cc, names, group, nil)
	testinfra.WaitCaughtUp(t, kc, group, names.Resolved, 60*time.Second)
	second.stop()
	if n := count(t, conn, "SELECT count() FROM events FINAL"); n != total {
		t.Fatalf("events has %d rows after the restart, want %d", n, total)
	}
	if n := count(t, conn, "SELECT uniqExact(message_id) FROM events"); n != total {
		t.Fatalf("%d distinct message ids, want %d", n, total)
	}
}

// TestClickHouseErrorRetriesBatch makes every insert into events fail (the
// table is renamed away under the running loader): the batch is retried,
// nothing is committed, and once the table is back everything is loaded
// exactly once.
func TestClickHouseErrorRetriesBatch(t *testing.T) {
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	conn, cc := testDB(t)
	ws := testinfra.Unique(t)
	group := testinfra.Unique(t)
	run := runLoader(t, kc, cc, names, group, map[string]string{"FP_CONSUMER_BATCH_SIZE": "40"})
	defer func() {
		if run.stop != nil {
			run.stop()
		}
	}()
	ctx := context.Background()
	if err := conn.Exec(ctx, "RENAME TABLE events TO events_away"); err != nil {
		t.Fatal(err)
	}
	const total = 100
	var msgs []kafka.Message
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for i := range total {
		env := simpleEvent(ws, "m-"+strconv.Itoa(i), "Signed Up", fmt.Sprintf("a%d", i), fmt.Sprintf("p%d", i), base.Add(time.Duration(i)*time.Second))
		msgs = append(msgs, message(t, names.Resolved, env.Event.AnonymousId, env))
	}
	produce(t, kc, msgs)

	failing := regexp.MustCompile(`firstparty_loader_insert_errors_total\{table="events"\} [1-9]`)
	deadline := time.Now().Add(30 * time.Second)
	for !failing.MatchString(scrape(t, run.app)) {
		if time.Now().After(deadline) {
			t.Fatal("no failed insert into events within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := count(t, conn, "SELECT count() FROM events_away"); n != 0 {
		t.Fatalf("%d rows reached the renamed table", n)
	}
	if err := conn.Exec(ctx, "RENAME TABLE events_away TO events"); err != nil {
		t.Fatal(err)
	}
	testinfra.WaitCaughtUp(t, kc, group, names.Resolved, 60*time.Second)
	run.stop()
	run.stop = nil
	if n := count(t, conn, "SELECT count() FROM events FINAL"); n != total {
		t.Fatalf("events has %d rows after the outage, want %d", n, total)
	}
}

// TestColumnsMatchTables checks every insert's column list against the
// migrated table, so Go rows and SQL cannot drift apart.
func TestColumnsMatchTables(t *testing.T) {
	conn, cc := migrated(t)
	for _, tb := range loadedTables {
		rows, err := conn.Query(context.Background(), "SELECT name FROM system.columns WHERE database = ? AND table = ?", cc.Database, tb.name)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			have[n] = true
		}
		rows.Close()
		for _, c := range tb.columns {
			if !have[c] {
				t.Errorf("%s: the loader inserts %s, which the table lacks", tb.name, c)
			}
			delete(have, c)
		}
		for c := range have {
			t.Errorf("%s: column %s is never written by the loader", tb.name, c)
		}
	}
}

func scrape(t *testing.T, a *app.App) string {
	t.Helper()
	resp, err := http.Get("http://" + a.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
