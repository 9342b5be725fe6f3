package controlplane

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/topics"
)

// RevisionHeader names the Kafka header that identifies one write.
const RevisionHeader = "fp-config-revision"

// Where the configuration comes from.
const (
	FromFile  = "file"
	FromTopic = "topic"
)

// Options choose where a service takes its workspace configuration from.
type Options struct {
	// Source is "file" (the -sources.file YAML, the default) or "topic"
	// (the config topic; the file, if given, only seeds an empty topic,
	// and only the API seeds).
	Source string
	Topic  string
	// CatchUp bounds the initial read of the topic at start.
	CatchUp time.Duration
}

func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Source, "config.source", FromFile, "where the workspace configuration comes from: file (-sources.file, reloaded when it changes) or topic (the compacted -topic.config, written by the API's control plane)")
	fs.StringVar(&o.Topic, "topic.config", topics.DefaultConfig, "compacted topic of workspace configuration documents (with -config.source=topic)")
	fs.DurationVar(&o.CatchUp, "config.catch-up-timeout", 30*time.Second, "longest wait at start for the configuration topic to be read to its end")
}

// Validate checks the options; the zero value means the file.
func (o *Options) Validate() error {
	switch o.Source {
	case "", FromFile:
		return nil
	case FromTopic:
	default:
		return config.Field("config.source", "%q: use file or topic", o.Source)
	}
	if o.Topic == "" {
		return config.Field("topic.config", "must not be empty")
	}
	if o.CatchUp < time.Second {
		return config.Field("config.catch-up-timeout", "must be at least 1s, got %v", o.CatchUp)
	}
	return nil
}

// FromTopic reports whether the configuration comes from the topic.
func (o Options) FromTopic() bool { return o.Source == FromTopic }

type metrics struct {
	records    *prometheus.CounterVec
	workspaces prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firstparty_config_records_total",
			Help: "config topic records read, by outcome (applied, deleted, duplicate, stale, invalid)"}, []string{"outcome"}),
		workspaces: prometheus.NewGauge(prometheus.GaugeOpts{Name: "firstparty_config_workspaces",
			Help: "workspaces in force from the config topic"}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.workspaces)
	}
	return m
}

// Reader follows the config topic and keeps a *sources.Live current: every
// instance reads the whole topic, without a consumer group.
type Reader struct {
	topic   string
	log     *slog.Logger
	table   *kafkaclient.Table
	live    *sources.Live
	metrics *metrics

	mu      sync.Mutex
	state   *State
	waiters map[string]chan Outcome // by revision: writers of this instance
}

// Open creates the topic when kc.CreateTopics (compacted, one partition),
// reads it to its end and puts its configuration in force, so a service
// starts with the configuration of the moment. Run follows it afterwards.
func Open(ctx context.Context, kc kafkaclient.Config, o Options, log *slog.Logger, reg prometheus.Registerer) (*Reader, error) {
	return open(ctx, kc, o, log, reg, nil)
}

func open(ctx context.Context, kc kafkaclient.Config, o Options, log *slog.Logger, reg prometheus.Registerer, build func(sources.Config) (*sources.Registry, error)) (*Reader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if kc.CreateTopics {
		if err := kafkaclient.EnsureCompacted(ctx, kc, o.Topic); err != nil {
			return nil, fmt.Errorf("creating config topic: %w", err)
		}
	}
	table, err := kafkaclient.OpenTable(ctx, kc, o.Topic, log)
	if err != nil {
		return nil, fmt.Errorf("reading config topic: %w", err)
	}
	r := &Reader{topic: o.Topic, log: log, table: table, live: sources.Static(&sources.Registry{}), metrics: newMetrics(reg),
		state: NewState(build), waiters: map[string]chan Outcome{}}
	catchUp := o.CatchUp
	if catchUp <= 0 {
		catchUp = 30 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, catchUp)
	defer cancel()
	var recs []Record
	for end := table.End(); end > 0; {
		m, err := table.Read(cctx)
		if err != nil {
			table.Close()
			return nil, fmt.Errorf("reading config topic %s to offset %d: %w", o.Topic, end, err)
		}
		if rec, err := decodeRecord(m); err != nil {
			r.count(Outcome{Kind: "invalid", Err: err})
			log.Error("config topic: undecodable record ignored", "offset", m.Offset, "err", err)
		} else {
			recs = append(recs, rec)
		}
		if m.Offset >= end-1 {
			break
		}
	}
	outs := r.state.Load(recs)
	for _, out := range outs {
		r.count(out)
	}
	if err := errorsOf(outs); err != nil {
		log.Error("config topic: some documents are not in force", "err", err)
	}
	r.live.Publish(r.state.Registry(), nil)
	r.metrics.workspaces.Set(float64(len(r.state.Registry().Workspaces())))
	log.Info("configuration read from topic", "topic", o.Topic, "records", len(recs), "workspaces", len(r.state.Registry().Workspaces()), "sources", r.state.Registry().Sources())
	return r, nil
}

// Live is the configuration in force, kept current by Run.
func (r *Reader) Live() *sources.Live { return r.live }

// Run follows the topic until ctx ends, then closes the reader.
func (r *Reader) Run(ctx context.Context) error {
	defer r.table.Close()
	backoff := 100 * time.Millisecond
	for {
		m, err := r.table.Read(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.log.Warn("reading config topic", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		r.take(m)
	}
}

// take applies one message of the live stream.
func (r *Reader) take(m kafka.Message) {
	rec, err := decodeRecord(m)
	if err != nil {
		r.count(Outcome{Kind: "invalid", Err: err})
		r.log.Error("config topic: undecodable record ignored", "offset", m.Offset, "err", err)
		return
	}
	r.mu.Lock()
	out := r.state.Apply(rec)
	reg := r.state.Registry()
	w, waiting := r.waiters[rec.Revision]
	waiting = waiting && rec.Revision != ""
	if waiting {
		delete(r.waiters, rec.Revision)
	}
	r.mu.Unlock()
	// The writer hears of its outcome after the registry is published, so
	// what it does next (answer, look a key up) sees its own write.
	defer func() {
		if waiting {
			w <- out
		}
	}()
	r.count(out)
	switch out.Kind {
	case "applied", "deleted":
		r.live.Publish(reg, nil)
		r.metrics.workspaces.Set(float64(len(reg.Workspaces())))
		r.log.Info("configuration changed", "workspace", rec.Workspace, "change", out.Kind, "version", versionOf(rec), "sources", reg.Sources())
	case "invalid":
		r.live.Publish(nil, out.Err)
		r.log.Error("config topic: document does not build here; its last good version stays in force", "workspace", rec.Workspace, "err", out.Err)
	case "stale":
		r.log.Warn("config topic: a write lost a version race and is ignored", "workspace", rec.Workspace, "err", out.Err)
	}
}

func (r *Reader) count(o Outcome) { r.metrics.records.WithLabelValues(o.Kind).Inc() }

// wait registers a writer waiting for the record of revision.
func (r *Reader) wait(rev string) chan Outcome {
	ch := make(chan Outcome, 1)
	r.mu.Lock()
	r.waiters[rev] = ch
	r.mu.Unlock()
	return ch
}

func (r *Reader) unwait(rev string) {
	r.mu.Lock()
	delete(r.waiters, rev)
	r.mu.Unlock()
}

// Documents lists the latest document of every workspace.
func (r *Reader) Documents() []Document {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.Documents()
}

// Get is the latest document of a workspace.
func (r *Reader) Get(ws string) (Document, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state.Latest(ws)
}

func decodeRecord(m kafka.Message) (Record, error) {
	rec := Record{Workspace: string(m.Key), Raw: m.Value}
	for _, h := range m.Headers {
		if h.Key == RevisionHeader {
			rec.Revision = string(h.Value)
		}
	}
	if rec.Workspace == "" {
		return Record{}, errors.New("record without a key")
	}
	if len(m.Value) == 0 {
		return rec, nil
	}
	d, err := Decode(m.Value)
	if err != nil {
		return Record{}, fmt.Errorf("workspace %s at offset %d: %w", rec.Workspace, m.Offset, err)
	}
	rec.Doc = &d
	return rec, nil
}
