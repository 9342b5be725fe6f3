package main

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/stage"
	"github.com/firstparty/firstparty/pkg/topics"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// Tables the loader writes, with their insert statements' column lists.
var (
	eventsTable      = table{"events", columnsOf(eventRow{})}
	rejectedTable    = table{"rejected_events", columnsOf(rejectedRow{})}
	changesTable     = table{"profile_changes", columnsOf(profileChangeRow{})}
	membershipsTable = table{"segment_memberships", columnsOf(membershipRow{})}
	identitiesTable  = table{"identities", columnsOf(identityRow{})}
	loadedTables     = []table{eventsTable, rejectedTable, changesTable, membershipsTable, identitiesTable}
)

type table struct {
	name    string
	columns []string
}

// insertSQL names every column: clickhouse-go's batch insert needs the
// explicit list on 18.16.
func (t table) insertSQL() string {
	return "INSERT INTO " + t.name + " (" + strings.Join(t.columns, ", ") + ")"
}

// handler turns one Kafka batch into one insert per table. The inserts
// happen inside Handle, so the runner commits the offsets only after
// ClickHouse acknowledged every row; an insert error fails the batch, which
// the runner retries whole (the tables collapse the rows written twice).
// A message that cannot be decoded becomes a rejected_events row; it never
// blocks the stage.
type handler struct {
	conn       driver.Conn
	topics     topics.Names
	identities identityStore
	clock      versionClock
	now        func() time.Time
	m          *metrics
}

func newHandler(conn driver.Conn, t topics.Names, reg prometheus.Registerer) *handler {
	return &handler{
		conn: conn, topics: t, identities: identityStore{conn},
		clock: versionClock{now: time.Now}, now: time.Now, m: newMetrics(reg),
	}
}

// rowsBatch holds one Kafka batch's rows, table by table.
type rowsBatch struct {
	events      []eventRow
	rejected    []rejectedRow
	changes     []profileChangeRow
	changeMsgs  []*profilev1.ProfileChange
	memberships []membershipRow
}

func (h *handler) Handle(ctx context.Context, batch []kafka.Message) (stage.Result, error) {
	rb, err := h.streamEvents(ctx, batch)
	if err != nil {
		return stage.Result{}, err
	}
	ids, err := h.identities.identityRows(ctx, rb.changeMsgs, &h.clock)
	if err != nil {
		h.m.insertErrors.WithLabelValues(identitiesTable.name).Inc()
		return stage.Result{}, err
	}
	if err := insert(ctx, h, rejectedTable, rb.rejected); err != nil {
		return stage.Result{}, err
	}
	if err := insert(ctx, h, changesTable, rb.changes); err != nil {
		return stage.Result{}, err
	}
	if err := insert(ctx, h, membershipsTable, rb.memberships); err != nil {
		return stage.Result{}, err
	}
	if err := insert(ctx, h, identitiesTable, ids); err != nil {
		return stage.Result{}, err
	}
	return stage.Result{}, nil
}

// streamChunk is how many messages are decoded at a time while the
// previous ones are encoded and sent.
const streamChunk = 2000

// streamEvents converts the batch and inserts its events as one INSERT,
// chunk by chunk: a goroutine decodes the next chunk while this one
// encodes the last and sends it (Flush), so the loader's decoding and the
// driver's encoding run on two cores, and ClickHouse reads blocks while
// the rest are decoded. It returns the other tables' rows. The server
// squashes the blocks of one INSERT into one part (min_insert_block_size_rows),
// so the part count is that of one insert per batch.
func (h *handler) streamEvents(ctx context.Context, batch []kafka.Message) (rowsBatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan []eventRow, 1)
	var rest rowsBatch
	go func() {
		defer close(chunks)
		for start := 0; start < len(batch); start += streamChunk {
			var rb rowsBatch
			h.convertInto(&rb, batch[start:min(start+streamChunk, len(batch))])
			rest.rejected = append(rest.rejected, rb.rejected...)
			rest.changes = append(rest.changes, rb.changes...)
			rest.changeMsgs = append(rest.changeMsgs, rb.changeMsgs...)
			rest.memberships = append(rest.memberships, rb.memberships...)
			if len(rb.events) == 0 {
				continue
			}
			select {
			case chunks <- rb.events:
			case <-ctx.Done():
				return
			}
		}
	}()
	var ins *streamInsert[eventRow]
	var n int
	var err error
	start := time.Now()
	for rows := range chunks {
		if err != nil {
			continue // drain, so the converter ends
		}
		if ins == nil {
			if ins, err = startInsert[eventRow](ctx, h.conn, eventsTable); err != nil {
				cancel()
				continue
			}
		}
		if err = ins.add(rows); err != nil {
			cancel()
			continue
		}
		n += len(rows)
	}
	if err == nil && ins != nil {
		err = ins.send()
	}
	if err != nil && ins != nil {
		ins.abort()
	}
	if ins != nil || err != nil {
		err = h.observe(eventsTable, n, start, err)
	}
	return rest, err
}

// convert decodes every message into its table's row; what cannot be
// decoded or lacks its ids becomes a rejected_events row.
func (h *handler) convert(batch []kafka.Message) rowsBatch {
	var rb rowsBatch
	h.convertInto(&rb, batch)
	return rb
}

// convertInto is convert, appending to rb.
func (h *handler) convertInto(rb *rowsBatch, batch []kafka.Message) {
	loadedAt := h.now()
	for _, msg := range batch {
		m := meta{traceID: kafkaclient.TraceID(msg), loadedAt: loadedAt, msgTime: msg.Time}
		if m.msgTime.IsZero() {
			m.msgTime = loadedAt
		}
		bad := func(err error, ids [3]string) {
			h.m.undecodable.WithLabelValues(msg.Topic).Inc()
			rb.rejected = append(rb.rejected, newUndecodableRow(msg, err, ids, m))
		}
		switch msg.Topic {
		case h.topics.Resolved:
			env := &eventv1.Envelope{}
			if err := env.UnmarshalVTUnsafe(msg.Value); err != nil {
				bad(fmt.Errorf("decoding Envelope: %w", err), [3]string{})
				continue
			}
			row, err := newEventRow(env, m)
			if err != nil {
				bad(err, [3]string{env.WorkspaceId, env.SourceId, env.MessageId})
				continue
			}
			rb.events = append(rb.events, row)
		case h.topics.Invalid:
			rej := &eventv1.Rejection{}
			if err := rej.UnmarshalVT(msg.Value); err != nil {
				bad(fmt.Errorf("decoding Rejection: %w", err), [3]string{})
				continue
			}
			rb.rejected = append(rb.rejected, newRejectedRow(rej, msg.Value, origin(msg), m))
		case h.topics.Profiles:
			c := &profilev1.ProfileChange{}
			if err := c.UnmarshalVT(msg.Value); err != nil {
				bad(fmt.Errorf("decoding ProfileChange: %w", err), [3]string{})
				continue
			}
			row, err := newProfileChangeRow(c, m)
			if err != nil {
				bad(err, [3]string{c.WorkspaceId, "", c.ChangeId})
				continue
			}
			rb.changes = append(rb.changes, row)
			rb.changeMsgs = append(rb.changeMsgs, c)
		case h.topics.Membership:
			s := &segmentv1.Membership{}
			if err := s.UnmarshalVT(msg.Value); err != nil {
				bad(fmt.Errorf("decoding Membership: %w", err), [3]string{})
				continue
			}
			row, err := newMembershipRow(s, m)
			if err != nil {
				bad(err, [3]string{s.WorkspaceId, "", s.MembershipId})
				continue
			}
			rb.memberships = append(rb.memberships, row)
		default:
			bad(fmt.Errorf("the loader does not read topic %q", msg.Topic), [3]string{})
		}
	}
}

func origin(m kafka.Message) string {
	return fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset)
}

// insert writes rows to t as one batch; ClickHouse has them when it returns
// nil.
func insert[R any](ctx context.Context, h *handler, t table, rows []R) error {
	if len(rows) == 0 {
		return nil
	}
	start := time.Now()
	return h.observe(t, len(rows), start, sendBatch(ctx, h.conn, t, rows))
}

// observe counts one insert of n rows into t that began at start and
// ended with err, and wraps err with the table.
func (h *handler) observe(t table, n int, start time.Time, err error) error {
	h.m.insertSeconds.WithLabelValues(t.name).Observe(time.Since(start).Seconds())
	if err != nil {
		h.m.insertErrors.WithLabelValues(t.name).Inc()
		return fmt.Errorf("inserting %d rows into %s: %w", n, t.name, err)
	}
	h.m.rows.WithLabelValues(t.name).Add(float64(n))
	return nil
}

// sendBatch inserts rows as one batch.
func sendBatch[R any](ctx context.Context, conn driver.Conn, t table, rows []R) error {
	ins, err := startInsert[R](ctx, conn, t)
	if err != nil {
		return err
	}
	if err := ins.add(rows); err != nil {
		ins.abort()
		return err
	}
	return ins.send()
}

// streamInsert is one INSERT whose rows arrive in parts. Rows are appended
// column by column: one typed slice per column, handed to the driver
// whole, which costs far less than mapping every row's struct by its tags
// (AppendStruct).
type streamInsert[R any] struct {
	b    driver.Batch
	plan *columnPlan
	t    table
}

func startInsert[R any](ctx context.Context, conn driver.Conn, t table) (*streamInsert[R], error) {
	plan, err := planFor[R](t)
	if err != nil {
		return nil, err
	}
	b, err := conn.PrepareBatch(ctx, t.insertSQL())
	if err != nil {
		return nil, err
	}
	return &streamInsert[R]{b: b, plan: plan, t: t}, nil
}

// add appends rows and sends them to the server as a block.
func (s *streamInsert[R]) add(rows []R) error {
	for j := range s.plan.fields {
		if err := s.b.Column(j).Append(columnOf(rows, s.plan.fields[j], s.plan.types[j], s.plan.offsets[j])); err != nil {
			return fmt.Errorf("column %s: %w", s.t.columns[j], err)
		}
	}
	return s.b.Flush()
}

// send ends the INSERT; ClickHouse has every row when it returns nil.
func (s *streamInsert[R]) send() error { return s.b.Send() }

func (s *streamInsert[R]) abort() { _ = s.b.Abort() }

// columnPlan maps a table's columns, in insert order, to a row type's fields.
type columnPlan struct {
	fields  []int
	types   []reflect.Type
	offsets []uintptr
}

// columnOf copies one field of every row into a slice of the field's type,
// as the driver takes a column. The field types the rows use are read at
// their offset in the struct, without reflection per value (reflect's Set
// per value cost about a seventh of the loader's CPU); any other type goes
// through reflect.
func columnOf[R any](rows []R, field int, typ reflect.Type, offset uintptr) any {
	base := unsafe.Pointer(unsafe.SliceData(rows))
	size := unsafe.Sizeof(*new(R))
	at := func(i int) unsafe.Pointer { return unsafe.Add(base, uintptr(i)*size+offset) }
	switch typ {
	case reflect.TypeFor[string]():
		return gather[string](len(rows), at)
	case reflect.TypeFor[[]string]():
		return gather[[]string](len(rows), at)
	case reflect.TypeFor[time.Time]():
		return gather[time.Time](len(rows), at)
	case reflect.TypeFor[uint16]():
		return gather[uint16](len(rows), at)
	case reflect.TypeFor[uint32]():
		return gather[uint32](len(rows), at)
	case reflect.TypeFor[uint64]():
		return gather[uint64](len(rows), at)
	case reflect.TypeFor[int32]():
		return gather[int32](len(rows), at)
	case reflect.TypeFor[float64]():
		return gather[float64](len(rows), at)
	}
	v := reflect.ValueOf(rows)
	col := reflect.MakeSlice(reflect.SliceOf(typ), len(rows), len(rows))
	for i := range rows {
		col.Index(i).Set(v.Index(i).Field(field))
	}
	return col.Interface()
}

func gather[T any](n int, at func(int) unsafe.Pointer) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = *(*T)(at(i))
	}
	return out
}

var columnPlans sync.Map // [2]any{reflect.Type, table name} → *columnPlan

func planFor[R any](t table) (*columnPlan, error) {
	rt := reflect.TypeFor[R]()
	key := [2]any{rt, t.name}
	if p, ok := columnPlans.Load(key); ok {
		return p.(*columnPlan), nil
	}
	byTag := map[string]int{}
	for i := 0; i < rt.NumField(); i++ {
		if tag := rt.Field(i).Tag.Get("ch"); tag != "" {
			byTag[tag] = i
		}
	}
	p := &columnPlan{}
	for _, c := range t.columns {
		i, ok := byTag[c]
		if !ok {
			return nil, fmt.Errorf("table %s: column %s has no field in %s", t.name, c, rt)
		}
		p.fields = append(p.fields, i)
		p.types = append(p.types, rt.Field(i).Type)
		p.offsets = append(p.offsets, rt.Field(i).Offset)
	}
	columnPlans.Store(key, p)
	return p, nil
}

type metrics struct {
	rows          *prometheus.CounterVec
	insertSeconds *prometheus.HistogramVec
	insertErrors  *prometheus.CounterVec
	undecodable   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_loader_rows_total", Help: "Rows ClickHouse acknowledged, by table (a retried batch counts again).",
		}, []string{"table"}),
		insertSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "firstparty_loader_insert_duration_seconds", Help: "Time of one batch insert into one table, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"table"}),
		insertErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_loader_insert_errors_total", Help: "Batch inserts (or identity reads) ClickHouse failed, by table; the batch is retried.",
		}, []string{"table"}),
		undecodable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_loader_undecodable_total", Help: "Messages that could not be loaded as a row of their table, by topic; each became a rejected_events row (stage loader, format_violation).",
		}, []string{"topic"}),
	}
	if reg != nil {
		reg.MustRegister(m.rows, m.insertSeconds, m.insertErrors, m.undecodable)
	}
	return m
}
