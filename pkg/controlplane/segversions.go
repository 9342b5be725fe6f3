package controlplane

import (
	"fmt"

	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/sources"
)

// CheckSegmentVersions refuses a workspace edit that changes a segment's
// definition without raising its version, or lowers a version. The
// segmenter knows a definition by its id and version: an entry made by
// another version is decided anew, and a new version is backfilled from
// current state. A definition changed under the same version would do
// neither, so members chosen by the old condition would stay until their
// next event (and profiles without events would never be backfilled).
// old is the workspace as it is (nil: new).
func CheckSegmentVersions(old *sources.Workspace, w sources.Workspace) error {
	if old == nil {
		return nil
	}
	was := make(map[string]segments.Definition, len(old.Segments))
	for _, d := range old.Segments {
		was[d.ID] = d
	}
	for _, d := range w.Segments {
		o, ok := was[d.ID]
		if !ok {
			continue
		}
		field := "segments[" + d.ID + "].version"
		switch {
		case d.Version < o.Version:
			return &VersionError{Field: field, Msg: fmt.Sprintf("segment %s is at version %d; a version may only go up, got %d", d.ID, o.Version, d.Version)}
		case d.Version == o.Version && !SameSegment(o, d):
			return &VersionError{Field: field, Msg: fmt.Sprintf("segment %s changed but kept version %d: give it version %d (or, through PutSegment, no version), so its members are decided anew and it is backfilled", d.ID, d.Version, d.Version+1)}
		}
	}
	return nil
}

// VersionError is an edit CheckSegmentVersions refuses; Field is the path
// of the version in the workspace document. It is an ErrInvalid.
type VersionError struct{ Field, Msg string }

func (e *VersionError) Error() string        { return e.Msg }
func (e *VersionError) Is(target error) bool { return target == ErrInvalid }

// SameSegment reports whether two definitions say the same, version
// aside.
func SameSegment(a, b segments.Definition) bool {
	a.Version, b.Version = 0, 0
	return sameJSON(a, b)
}

// NextSegmentVersion is the version a definition sent without one gets:
// 1 for a new segment, the current one when nothing changed, the next
// one otherwise.
func NextSegmentVersion(old *sources.Workspace, d segments.Definition) uint32 {
	if old != nil {
		for _, o := range old.Segments {
			if o.ID != d.ID {
				continue
			}
			if SameSegment(o, d) {
				return o.Version
			}
			return o.Version + 1
		}
	}
	return 1
}
