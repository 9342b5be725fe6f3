package segments

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Definition is a segment as marketers write it (YAML or JSON). Unknown keys
// are errors, so a typo never silently changes an audience.
type Definition struct {
	ID          string `json:"id"`
	Version     uint32 `json:"version"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Condition is a CEL expression that must yield a bool. Variables:
	// traits (map), identities (list of "type:value" strings), first_seen,
	// last_seen, now (timestamps) and every aggregate declared below.
	Condition  string                  `json:"condition"`
	Aggregates map[string]AggregateDef `json:"aggregates,omitempty"`
	// Recheck bounds how stale the answer may get when the condition reads
	// `now` directly (for example `now - first_seen < duration("168h")`):
	// NextDeadline then asks to be called again after at most this long.
	// Default 1h; ignored when the condition does not read `now`.
	Recheck Duration `json:"recheck,omitempty"`
}

// AggregateDef declares one named aggregate; exactly one kind is set.
type AggregateDef struct {
	// Count counts matching events (int), in a window or over all time.
	Count *CountDef `json:"count,omitempty"`
	// Sum adds a numeric property of matching events (double).
	Sum *SumDef `json:"sum,omitempty"`
	// FirstSeen and LastSeen are the time of the first and last matching
	// event (timestamp; 1970-01-01T00:00:00Z when there was none).
	FirstSeen *SeenDef `json:"first_seen,omitempty"`
	LastSeen  *SeenDef `json:"last_seen,omitempty"`
	// Absence is true once Within has passed since the latest After event
	// with no Missing event at or after it (bool).
	Absence *AbsenceDef `json:"absence,omitempty"`
	// Inactive is true when there was a matching event and none in the last
	// Within (bool). A profile never seen is not inactive: it is unknown.
	Inactive *InactiveDef `json:"inactive,omitempty"`
}

// Match selects events. Event matches the event name (track event name,
// page or screen name); Type matches the call type (track, page, screen,
// identify, group, alias). Empty fields match anything.
type Match struct {
	Event string `json:"event,omitempty"`
	Type  string `json:"type,omitempty"`
	// Where is a CEL filter over `properties` (a map), e.g.
	// 'properties.category == "audio"'. An event whose filter errors (for
	// example a missing property) does not match.
	Where string `json:"where,omitempty"`
}

// CountDef counts matching events within a window (all time when Within is 0).
type CountDef struct {
	Match
	Within Duration `json:"within,omitempty"`
}

// SumDef sums Property (a dot path into properties; numbers or numeric
// strings, anything else adds nothing) over matching events.
type SumDef struct {
	Match
	Property string   `json:"property"`
	Within   Duration `json:"within,omitempty"`
}

// SeenDef is the time of the first or last matching event.
type SeenDef struct {
	Match
}

// AbsenceDef is a sequence with absence: an After event not followed by a
// Missing event within Within.
type AbsenceDef struct {
	After        string   `json:"after"`
	AfterType    string   `json:"after_type,omitempty"`
	Where        string   `json:"where,omitempty"`
	Missing      string   `json:"missing"`
	MissingType  string   `json:"missing_type,omitempty"`
	MissingWhere string   `json:"missing_where,omitempty"`
	Within       Duration `json:"within"`
}

// InactiveDef is true when no matching event happened in the last Within.
type InactiveDef struct {
	Match
	Within Duration `json:"within"`
}

// Duration is a time.Duration written as Go duration ("90m", "168h") or in
// whole days ("30d").
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"1h\", \"168h\" or \"30d\"")
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// ParseDuration parses a Go duration or a whole number of days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("bad duration %q: days must be a whole number such as \"30d\"", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q: use a form such as \"90m\", \"168h\" or \"30d\"", s)
	}
	return v, nil
}
