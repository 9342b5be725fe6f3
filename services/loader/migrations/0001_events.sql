-- events: every resolved event, one row per (workspace_id, source_id, message_id).
--
-- Time: ClickHouse 18.16 has no DateTime64, so each instant is a DateTime
-- in UTC (seconds; what toDate, toMonday, windowFunnel and retention take)
-- plus a UInt16 column with the milliseconds (0-999). Order within a second
-- with (timestamp, timestamp_ms); on a current ClickHouse,
-- toDateTime64(timestamp, 3) + timestamp_ms / 1000 is the exact instant.
-- `timestamp` is the event time after Segment's skew correction and drives
-- partitions and every report.
--
-- Collapsing: ReplacingMergeTree keeps, per sorting key, the row with the
-- highest `version` (the resolution time in ms, so a later resolution of the
-- same event wins). Every column of the sorting key before source_id and
-- message_id is a function of the event as the SDK sent it (its workspace,
-- day, name and device), never of processing (profile_id is not in it:
-- the stitcher may resolve a redelivered copy differently), so two copies of
-- one message always share the key: the dedup key is in effect
-- (workspace_id, source_id, message_id). The prefix serves the common
-- queries: a workspace's events by day and name (funnels, counts), then one
-- device's events together. Read with FINAL (or through events_current) to
-- see each event once before background merges ran. Two deliveries of one
-- message id that differ in the key's leading columns (an SDK retry that
-- came after the validator's dedup window and was skew-corrected onto
-- another day) stay two rows.
--
-- Strings are plain String: LowCardinality is experimental on 18.16. A later
-- migration can turn type, event, source_id and the context_* columns into
-- LowCardinality(String) where every server runs a current ClickHouse.
CREATE TABLE IF NOT EXISTS {{.DB}}.events{{.OnCluster}} (
    workspace_id String,
    source_id String,
    message_id String,
    type String,
    event String,
    name String,
    category String,
    anonymous_id String,
    user_id String,
    group_id String,
    previous_id String,
    profile_id String,
    timestamp DateTime('UTC'),
    timestamp_ms UInt16,
    original_timestamp DateTime('UTC'),
    original_timestamp_ms UInt16,
    sent_at DateTime('UTC'),
    sent_at_ms UInt16,
    received_at DateTime('UTC'),
    received_at_ms UInt16,
    resolved_at DateTime('UTC'),
    resolved_at_ms UInt16,
    context_ip String,
    context_user_agent String,
    context_locale String,
    context_timezone String,
    context_group_id String,
    context_library_name String,
    context_library_version String,
    context_page_url String,
    context_page_path String,
    context_page_referrer String,
    context_page_title String,
    context_page_search String,
    context_campaign_name String,
    context_campaign_source String,
    context_campaign_medium String,
    context_campaign_term String,
    context_campaign_content String,
    context_device_id String,
    context_device_advertising_id String,
    context_device_type String,
    context_device_manufacturer String,
    context_device_model String,
    context_device_name String,
    context_os_name String,
    context_os_version String,
    context_app_name String,
    context_app_version String,
    context_app_build String,
    context_app_namespace String,
    context_screen_width Int32,
    context_screen_height Int32,
    context_screen_density Float64,
    properties String,
    traits String,
    context String,
    integrations String,
    plan_id String,
    plan_version UInt32,
    violations UInt16,
    request_id String,
    trace_id String,
    loaded_at DateTime('UTC'),
    version UInt64
) ENGINE = {{replacing "events" "version"}}
PARTITION BY toYYYYMM(timestamp)
ORDER BY (workspace_id, toDate(timestamp), event, cityHash64(anonymous_id), source_id, message_id);
