#!/usr/bin/env bash
# Benchmarks identity resolution against the local Redis, and in the same
# run Redis itself with redis-benchmark:
#
#   1. pkg/identity BenchmarkApplyBatch: realistic updates (user and
#      anonymous ids, a trait, a counter; re-visits and merges) resolved by
#      the Lua script in pipelined batches of 500, as the stitcher does.
#      Redis's own command statistics give the commands each event costs.
#   2. redis-benchmark -P 16 (SET, GET, HSET): the server's
#      ceiling for simple commands on this machine.
#
# Prints events/s, Redis round trips and commands per event, the baseline
# ops/s and the ratio of the commands the stitcher drives to that baseline;
# writes .local/bench/stitcher.json.
#
#   deploy/bench/stitcher.sh          (make bench-stitcher)
#
# Knobs: FP_BENCH_BATCHES (batches of 500 events, default 80).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
local_dir=${FP_LOCAL_DIR:-$root/.local}
batches=${FP_BENCH_BATCHES:-80}
command -v jq >/dev/null || { echo "stitcher.sh: needs jq" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "stitcher.sh: needs redis-benchmark (apt-get install -y redis-tools)" >&2; exit 1; }
"$root/deploy/local/servers.sh" start redis >&2
set -a
# shellcheck disable=SC1091
. "$local_dir/servers.env"
set +a
host=${FP_REDIS_ADDR%:*} port=${FP_REDIS_ADDR##*:}
rcli() { redis-cli -h "$host" -p "$port" "$@"; }
calls() { rcli INFO commandstats | awk -F'[=,]' '/^cmdstat_/ && !/cmdstat_(info|evalsha|eval|script|ping)/ {n += $2} END {print n + 0}'; }

printf '\n== identity resolution: %d batches of 500 events\n' "$batches" >&2
before=$(calls)
scripts() { rcli INFO commandstats | awk -F'[=,:]' '/^cmdstat_eval(sha)?:/ {n += $3} END {print n + 0}'; }
rt_before=$(scripts)
out=$(cd "$root/pkg" && FP_REQUIRE_SERVERS=1 go test -run '^$' -bench '^BenchmarkApplyBatch$' -benchtime "${batches}x" -count 1 ./identity/)
echo "$out" >&2
after=$(calls)
rt_after=$(scripts)
events=$((batches * 500))
eps=$(awk '/BenchmarkApplyBatch/ {for (i = 1; i <= NF; i++) if ($(i+1) == "events/s") print $i}' <<<"$out")
cmds_per_event=$(awk -v a="$after" -v b="$before" -v e="$events" 'BEGIN {printf "%.1f", (a - b) / e}')
scripts_per_event=$(awk -v a="$rt_after" -v b="$rt_before" -v e="$events" 'BEGIN {printf "%.2f", (a - b) / e}')

printf '\n== redis-benchmark on the same server (pipeline 16)\n' >&2
base=$(redis-benchmark -h "$host" -p "$port" -n 300000 -P 16 -t set,get,hset --csv 2>/dev/null | tr -d '"' |
	awk -F, 'NR > 1 {print $1, $2}')
echo "$base" >&2
base_ops=$(awk '{s += $2; n++} END {printf "%.0f", s / n}' <<<"$base")
ratio=$(awk -v e="$eps" -v c="$cmds_per_event" -v b="$base_ops" 'BEGIN {printf "%.2f", e * c / b}')

mkdir -p "$local_dir/bench"
jq -n --argjson eps "${eps:-0}" --argjson cpe "$cmds_per_event" --argjson spe "$scripts_per_event" --argjson base "$base_ops" \
	--argjson ratio "$ratio" --arg host "$(nproc) cores" \
	'{events_per_s: $eps, redis_commands_per_event: $cpe, scripts_per_event: $spe, round_trips_per_event: (1 / 500),
	  redis_benchmark_ops_per_s: $base, commands_driven_vs_baseline: $ratio, host: $host}' >"$local_dir/bench/stitcher.json"
printf '\n%-34s %s\n' "identity resolution events/s" "$eps"
printf '%-34s %s\n' "Redis round trips per event" "1/500 (one pipeline per batch)"
printf '%-34s %s\n' "scripts per event" "$scripts_per_event"
printf '%-34s %s\n' "Redis commands per event" "$cmds_per_event"
printf '%-34s %s\n' "redis-benchmark ops/s (mean)" "$base_ops"
printf '%-34s %s\n' "commands driven / baseline" "$ratio"
