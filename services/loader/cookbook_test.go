package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/chclient"
	"github.com/firstparty/firstparty/pkg/topics"
	"github.com/firstparty/firstparty/pkg/traceid"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// recipe is one ```sql block of COOKBOOK.md under its heading.
type recipe struct {
	title string
	sql   string
}

// readCookbook returns every SQL block of the cookbook with the title of
// the section it is in.
func readCookbook(t *testing.T) []recipe {
	t.Helper()
	f, err := os.Open("COOKBOOK.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []recipe
	var title string
	var block *strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case block != nil && strings.HasPrefix(line, "```"):
			out = append(out, recipe{title, block.String()})
			block = nil
		case block != nil:
			block.WriteString(line + "\n")
		case strings.HasPrefix(line, "```sql"):
			block = &strings.Builder{}
		case strings.HasPrefix(line, "## "):
			title = strings.TrimPrefix(line, "## ")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if block != nil {
		t.Fatalf("COOKBOOK.md: the SQL block under %q is not closed", title)
	}
	return out
}

// day is midnight UTC n days ago plus h hours and m minutes.
func day(n, h, m int) time.Time {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	return today.AddDate(0, 0, -n).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

func date(n int) string { return day(n, 0, 0).Format("2006-01-02") }

// cookbookData is a small shop: Ann browses anonymously (profile
// p-ann-anon), logs in (p-ann, which absorbs p-ann-anon) and buys; Bob and
// Cara put things in their carts; Dan buys on iOS; Eve looks once. Times are
// relative to today so the cookbook's today()-based queries see them.
func cookbookData(t *testing.T) (events, changes, memberships, rejections []kafka.Message) {
	t.Helper()
	names := topics.Defaults()
	type ev struct {
		id, event, anon, user, profile, source, utm string
		at                                          time.Time
		revenue                                     float64
	}
	evs := []ev{
		{"m-ann-1", "Page Viewed", "a-ann", "", "p-ann-anon", "web", "newsletter", day(7, 10, 0), 0},
		{"m-ann-2", "Product Viewed", "a-ann", "", "p-ann-anon", "web", "", day(7, 10, 5), 0},
		{"m-ann-3", "Product Added", "a-ann", "", "p-ann-anon", "web", "", day(7, 10, 10), 0},
		{"m-ann-order", "Order Completed", "a-ann", "u-ann", "p-ann", "web", "", day(7, 10, 20), 120},
		{"m-ann-5", "Page Viewed", "a-ann", "u-ann", "p-ann", "web", "google", day(6, 9, 0), 0},
		{"m-ann-6", "Page Viewed", "a-ann", "u-ann", "p-ann", "web", "", day(0, 0, 5), 0},
		{"m-bob-1", "Product Viewed", "a-bob", "", "p-bob", "web", "google", day(7, 11, 0), 0},
		{"m-bob-2", "Product Added", "a-bob", "", "p-bob", "web", "", day(7, 11, 5), 0},
		{"m-bob-3", "Page Viewed", "a-bob", "", "p-bob", "web", "", day(1, 12, 0), 0},
		{"m-cara-1", "Product Viewed", "a-cara", "", "p-cara", "web", "google", day(7, 12, 0), 0},
		{"m-cara-2", "Product Added", "a-cara", "", "p-cara", "web", "", day(7, 14, 30), 0},
		{"m-cara-3", "Product Viewed", "a-cara", "", "p-cara", "web", "", day(6, 12, 0), 0},
		{"m-dan-1", "Product Viewed", "a-dan", "", "p-dan", "ios", "", day(3, 10, 0), 0},
		{"m-dan-2", "Product Added", "a-dan", "", "p-dan", "ios", "", day(3, 10, 2), 0},
		{"m-dan-3", "Order Completed", "a-dan", "", "p-dan", "ios", "", day(3, 10, 4), 80},
		{"m-eve-1", "Page Viewed", "a-eve", "", "p-eve", "web", "google", day(7, 13, 0), 0},
		// Older than every dated report: only the undated ones count Finn.
		{"m-finn-1", "Product Viewed", "a-finn", "", "p-finn", "web", "old-campaign", day(40, 10, 0), 0},
	}
	enc := func(topic string, m proto.Message) kafka.Message {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return kafka.Message{Topic: topic, Value: b, Time: time.Now()}
	}
	for _, e := range evs {
		props := `{}`
		if e.revenue > 0 {
			props = fmt.Sprintf(`{"order_id":"%s","revenue":%g}`, e.id, e.revenue)
		}
		env := &eventv1.Envelope{
			SchemaVersion: 1, MessageId: e.id, WorkspaceId: "shop", SourceId: e.source,
			Collector: &eventv1.CollectorMeta{RequestId: "req-" + e.id},
			Event: &eventv1.Event{
				Type: eventv1.EventType_EVENT_TYPE_TRACK, MessageId: e.id, AnonymousId: e.anon, UserId: e.user, Event: e.event,
				Timestamp: tsAt(e.at), ReceivedAt: tsAt(e.at.Add(time.Second)), PropertiesJson: []byte(props),
				Context: &eventv1.Context{Campaign: &eventv1.Campaign{Source: e.utm}},
			},
			Resolution: &eventv1.Resolution{ProfileId: e.profile, ResolvedAt: tsAt(e.at.Add(2 * time.Second))},
		}
		m := enc(names.Resolved, env)
		if e.id == "m-ann-order" {
			m.Headers = []kafka.Header{{Key: traceid.Header, Value: []byte("0af7651916cd43dd8448eb211c80319c")}}
		}
		events = append(events, m)
	}

	pcs := []*profilev1.ProfileChange{
		created("c-ann-anon", "p-ann-anon", "anonymous_id:a-ann"),
		created("c-ann", "p-ann", "user_id:u-ann", "email:ann@example.com"),
		merged("c-ann-merge", "p-ann", []string{"p-ann-anon"}),
		created("c-bob", "p-bob", "anonymous_id:a-bob"),
		created("c-cara", "p-cara", "anonymous_id:a-cara"),
		created("c-dan", "p-dan", "anonymous_id:a-dan"),
		created("c-eve", "p-eve", "anonymous_id:a-eve"),
		{ChangeId: "c-ann-t1", ProfileId: "p-ann", Kind: profilev1.ChangeKind_CHANGE_KIND_TRAITS_UPDATED, OccurredAt: tsAt(day(7, 10, 20)),
			TraitChanges: []*profilev1.TraitChange{{Key: "plan", NewValueJson: []byte(`"free"`)}}, Version: 2},
		{ChangeId: "c-ann-t2", ProfileId: "p-ann", Kind: profilev1.ChangeKind_CHANGE_KIND_TRAITS_UPDATED, OccurredAt: tsAt(day(6, 9, 0)),
			TraitChanges: []*profilev1.TraitChange{{Key: "plan", OldValueJson: []byte(`"free"`), NewValueJson: []byte(`"pro"`)}}, Version: 3},
	}
	for _, c := range pcs {
		c.WorkspaceId = "shop"
		if c.OccurredAt == nil {
			c.OccurredAt = tsAt(day(7, 10, 0))
		}
		changes = append(changes, enc(names.Profiles, c))
	}

	type tr struct {
		segment, profile string
		enter            bool
		at               time.Time
	}
	for i, s := range []tr{
		{"buyers", "p-ann", true, day(7, 10, 20)}, {"buyers", "p-dan", true, day(3, 10, 4)}, {"buyers", "p-ann", false, day(1, 0, 0)},
		{"cart", "p-ann", true, day(7, 10, 10)}, {"cart", "p-bob", true, day(7, 11, 5)}, {"cart", "p-ann", false, day(7, 10, 20)},
		{"cart", "p-dan", true, day(3, 10, 2)}, {"cart", "p-dan", false, day(3, 10, 4)},
	} {
		transition := segmentv1.Transition_TRANSITION_EXIT
		if s.enter {
			transition = segmentv1.Transition_TRANSITION_ENTER
		}
		memberships = append(memberships, enc(names.Membership, &segmentv1.Membership{
			MembershipId: fmt.Sprintf("ms-%d", i), WorkspaceId: "shop", SegmentId: s.segment, SegmentVersion: 1,
			ProfileId: s.profile, Transition: transition, OccurredAt: tsAt(s.at), EvaluatedAt: tsAt(s.at.Add(time.Second)),
		}))
	}

	type rj struct {
		source string
		reason eventv1.Reason
		at     time.Time
	}
	for i, r := range []rj{
		{"web", eventv1.Reason_REASON_SCHEMA_VIOLATION, day(2, 9, 0)}, {"web", eventv1.Reason_REASON_SCHEMA_VIOLATION, day(2, 9, 1)},
		{"web", eventv1.Reason_REASON_DUPLICATE, day(1, 9, 0)}, {"ios", eventv1.Reason_REASON_FORMAT_VIOLATION, day(1, 9, 0)},
		{"web", eventv1.Reason_REASON_SCHEMA_VIOLATION, day(10, 9, 0)}, // older than the report's 7 days
	} {
		rejections = append(rejections, enc(names.Invalid, &eventv1.Rejection{
			Envelope:   &eventv1.Envelope{MessageId: fmt.Sprintf("bad-%d", i), WorkspaceId: "shop", SourceId: r.source},
			Stage:      "validator",
			RejectedAt: tsAt(r.at),
			Violations: []*eventv1.Violation{{Reason: r.reason, Detail: "test"}},
		}))
	}
	return events, changes, memberships, rejections
}

// loadCookbook loads the cookbook's shop through the loader's handler
// (conversion and inserts, every message twice as after a redelivery) into
// a real ClickHouse.
func loadCookbook(t *testing.T) (driver.Conn, chclient.Config) {
	t.Helper()
	conn, cc := migrated(t)
	ctx := context.Background()
	h := newHandler(conn, topics.Defaults(), nil)
	events, changes, memberships, rejections := cookbookData(t)
	for range 2 {
		for _, batch := range [][]kafka.Message{events, changes, memberships, rejections} {
			if _, err := h.Handle(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	return conn, cc
}

// cookbookAnswers are the answers of COOKBOOK.md's queries over the
// cookbook's shop, by section title.
func cookbookAnswers() map[string][][]string {
	return map[string][][]string{
		"Funnel: viewed → added to cart → bought within an hour": {{"4", "3", "2"}},
		"Retention of one day's cohort":                          {{"4", "2", "1"}},
		"Daily active users": {
			{date(7), "4"}, {date(6), "2"}, {date(3), "1"}, {date(1), "1"}, {date(0), "1"},
		},
		"Weekly active users, rolling 7 days": {
			{date(7), "4"}, {date(6), "4"}, {date(5), "4"}, {date(4), "4"},
			{date(3), "5"}, {date(2), "5"}, {date(1), "5"}, {date(0), "4"},
		},
		"First-touch attribution by utm_source": {
			{"newsletter", "1", "1", "120"}, {"(none)", "1", "1", "80"}, {"google", "3", "0", "0"}, {"old-campaign", "1", "0", "0"},
		},
		"Events per person": {
			{"p-ann", "6", "2", ts7(7, 10, 0), ts7(0, 0, 5)},
			{"p-bob", "3", "1", ts7(7, 11, 0), ts7(1, 12, 0)},
			{"p-cara", "3", "1", ts7(7, 12, 0), ts7(6, 12, 0)},
			{"p-dan", "3", "1", ts7(3, 10, 0), ts7(3, 10, 4)},
			{"p-eve", "1", "1", ts7(7, 13, 0), ts7(7, 13, 0)},
			{"p-finn", "1", "1", ts7(40, 10, 0), ts7(40, 10, 0)},
		},
		"One person's timeline, found by email": {
			{ts7(7, 10, 0), "0", "Page Viewed", "p-ann-anon", "p-ann"},
			{ts7(7, 10, 5), "0", "Product Viewed", "p-ann-anon", "p-ann"},
			{ts7(7, 10, 10), "0", "Product Added", "p-ann-anon", "p-ann"},
			{ts7(7, 10, 20), "0", "Order Completed", "p-ann", "p-ann"},
			{ts7(6, 9, 0), "0", "Page Viewed", "p-ann", "p-ann"},
			{ts7(0, 0, 5), "0", "Page Viewed", "p-ann", "p-ann"},
		},
		"A person's trait history": {
			{ts7(7, 10, 20), "plan", "", `"free"`},
			{ts7(6, 9, 0), "plan", `"free"`, `"pro"`},
		},
		"Segment size over time": {
			{"buyers", date(7), "1"}, {"buyers", date(3), "2"}, {"buyers", date(1), "1"},
			{"cart", date(7), "1"}, {"cart", date(3), "1"},
		},
		"Rejection rate by source and reason": {
			{"ios", "format_violation", "1", "0.25"},
			{"web", "schema_violation", "2", "0.125"},
			{"web", "duplicate", "1", "0.0625"},
		},
		"Tracing one event": {
			{"m-ann-order", "Order Completed", ts7(7, 10, 20), "req-m-ann-order", "0af7651916cd43dd8448eb211c80319c", "*"},
		},
	}
}

// TestCookbook runs every SQL block of COOKBOOK.md against the shop the
// loader wrote into a real ClickHouse and checks its answer.
func TestCookbook(t *testing.T) {
	conn, _ := loadCookbook(t)
	checks := cookbookAnswers()
	recipes := readCookbook(t)
	seen := map[string]bool{}
	for _, r := range recipes {
		t.Run(r.title, func(t *testing.T) {
			want, ok := checks[r.title]
			if !ok {
				t.Fatalf("COOKBOOK.md has a query under %q that this test does not check; add its expected answer", r.title)
			}
			seen[r.title] = true
			got := queryStrings(t, conn, r.sql)
			if !matches(got, want) {
				t.Errorf("%s\ngot  %q\nwant %q", r.sql, got, want)
			}
		})
	}
	for title := range checks {
		if !seen[title] {
			t.Errorf("no query under %q in COOKBOOK.md", title)
		}
	}
}

func ts7(n, h, m int) string { return day(n, h, m).Format("2006-01-02 15:04:05") }

// matches compares result rows; "*" in want matches anything.
func matches(got, want [][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !slices.EqualFunc(got[i], want[i], func(g, w string) bool { return w == "*" || g == w }) {
			return false
		}
	}
	return true
}

// queryStrings runs a query and returns its rows as text: dates as
// 2006-01-02, times as 2006-01-02 15:04:05 (UTC), numbers in Go's shortest
// form.
func queryStrings(t *testing.T, conn driver.Conn, sql string) [][]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out [][]string
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(dest))
		for i, d := range dest {
			row[i] = text(reflect.ValueOf(d).Elem().Interface(), types[i].DatabaseTypeName())
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func text(v any, dbType string) string {
	switch x := v.(type) {
	case time.Time:
		if dbType == "Date" {
			return x.UTC().Format("2006-01-02")
		}
		return x.UTC().Format("2006-01-02 15:04:05")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	}
	return fmt.Sprint(v)
}
