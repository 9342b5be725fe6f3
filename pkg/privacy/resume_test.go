package privacy

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/history"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/suppression"
	"github.com/firstparty/firstparty/pkg/testinfra"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
)

// flakySink fails its first fail produces, then records.
type flakySink struct {
	mu   sync.Mutex
	fail int
	got  []kafka.Message
}

func (f *flakySink) Produce(_ context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return errors.New("kafka: unknown topic or partition (the topic does not exist)")
	}
	f.got = append(f.got, msgs...)
	return nil
}

// TestEraseResumesAfterFailure: announcing the erasure fails after the
// graph was erased; the retry the API asks for still knows the person
// (from the pending erase), sends the DELETED change for their profile,
// deletes their consent and completes. The failure is audited, and
// consent can no longer be recorded for the erased identifiers.
func TestEraseResumesAfterFailure(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ws, ctx := testinfra.Unique(t), context.Background()
	g := identity.New(rdb, identity.DefaultConfig())
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	email := identity.Identifier{Type: "email", Value: "ann@x.io"}
	for i, ids := range [][]identity.Identifier{{{Type: "user_id", Value: "u"}, {Type: "anonymous_id", Value: "a"}}, {{Type: "anonymous_id", Value: "b"}, email}, {{Type: "user_id", Value: "u"}, {Type: "anonymous_id", Value: "b"}}} {
		if _, err := g.Apply(ctx, identity.Update{Workspace: ws, MessageID: string(rune('0' + i)), Time: at, Identifiers: ids}); err != nil {
			t.Fatal(err)
		}
	}
	prof, err := g.Lookup(ctx, ws, email)
	if err != nil {
		t.Fatal(err)
	}
	cons := consent.NewStore(rdb)
	u, _ := consent.Update{Categories: map[string]bool{"analytics": true}, Source: "form", At: at}.Normalize()
	if _, err := cons.Record(ctx, ws, consent.Identifier{Type: "user_id", Value: "u"}, u); err != nil {
		t.Fatal(err)
	}
	sink := &flakySink{fail: 1}
	s := &Service{Graph: g, Suppression: suppression.New(rdb), Redis: rdb, Consent: cons, Changes: sink, Topic: "cdp.profiles.changes"}

	if _, err := s.Erase(ctx, ws, email, "ticket 9"); err == nil {
		t.Fatal("erase with a failing producer succeeded")
	}
	if _, err := g.Lookup(ctx, ws, email); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("the graph should be erased before the produce that failed: %v", err)
	}
	audit, _ := s.Audit(ctx, ws, 10)
	if len(audit) != 1 || audit[0].Type != TypeErase || !strings.HasPrefix(audit[0].Status, "failed while announcing") || strings.Contains(audit[0].Status, "kafka") {
		t.Fatalf("the failed erase is not audited (generically): %+v", audit)
	}

	// The retry, with another of the person's identifiers.
	rep, err := s.Erase(ctx, ws, identity.Identifier{Type: "user_id", Value: "u"}, "ticket 9")
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{prof.ID}, prof.Merged...)
	got := append([]string(nil), rep.ProfileIDs...)
	sort.Strings(want)
	sort.Strings(got)
	if rep.Status != "completed" || strings.Join(got, ",") != strings.Join(want, ",") || len(rep.Suppressed) != 4 || rep.RequestID != audit[0].RequestID {
		t.Fatalf("retried erase: %+v (profiles %v)", rep, want)
	}
	if len(sink.got) != 1 {
		t.Fatalf("%d changes sent on the retry, want the DELETED one", len(sink.got))
	}
	var c profilev1.ProfileChange
	if err := proto.Unmarshal(sink.got[0].Value, &c); err != nil || c.Kind != profilev1.ChangeKind_CHANGE_KIND_DELETED || c.ProfileId != prof.ID {
		t.Fatalf("change = %v %v", &c, err)
	}
	if st, _ := cons.Read(ctx, ws, []consent.Identifier{{Type: "user_id", Value: "u"}}); len(st) != 0 {
		t.Fatalf("consent left: %v", st)
	}
	if n, _ := rdb.HLen(ctx, PendingKey(ws)).Result(); n != 0 {
		t.Fatalf("%d pending-erase fields left after completion", n)
	}
	// Erased: no consent is recorded against their identifiers again.
	s2 := *s
	if _, err := s2.RecordConsent(ctx, ws, email, u); !errors.Is(err, ErrSuppressed) {
		t.Fatalf("consent for an erased identifier: %v", err)
	}
}

// TestAuditKeepsErasures: consent requests cannot push erasure records
// out of the capped audit log.
func TestAuditKeepsErasures(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ws, ctx := testinfra.Unique(t), context.Background()
	g := identity.New(rdb, identity.DefaultConfig())
	s := &Service{Graph: g, Suppression: suppression.New(rdb), Redis: rdb, Consent: consent.NewStore(rdb), AuditCap: 3}
	if _, err := s.Erase(ctx, ws, identity.Identifier{Type: "email", Value: "gone@x.io"}, "ticket 1"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := s.ReadConsent(ctx, ws, identity.Identifier{Type: "user_id", Value: "someone"}); err != nil {
			t.Fatal(err)
		}
	}
	audit, err := s.Audit(ctx, ws, 100)
	if err != nil {
		t.Fatal(err)
	}
	erasures := 0
	for _, r := range audit {
		if r.Type == TypeErase {
			erasures++
		}
	}
	if erasures != 1 || len(audit) != 4 {
		t.Fatalf("audit = %d entries, %d erasures: %+v", len(audit), erasures, audit)
	}
}

// TestExportSectionsAreTheErasedTables: export writes one section for
// every table erase deletes from.
func TestExportSectionsAreTheErasedTables(t *testing.T) {
	secs := exportSections(context.Background(), &history.Reader{}, history.Person{}, nil)
	for _, table := range history.Tables {
		if secs[table] == nil {
			t.Errorf("erase deletes from %s but export has no section for it", table)
		}
	}
	if len(secs) != len(history.Tables) {
		t.Errorf("export sections %d, erased tables %d", len(secs), len(history.Tables))
	}
}

func TestMaskChange(t *testing.T) {
	red := pii.NewRedaction(nil)
	unlink := history.Change{Kind: "SPLIT", CauseMessageID: "unlink/email:ann@x.io|email:bob@x.io/p_1", Detail: "split from phone:+4915112345678"}
	if got := maskChange(unlink, red); strings.Contains(got.CauseMessageID, "ann@x.io") || strings.Contains(got.CauseMessageID, "bob@x.io") || strings.Contains(got.Detail, "12345678") {
		t.Errorf("unlink change masked: %+v", got)
	}
	if got := maskChange(unlink, nil); got.CauseMessageID != unlink.CauseMessageID {
		t.Errorf("pii:read sees the cause: %+v", got)
	}
	blocked := history.Change{Kind: "MERGE_BLOCKED", Detail: "merge protection kept apart identifier email:bob@x.io: limit (two emails); profile p_9: denied (an operator cut this link)"}
	for _, r := range []*pii.Redaction{nil, red} {
		got := maskChange(blocked, r).Detail
		if want := "merge protection kept apart identifier (withheld): limit (two emails); profile p_9: denied (an operator cut this link)"; got != want {
			t.Errorf("blocked (masked %v):\n got %s\nwant %s", r != nil, got, want)
		}
	}
}

func TestMaskReport(t *testing.T) {
	r := Report{Identifier: "user_id:ann@x.io", Suppressed: []string{"user_id:ann@x.io", "phone:+4915112345678"}, Reason: "ticket 7 from ann@x.io",
		Status: "failed: code 62 near '\"ann@x.io\"'", Source: "form by +4915112345678"}
	got := maskReport(r, pii.NewRedaction(nil))
	for _, s := range append([]string{got.Identifier, got.Reason, got.Status, got.Source}, got.Suppressed...) {
		if strings.Contains(s, "ann@x.io") || strings.Contains(s, "12345678") {
			t.Errorf("unmasked: %q (%+v)", s, got)
		}
	}
	if got.Identifier != "user_id:a***@x.io" {
		t.Errorf("identifier = %q", got.Identifier)
	}
}
