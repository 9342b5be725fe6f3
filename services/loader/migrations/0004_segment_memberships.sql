-- segment_memberships: every enter/exit transition, one row per
-- (workspace_id, segment_id, profile_id, membership_id). membership_id is
-- deterministic (segment, version, profile, transition, cause), so a
-- redelivered transition collapses.
CREATE TABLE IF NOT EXISTS {{.DB}}.segment_memberships{{.OnCluster}} (
    membership_id String,
    workspace_id String,
    segment_id String,
    segment_version UInt32,
    profile_id String,
    transition String,
    occurred_at DateTime('UTC'),
    occurred_at_ms UInt16,
    evaluated_at DateTime('UTC'),
    evaluated_at_ms UInt16,
    cause_id String,
    trace_id String,
    loaded_at DateTime('UTC'),
    version UInt64
) ENGINE = {{replacing "segment_memberships" "version"}}
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (workspace_id, segment_id, profile_id, membership_id);
