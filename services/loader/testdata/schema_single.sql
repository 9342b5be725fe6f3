-- bookkeeping, created before the migrations run
CREATE TABLE IF NOT EXISTS firstparty.schema_migrations (
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version;

-- migration events
CREATE TABLE IF NOT EXISTS firstparty.events (
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
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (workspace_id, toDate(timestamp), event, cityHash64(anonymous_id), source_id, message_id);

-- migration identities
CREATE TABLE IF NOT EXISTS firstparty.identities (
    workspace_id String,
    identifier_type String,
    identifier_value String,
    profile_id String,
    change_id String,
    updated_at DateTime('UTC'),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (workspace_id, identifier_type, identifier_value);
CREATE VIEW IF NOT EXISTS firstparty.events_current AS
SELECT
    e.*,
    if(current = '', profile_id, current) AS current_profile_id
FROM firstparty.events AS e FINAL
ANY LEFT JOIN
(
    SELECT workspace_id, merged AS profile_id, survivor AS current
    FROM
    (
        SELECT workspace_id, identifier_value AS merged, argMax(profile_id, version) AS survivor
        FROM firstparty.identities
        WHERE identifier_type = '$profile_id'
        GROUP BY workspace_id, identifier_value
    )
) AS merges USING (workspace_id, profile_id);

-- migration profile_changes
CREATE TABLE IF NOT EXISTS firstparty.profile_changes (
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
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (workspace_id, profile_id, change_id);

-- migration segment_memberships
CREATE TABLE IF NOT EXISTS firstparty.segment_memberships (
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
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (workspace_id, segment_id, profile_id, membership_id);

-- migration rejected_events
CREATE TABLE IF NOT EXISTS firstparty.rejected_events (
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
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(rejected_at)
ORDER BY (workspace_id, toDate(rejected_at), source_id, rejection_id);
