package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/identity"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
)

func TestChanges(t *testing.T) {
	env := &eventv1.Envelope{MessageId: "m1", WorkspaceId: "ws", SourceId: "web", Event: &eventv1.Event{Timestamp: timestamppb.Now()}}
	tests := []struct {
		name  string
		res   identity.Result
		kinds string
		check func(t *testing.T, cs []*profilev1.ProfileChange)
	}{
		{"nothing new", identity.Result{ProfileID: "p1", Version: 4}, "", nil},
		{"first event", identity.Result{ProfileID: "p1", Version: 1, Created: true, Added: []identity.Identifier{{Type: "anonymous_id", Value: "a"}}},
			"CHANGE_KIND_CREATED CHANGE_KIND_IDENTITIES_ADDED", func(t *testing.T, cs []*profilev1.ProfileChange) {
				if cs[1].IdentitiesAdded[0].GetValue() != "a" || cs[1].Version != 1 {
					t.Errorf("identities added: %v", cs[1])
				}
			}},
		{"merge and traits", identity.Result{ProfileID: "p1", Merged: []string{"p2"},
			TraitChanges: []identity.TraitChange{{Key: "plan", Old: []byte(`"free"`), New: []byte(`"pro"`)}}},
			"CHANGE_KIND_MERGED CHANGE_KIND_TRAITS_UPDATED", func(t *testing.T, cs []*profilev1.ProfileChange) {
				if cs[0].RelatedProfileIds[0] != "p2" || string(cs[1].TraitChanges[0].NewValueJson) != `"pro"` {
					t.Errorf("changes: %v", cs)
				}
			}},
		{"blocked", identity.Result{ProfileID: "p1", Blocked: []identity.Block{{What: "p9", Reason: identity.BlockLimit}, {What: "email:x@y.z", Reason: identity.BlockDenied}}},
			"CHANGE_KIND_MERGE_BLOCKED", func(t *testing.T, cs []*profilev1.ProfileChange) {
				c := cs[0]
				if len(c.RelatedProfileIds) != 1 || c.RelatedProfileIds[0] != "p9" || len(c.IdentitiesAdded) != 0 ||
					!strings.Contains(c.Detail, "profile p9: limit") || !strings.Contains(c.Detail, "identifier email:x@y.z: denied") {
					t.Errorf("blocked change: %v", c)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := changes(env, tt.res)
			var kinds []string
			ids := map[string]bool{}
			for _, c := range cs {
				kinds = append(kinds, c.Kind.String())
				if c.ProfileId != tt.res.ProfileID || c.CauseMessageId != "m1" || ids[c.ChangeId] {
					t.Errorf("change %v", c)
				}
				ids[c.ChangeId] = true
			}
			if strings.Join(kinds, " ") != tt.kinds {
				t.Fatalf("kinds = %v, want %s", kinds, tt.kinds)
			}
			// Deterministic: the same event gives the same ids.
			for i, c := range changes(env, tt.res) {
				if c.ChangeId != cs[i].ChangeId {
					t.Errorf("change id %s then %s", cs[i].ChangeId, c.ChangeId)
				}
			}
			if tt.check != nil {
				tt.check(t, cs)
			}
		})
	}
}
