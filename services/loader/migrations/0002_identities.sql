-- identities: which profile every identifier belongs to now, one row per
-- (workspace_id, identifier_type, identifier_value); the highest version
-- (the loader's clock when it wrote the row) wins.
--
-- Rows come from cdp.profiles.changes (see identities.go):
--   * every identities_added of a change: (type, value) -> profile_id;
--   * every related_profile_ids of a MERGED change:
--     ('$profile_id', absorbed id) -> the survivor;
--   * on a merge, every row pointing at an absorbed profile is written again
--     pointing at the survivor (its identifiers moved with it).
-- Targets are resolved through the '$profile_id' rows when written, so a row
-- never points at a profile that was merged away, whatever order the changes
-- arrive in.
CREATE TABLE IF NOT EXISTS {{.DB}}.identities{{.OnCluster}} (
    workspace_id String,
    identifier_type String,
    identifier_value String,
    profile_id String,
    change_id String,
    updated_at DateTime('UTC'),
    version UInt64
) ENGINE = {{replacing "identities" "version"}}
ORDER BY (workspace_id, identifier_type, identifier_value);

-- events_current: every event with current_profile_id, the profile its
-- processing-time profile_id belongs to now. Merges add '$profile_id' rows;
-- they never rewrite events. The ANY LEFT JOIN ... USING form and the nested
-- subquery (ClickHouse aliases are query-global, so `identifier_value AS
-- profile_id, profile_id AS current` would read the alias) run on 18.16 and
-- on current ClickHouse alike; current ClickHouse also requires the joined
-- subquery to have an alias (joined_subquery_requires_alias), which the
-- first release of this file lacked (see acceptedChecksums in schema.go).
CREATE VIEW IF NOT EXISTS {{.DB}}.events_current{{.OnCluster}} AS
SELECT
    e.*,
    if(current = '', profile_id, current) AS current_profile_id
FROM {{.DB}}.events AS e FINAL
ANY LEFT JOIN
(
    SELECT workspace_id, merged AS profile_id, survivor AS current
    FROM
    (
        SELECT workspace_id, identifier_value AS merged, argMax(profile_id, version) AS survivor
        FROM {{.DB}}.identities
        WHERE identifier_type = '$profile_id'
        GROUP BY workspace_id, identifier_value
    )
) AS merges USING (workspace_id, profile_id);
