package controlplane

import (
	"errors"
	"strings"
	"testing"

	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/sources"
)

func TestCheckSegmentVersions(t *testing.T) {
	seg := func(id string, v uint32, cond string) segments.Definition {
		return segments.Definition{ID: id, Version: v, Name: id, Condition: cond}
	}
	ws := func(defs ...segments.Definition) sources.Workspace { return sources.Workspace{ID: "w", Segments: defs} }
	old := ws(seg("vip", 3, "traits.plan == 'pro'"), seg("eu", 1, "traits.country == 'DE'"))
	for _, c := range []struct {
		name  string
		old   *sources.Workspace
		new   sources.Workspace
		field string // "" when accepted
		msg   string
	}{
		{"new workspace", nil, ws(seg("vip", 1, "true")), "", ""},
		{"unchanged", &old, old, "", ""},
		{"new segment", &old, ws(seg("vip", 3, "traits.plan == 'pro'"), seg("eu", 1, "traits.country == 'DE'"), seg("us", 1, "true")), "", ""},
		{"removed segment", &old, ws(seg("vip", 3, "traits.plan == 'pro'")), "", ""},
		{"changed with a new version", &old, ws(seg("vip", 4, "traits.plan == 'team'"), seg("eu", 1, "traits.country == 'DE'")), "", ""},
		{"same definition, higher version", &old, ws(seg("vip", 5, "traits.plan == 'pro'"), seg("eu", 1, "traits.country == 'DE'")), "", ""},
		{"changed under the same version", &old, ws(seg("vip", 3, "traits.plan == 'pro'"), seg("eu", 1, "traits.country == 'FR'")), "segments[eu].version", "give it version 2"},
		{"renamed under the same version", &old, ws(segments.Definition{ID: "vip", Version: 3, Name: "VIPs", Condition: "traits.plan == 'pro'"}), "segments[vip].version", "give it version 4"},
		{"lower version", &old, ws(seg("vip", 2, "traits.plan == 'pro'")), "segments[vip].version", "may only go up"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckSegmentVersions(c.old, c.new)
			if c.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ve *VersionError
			if !errors.As(err, &ve) || ve.Field != c.field || !strings.Contains(ve.Msg, c.msg) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want a VersionError on %s saying %q", err, c.field, c.msg)
			}
		})
	}
}

func TestNextSegmentVersion(t *testing.T) {
	old := &sources.Workspace{Segments: []segments.Definition{{ID: "vip", Version: 3, Name: "VIP", Condition: "true"}}}
	for _, c := range []struct {
		name string
		old  *sources.Workspace
		def  segments.Definition
		want uint32
	}{
		{"new workspace", nil, segments.Definition{ID: "vip", Condition: "true"}, 1},
		{"new segment", old, segments.Definition{ID: "eu", Condition: "true"}, 1},
		{"unchanged", old, segments.Definition{ID: "vip", Name: "VIP", Condition: "true"}, 3},
		{"changed", old, segments.Definition{ID: "vip", Name: "VIP", Condition: "false"}, 4},
	} {
		if got := NextSegmentVersion(c.old, c.def); got != c.want {
			t.Errorf("%s: version %d, want %d", c.name, got, c.want)
		}
	}
}
