-- rejected_events: every Rejection from cdp.events.invalid, and every message
-- the loader itself could not decode (stage 'loader', reason
-- 'format_violation'), for data-quality dashboards. rejection_id is a digest
-- of the Kafka message, so a redelivered rejection collapses while two
-- rejections of one message id (two duplicates of it, say) stay two rows.
-- The first violation is in reason/field/rule/detail; all of them in the
-- parallel arrays.
CREATE TABLE IF NOT EXISTS {{.DB}}.rejected_events{{.OnCluster}} (
    rejection_id String,
    workspace_id String,
    source_id String,
    message_id String,
    stage String,
    reason String,
    field String,
    rule String,
    detail String,
    reasons Array(String),
    fields Array(String),
    rules Array(String),
    details Array(String),
    violations UInt16,
    type String,
    event String,
    anonymous_id String,
    user_id String,
    received_at DateTime('UTC'),
    rejected_at DateTime('UTC'),
    rejected_at_ms UInt16,
    raw String,
    origin String,
    trace_id String,
    loaded_at DateTime('UTC'),
    version UInt64
) ENGINE = {{replacing "rejected_events" "version"}}
PARTITION BY toYYYYMM(rejected_at)
ORDER BY (workspace_id, toDate(rejected_at), source_id, rejection_id);
