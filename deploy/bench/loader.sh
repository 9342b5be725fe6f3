#!/usr/bin/env bash
# Benchmarks the loader against the local Kafka and ClickHouse, and in the
# same run ClickHouse itself with clickhouse-client:
#
#   1. services/loader BenchmarkTopicToTable: FP_BENCH_ROWS resolved events
#      (full-width, realistic) produced to a fresh topic, then the loader
#      started and timed until every row is queryable; its peak memory.
#   2. clickhouse-client inserting the very same rows, exported from the
#      table as TSV, into a table of the same schema (the ceiling for these
#      rows), and 2 M narrow three-column rows (the server's raw ceiling).
#
# Prints rows/s, the baselines and the ratio; writes .local/bench/loader.json.
#
#   deploy/bench/loader.sh          (make bench-loader)
#
# Knobs: FP_BENCH_ROWS (200000).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
local_dir=${FP_LOCAL_DIR:-$root/.local}
rows=${FP_BENCH_ROWS:-200000}
die() { echo "loader.sh: $*" >&2; exit 1; }
command -v jq >/dev/null || die "needs jq (apt-get install -y jq)"
command -v go >/dev/null || die "needs go"
command -v clickhouse-client >/dev/null || die "needs clickhouse-client (deploy/local/servers.sh install clickhouse)"
"$root/deploy/local/servers.sh" start kafka >&2
"$root/deploy/local/servers.sh" start clickhouse >&2
set -a
# shellcheck disable=SC1091
. "$local_dir/servers.env"
set +a
load=$(cut -d' ' -f1-3 /proc/loadavg)

printf '\n== loader: %d rows topic → table, then clickhouse-client on the same rows (go test -bench BenchmarkTopicToTable)\n' "$rows" >&2
out=$(cd "$root/services/loader" && FP_REQUIRE_SERVERS=1 FP_BENCH_BASELINE=1 go test -run '^$' -bench '^BenchmarkTopicToTable$' \
	-benchtime "${rows}x" -count 1 .)
echo "$out" >&2
metric() { awk -v unit="$1" '/^BenchmarkTopicToTable/ {for (i = 2; i <= NF; i++) if ($(i+1) == unit) print $i}' <<<"$out"; }
rate=$(metric rows/s) same=$(metric client-same-rows/s) narrow=$(metric client-narrow-rows/s)
ratio=$(metric ratio) peak=$(metric loader-peak-MB)
[ -n "$rate" ] && [ -n "$same" ] || die "the benchmark reported no rows/s"

mkdir -p "$local_dir/bench"
jq -n --argjson rows "$rows" --argjson rate "$rate" --argjson same "$same" --argjson narrow "${narrow:-0}" \
	--argjson ratio "$ratio" --argjson peak "${peak:-0}" --arg host "$(nproc) cores" --arg load "$load" \
	'{rows: $rows, rows_per_s: $rate, clickhouse_client_same_rows_per_s: $same, clickhouse_client_narrow_rows_per_s: $narrow,
	  ratio_to_client: $ratio, loader_peak_mb: $peak, host: $host, load_before: $load}' >"$local_dir/bench/loader.json"
printf '\n%-44s %s\n' "loader rows/s (Kafka → ClickHouse)" "$rate"
printf '%-44s %s\n' "clickhouse-client, the same rows as TSV" "$same"
printf '%-44s %s\n' "clickhouse-client, narrow rows" "$narrow"
printf '%-44s %s\n' "loader / clickhouse-client (same rows)" "$ratio"
printf '%-44s %s\n' "loader peak memory MB" "$peak"
