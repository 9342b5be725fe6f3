package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/stage"
	"github.com/firstparty/firstparty/pkg/topics"
	"github.com/firstparty/firstparty/pkg/webhook"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// webhooks is the segmenter's second stage: it consumes the transitions it
// produced (its own consumer group, so a slow endpoint never holds up
// evaluation) and delivers each to the workspace's destinations that want
// it. A batch is committed once every transition in it was delivered or
// dead-lettered to cdp.segments.webhooks.dead; on shutdown or a crash it is
// delivered again (receivers dedup on Firstparty-Delivery).
type webhooks struct {
	topics      topics.Names
	reg         func() *sources.Registry
	deliverer   *webhook.Deliverer
	concurrency int
	now         func() time.Time
}

func (w *webhooks) Handle(ctx context.Context, batch []kafka.Message) (stage.Result, error) {
	var mu sync.Mutex
	var outs []kafka.Message
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(w.concurrency)
	for _, m := range batch {
		ms := &segmentv1.Membership{}
		if err := proto.Unmarshal(m.Value, ms); err != nil {
			continue // not ours to judge: the loader dead-letters undecodable transitions
		}
		dests := w.reg().Destinations(ms.WorkspaceId)
		if len(dests) == 0 {
			continue
		}
		eg.Go(func() error {
			failures, err := w.deliverer.Deliver(ectx, dests, ms)
			if err != nil {
				return fmt.Errorf("delivering %s: %w", ms.MembershipId, err)
			}
			for _, f := range failures {
				v, err := proto.Marshal(&segmentv1.WebhookFailure{Membership: ms, DestinationId: f.Destination.ID, Url: f.Destination.URL,
					Attempts: uint32(f.Attempts), LastStatus: uint32(f.LastStatus), LastError: f.LastError, FailedAt: timestamppb.New(w.now())})
				if err != nil {
					return err
				}
				out := kafka.Message{Topic: w.topics.WebhooksDead, Key: m.Key, Value: v}
				kafkaclient.CarryTrace(&out, m)
				mu.Lock()
				outs = append(outs, out)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return stage.Result{}, err
	}
	return stage.Result{Outputs: outs}, nil
}
