// Command validator consumes cdp.events.raw, checks and cleans every event,
// and produces it to cdp.events.valid, or to cdp.events.invalid with the
// reasons it was refused. Nothing is dropped without a trace.
package main

import (
	"context"
	"flag"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/deps"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/stage"
	"github.com/firstparty/firstparty/pkg/topics"
	"github.com/firstparty/firstparty/pkg/validation"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

type service struct {
	kafka    kafkaclient.Config
	consumer kafkaclient.ConsumerConfig
	topics   topics.Names
	redis    redisclient.Config
}

func (s *service) RegisterFlags(fs *flag.FlagSet) {
	s.kafka.RegisterFlags(fs, "validator")
	s.consumer.RegisterFlags(fs, "validator")
	s.topics.RegisterFlags(fs)
	s.redis.RegisterFlags(fs)
}

func (s *service) Validate() error {
	return config.ValidateAll(&s.kafka, &s.consumer, &s.topics, &s.redis)
}

func (s *service) Start(ctx context.Context, a *app.App) error {
	p, err := deps.Kafka(ctx, a, s.kafka, s.topics.All())
	if err != nil {
		return err
	}
	deps.Redis(a, s.redis) // dedup window and suppression list
	h := &handler{topics: s.topics, outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "firstparty_validator_events_total", Help: "Events by outcome (valid, invalid) and reason.",
	}, []string{"outcome", "reason"})}
	a.Registry.MustRegister(h.outcomes)
	return deps.Stage(a, "validator", s.kafka, s.consumer, p, h, s.topics.Raw)
}

// handler routes each raw event to valid or invalid.
type handler struct {
	topics   topics.Names
	outcomes *prometheus.CounterVec
}

func (h *handler) Handle(_ context.Context, batch []kafka.Message) (stage.Result, error) {
	outs := make([]kafka.Message, 0, len(batch))
	for _, m := range batch {
		out := kafka.Message{Key: m.Key}
		env, violations := validation.DecodeEnvelope(m.Value)
		if len(violations) == 0 {
			out.Topic, out.Value = h.topics.Valid, m.Value
			h.outcomes.WithLabelValues("valid", "").Inc()
		} else {
			if env == nil {
				// Keep the undecodable bytes for forensics.
				env = &eventv1.Envelope{Raw: m.Value}
			}
			rej, err := proto.Marshal(&eventv1.Rejection{Envelope: env, Stage: "validator", Violations: violations, RejectedAt: timestamppb.Now()})
			if err != nil {
				return stage.Result{}, err
			}
			out.Topic, out.Value = h.topics.Invalid, rej
			h.outcomes.WithLabelValues("invalid", violations[0].Reason.String()).Inc()
		}
		kafkaclient.CarryTrace(&out, m)
		outs = append(outs, out)
	}
	return stage.Result{Outputs: outs}, nil
}

func main() { os.Exit(app.Main("validator", ":8081", &service{})) }
