// Package segments is the segment language and its pure evaluation core.
//
// Marketers write a segment as a small YAML (or JSON) document: a CEL
// condition over the profile (traits, identities, first/last seen, now) and
// over named behavioural aggregates folded from the profile's events
// (windowed counts and sums with CEL property filters, first/last seen,
// sequence-with-absence and inactivity). Compile validates a definition the
// moment it is saved; the segmenter stage then, for each resolved event,
// calls Affected, Observe and Evaluate, keeps the per-profile State (a small
// JSON document) in Redis, and schedules a durable timer at NextDeadline so
// time-driven transitions (abandoned cart, dormant) fire when they are due
// and not at the next event.
//
// Nothing here does I/O: every function is deterministic in its arguments,
// including the clock, which the caller passes in.
//
// # Where it sits
//
//	[cdp.events.resolved] + [cdp.profiles.changes] ──▶ segmenter ──▶ [cdp.segments.membership]
//	                                                     │
//	                                    pkg/segments (this package): Compile, Observe,
//	                                    Evaluate, NextDeadline, Affected, MergeStates
//
// # The language
//
//	id: abandoned-cart            # [a-z0-9_-]{1,64}
//	version: 1                    # 1 or more; raise it with every change
//	name: Abandoned cart
//	condition: 'abandoned && traits.plan == "pro"'   # CEL, must be a bool
//	recheck: 1h                   # only when the condition reads `now` (default 1h)
//	aggregates:
//	  views_audio_7d: {count: {event: "Product Viewed", where: 'properties.category == "audio"', within: 168h}}
//	  revenue_90d:    {sum: {event: "Order Completed", property: revenue, within: 90d}}
//	  orders:         {count: {event: "Order Completed"}}          # no within: all time
//	  first_order:    {first_seen: {event: "Order Completed"}}
//	  last_event:     {last_seen: {}}                              # any event
//	  abandoned:      {absence: {after: "Cart Added", missing: "Order Completed", within: 1h}}
//	  dormant:        {inactive: {within: 30d}}
//
// Condition variables: traits (map of the profile's traits; JSON numbers are
// doubles, which compare with int literals but need double literals in
// arithmetic), identities (list of "type:value"), first_seen, last_seen and
// now (timestamps), and each aggregate: count is an int, sum a double,
// first_seen/last_seen a timestamp (1970-01-01 when none), absence and
// inactive a bool. Reading a missing trait makes the whole condition false;
// test with has(traits.x). Event selectors take event (the name), type
// (track, page, screen, identify, group, alias) and where (CEL over
// properties); empty selectors match every event. Durations are Go
// durations or whole days ("30d"); windows run from 1 minute to 400 days.
// Every aggregate declared must be used by the condition, and names the
// condition uses must be declared: Compile says which.
//
// Absence is true once `within` has passed since the latest `after` event
// with no `missing` event at or after it; a later `missing` event (even a
// late-arriving one) ends it, a new `after` event restarts the clock.
// Inactive is true once `within` has passed since the latest matching
// event; a profile with no matching event is not inactive (Seed fills it
// from the profile's last_seen when backfilling).
//
// Lifecycle templates (registered, first_purchase, active, churning,
// dormant) ship as YAML in templates/ and are listed by Templates.
//
// # State
//
// A State belongs to one profile and one segment (Observe forgets
// aggregates the segment does not declare). It is JSON; when a segment is
// edited, aggregates whose definition changed start afresh (their
// fingerprint no longer matches) while the others keep their history.
// MergeStates combines two profiles' states when the stitcher merges them.
//
// # Windows and their precision
//
// Windowed aggregates keep time buckets aligned to UTC (minute buckets for
// windows up to 6 h, hour buckets up to 7 days, day buckets beyond, longest
// window 400 days), so a window slides without rescanning history and the
// State stays bounded: a bucket that ended more than the window ago is
// dropped. A bucket counts while any part of it is inside the window, so
// every event of the last `within` is counted and events up to one bucket
// width older may be too (at most 1 minute, 1 hour or 1 day early, by tier):
// windows never under-count. The instant a bucket leaves the window is
// exact and NextDeadline reports it.
//
// Times in the State are Unix milliseconds. Absence and inactivity round the
// event time up to the next millisecond, so a deadline is never early (at
// most 1 ms late).
package segments
