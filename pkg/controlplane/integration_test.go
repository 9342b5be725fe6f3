package controlplane_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/firstparty/firstparty/pkg/controlplane"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

// instance is one service's view of the config topic: a reader following
// it and a store writing through it.
type instance struct {
	store *controlplane.Store
	stop  func()
}

func start(t *testing.T, kc kafkaclient.Config, topic string) *instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := controlplane.Open(ctx, kc, controlplane.Options{Source: controlplane.FromTopic, Topic: topic, CatchUp: 20 * time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := kafkaclient.NewProducer(kc, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		stopRun()
		if err := <-done; err != nil {
			t.Errorf("reader: %v", err)
		}
		p.Close()
	}
	t.Cleanup(stop)
	return &instance{store: controlplane.NewStore(r, p), stop: stop}
}

func configTopic(t *testing.T, kc kafkaclient.Config) string {
	t.Helper()
	topic := testinfra.Unique(t) + ".cdp.config"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = kafkaclient.DeleteTopics(ctx, kc, topic)
	})
	return topic
}

func workspace(t *testing.T, y string) sources.Workspace {
	t.Helper()
	var w sources.Workspace
	if err := yaml.UnmarshalStrict([]byte(y), &w); err != nil {
		t.Fatal(err)
	}
	return w
}

// within polls ok until it holds or the deadline passes.
func within(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // the poll interval, not a wait for an outcome
	}
}

func owner(i *instance, key string) string {
	if r, ok := i.store.Live().Current().Lookup(key); ok {
		return r.WorkspaceID + "/" + r.SourceID
	}
	return ""
}

// TestTopicAcrossInstances: a change written by one instance is in force
// at another within seconds; a document that does not build is refused
// before anything is written; a tombstone removes the workspace; a
// restarted reader reads the compacted state.
func TestTopicAcrossInstances(t *testing.T) {
	kc := testinfra.Kafka(t)
	topic := configTopic(t, kc)
	a, b := start(t, kc, topic), start(t, kc, topic)
	ctx := context.Background()

	doc, err := a.store.Put(ctx, workspace(t, `{id: shop, sources: [{id: web, write_keys: [fpw_shop_key_00000001]}]}`), 0, "test")
	if err != nil || doc.Version != 1 {
		t.Fatalf("create: %+v %v", doc, err)
	}
	if owner(a, "fpw_shop_key_00000001") != "shop/web" {
		t.Fatal("the writer's own registry does not have the key once Put returned")
	}
	within(t, 5*time.Second, "the other instance sees the new key", func() bool { return owner(b, "fpw_shop_key_00000001") == "shop/web" })

	if _, err := a.store.Put(ctx, workspace(t, `{id: blog, sources: [{id: app, write_keys: [fpw_blog_key_00000001]}]}`), 0, "test"); err != nil {
		t.Fatal(err)
	}
	// Rotation from the other instance, at the version it read.
	cur, _ := b.store.Get("shop")
	if _, err := b.store.Put(ctx, workspace(t, `{id: shop, sources: [{id: web, write_keys: [fpw_shop_key_00000002]}]}`), cur.Version, "test"); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "the rotation reaches the first instance", func() bool {
		return owner(a, "fpw_shop_key_00000002") == "shop/web" && owner(a, "fpw_shop_key_00000001") == ""
	})

	before := testinfra.Count(t, kc, topic)
	_, err = a.store.Put(ctx, workspace(t, `{id: shop, sources: [{id: web, write_keys: [fpw_blog_key_00000001]}]}`), 2, "test")
	if !errors.Is(err, controlplane.ErrInvalid) || !strings.Contains(err.Error(), "also used by") {
		t.Fatalf("a key of another workspace: %v", err)
	}
	_, err = a.store.Put(ctx, workspace(t, `{id: shop, sources: [], segments: [{id: x, version: 1, name: X, condition: 'traits.plan =='}]}`), 2, "test")
	if !errors.Is(err, controlplane.ErrInvalid) || !strings.Contains(err.Error(), "segments[0] (x)") {
		t.Fatalf("a bad segment: %v", err)
	}
	if _, err := a.store.Put(ctx, workspace(t, `{id: shop, sources: []}`), 1, "test"); !errors.Is(err, controlplane.ErrConflict) {
		t.Fatalf("an old version: %v", err)
	}
	if after := testinfra.Count(t, kc, topic); after != before {
		t.Fatalf("refused writes reached the topic: %d records, were %d", after, before)
	}

	if err := b.store.Delete(ctx, "blog", -1); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "the tombstone reaches the first instance", func() bool { return owner(a, "fpw_blog_key_00000001") == "" })
	if _, ok := a.store.Get("blog"); ok {
		t.Fatal("deleted workspace still listed")
	}
	if err := a.store.Delete(ctx, "blog", -1); !errors.Is(err, controlplane.ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}

	// Restart: a new reader reads the state from the topic alone.
	a.stop()
	c := start(t, kc, topic)
	if owner(c, "fpw_shop_key_00000002") != "shop/web" || owner(c, "fpw_blog_key_00000001") != "" {
		t.Fatal("restarted reader does not have the state")
	}
	if got, _ := c.store.Get("shop"); got.Version != 2 || got.UpdatedBy != "test" {
		t.Fatalf("restarted reader: %+v", got)
	}
}

// TestConcurrentWrites: two instances writing the same version at once —
// one wins, the other gets a conflict, and every reader (also one started
// afterwards) agrees on the winner.
func TestConcurrentWrites(t *testing.T) {
	kc := testinfra.Kafka(t)
	topic := configTopic(t, kc)
	a, b := start(t, kc, topic), start(t, kc, topic)
	ctx := context.Background()
	if _, err := a.store.Put(ctx, workspace(t, `{id: shop, sources: []}`), 0, "test"); err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "b sees version 1", func() bool { d, _ := b.store.Get("shop"); return d.Version == 1 })
	for round := 0; round < 3; round++ {
		v := int64(round + 1)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, in := range []*instance{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = in.store.Put(ctx, workspace(t, `{id: shop, name: writer-`+string(rune('a'+i))+`, sources: []}`), v, "test")
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, controlplane.ErrConflict):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won != 1 {
			// Both may see a conflict only if neither was at v; one must win.
			t.Fatalf("round %d: %d writers won (%v)", round, won, errs)
		}
		within(t, 5*time.Second, "both at the new version", func() bool {
			x, _ := a.store.Get("shop")
			y, _ := b.store.Get("shop")
			return x.Version == v+1 && y.Version == v+1 && x.Name == y.Name
		})
	}
	want, _ := a.store.Get("shop")
	// Wait for any re-write of a race's winner to land, then restart.
	within(t, 5*time.Second, "a fresh reader agrees with the winner", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := controlplane.Open(ctx, kc, controlplane.Options{Source: controlplane.FromTopic, Topic: topic, CatchUp: 20 * time.Second}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Run(canceled()) // closes it
		got, _ := r.Get("shop")
		return got.Version == want.Version && got.Name == want.Name
	})
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestTopicMustBeATable: an existing topic that is not compacted, or has
// several partitions, is refused rather than silently used.
func TestTopicMustBeATable(t *testing.T) {
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := controlplane.Open(ctx, kc, controlplane.Options{Source: controlplane.FromTopic, Topic: names.Raw, CatchUp: 5 * time.Second}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "cleanup.policy=delete") {
		t.Fatalf("a delete-policy topic: %v", err)
	}
	kc.CreateTopics = false
	_, err = controlplane.Open(ctx, kc, controlplane.Options{Source: controlplane.FromTopic, Topic: names.Valid, CatchUp: 5 * time.Second}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Fatalf("a topic of 3 partitions: %v", err)
	}
}
