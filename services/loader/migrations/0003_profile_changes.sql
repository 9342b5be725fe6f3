-- profile_changes: every ProfileChange, one row per (workspace_id,
-- profile_id, change_id). change_id is deterministic, so a redelivered
-- change collapses. Identities and trait changes are parallel arrays (ARRAY
-- JOIN identity_types, identity_values; trait_keys, trait_old_values,
-- trait_new_values); trait values are JSON text, '' when absent.
CREATE TABLE IF NOT EXISTS {{.DB}}.profile_changes{{.OnCluster}} (
    change_id String,
    workspace_id String,
    profile_id String,
    kind String,
    occurred_at DateTime('UTC'),
    occurred_at_ms UInt16,
    cause_message_id String,
    identity_types Array(String),
    identity_values Array(String),
    related_profile_ids Array(String),
    trait_keys Array(String),
    trait_old_values Array(String),
    trait_new_values Array(String),
    detail String,
    trace_id String,
    loaded_at DateTime('UTC'),
    version UInt64
) ENGINE = {{replacing "profile_changes" "version"}}
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (workspace_id, profile_id, change_id);
