#!/usr/bin/env bash
# Benchmarks identity resolution against the local Redis, and in the same
# run Redis itself with redis-benchmark:
#
#   1. pkg/identity BenchmarkApplyBatch: a shop's clickstream (many
#      anonymous devices, sign-ups, logins on a second device that merge
#      profiles, identified devices, trait updates, shared kiosks that are
#      blocked merges, events a few seconds out of order) resolved by the
#      Lua script in pipelined batches, as the stitcher does, after a
#      warm-up that creates most profiles. Redis's command statistics give
#      the commands each event costs inside its script.
#   2. redis-benchmark -P 16: SET, GET, HSET (the server's ceiling for
#      simple commands on this machine) and EVALSHA of a script that does
#      nothing (the ceiling for script calls).
#
# Prints events/s, events per Redis round trip, round trips/s, commands per
# event, the baselines and the ratios; writes .local/bench/stitcher.json.
# Other clients of the same Redis (tests running beside it) skew both.
#
#   deploy/bench/stitcher.sh          (make bench-stitcher)
#
# Knobs: FP_BENCH_BATCHES (timed batches, 80), FP_BENCH_BATCH (events per
# pipeline, 500), FP_BENCH_PEOPLE (10000), FP_BENCH_WARMUP (batches, 40),
# FP_BENCH_REQUESTS (redis-benchmark requests per test, 300000).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
local_dir=${FP_LOCAL_DIR:-$root/.local}
batches=${FP_BENCH_BATCHES:-80}
batch=${FP_BENCH_BATCH:-500}
requests=${FP_BENCH_REQUESTS:-300000}
die() { echo "stitcher.sh: $*" >&2; exit 1; }
command -v jq >/dev/null || die "needs jq (apt-get install -y jq)"
command -v go >/dev/null || die "needs go"
command -v redis-benchmark >/dev/null || die "needs redis-benchmark (apt-get install -y redis-tools, or deploy/local/servers.sh install redis)"
"$root/deploy/local/servers.sh" start redis >&2
set -a
# shellcheck disable=SC1091
. "$local_dir/servers.env"
set +a
host=${FP_REDIS_ADDR%:*} port=${FP_REDIS_ADDR##*:}
load=$(cut -d' ' -f1-3 /proc/loadavg)

printf '\n== identity resolution: %d batches of %d events (go test -bench BenchmarkApplyBatch)\n' "$batches" "$batch" >&2
out=$(cd "$root/pkg" && FP_REQUIRE_SERVERS=1 FP_BENCH_BATCH=$batch go test -run '^$' -bench '^BenchmarkApplyBatch$' \
	-benchtime "${batches}x" -count 1 ./identity/)
echo "$out" >&2
metric() { awk -v unit="$1" '/^BenchmarkApplyBatch/ {for (i = 2; i <= NF; i++) if ($(i+1) == unit) print $i}' <<<"$out"; }
eps=$(metric events/s)
cpe=$(metric rediscmds/event)
spe=$(metric scripts/event)
merges=$(metric merges/1k) blocked=$(metric blocked/1k) created=$(metric new/1k)
[ -n "$eps" ] || die "the benchmark reported no events/s"

printf '\n== redis-benchmark on the same server (pipeline 16, %d requests each)\n' "$requests" >&2
base=$(redis-benchmark -h "$host" -p "$port" -n "$requests" -P 16 -t set,get,hset --csv 2>/dev/null | tr -d '"' |
	awk -F, 'NR > 1 {print $1, $2}')
echo "$base" >&2
base_ops=$(awk '{s += $2; n++} END {printf "%.0f", s / n}' <<<"$base")
noop=$(redis-cli -h "$host" -p "$port" SCRIPT LOAD "return 1")
evalsha_ops=$(redis-benchmark -h "$host" -p "$port" -n "$requests" -P 16 --csv EVALSHA "$noop" 0 2>/dev/null | tr -d '"' |
	awk -F, 'NR > 1 {printf "%.0f", $2}')
echo "EVALSHA (return 1) $evalsha_ops" >&2

rts=$(awk -v e="$eps" -v b="$batch" 'BEGIN {printf "%.1f", e / b}')
ratio=$(awk -v e="$eps" -v b="$base_ops" 'BEGIN {printf "%.4f", e / b}')
driven=$(awk -v e="$eps" -v c="$cpe" -v b="$base_ops" 'BEGIN {printf "%.2f", e * c / b}')
mkdir -p "$local_dir/bench"
jq -n --argjson eps "$eps" --argjson batch "$batch" --argjson rts "$rts" --argjson cpe "$cpe" --argjson spe "$spe" \
	--argjson base "$base_ops" --argjson evalsha "${evalsha_ops:-0}" --argjson ratio "$ratio" --argjson driven "$driven" \
	--argjson merges "$merges" --argjson blocked "$blocked" --argjson created "$created" \
	--arg host "$(nproc) cores" --arg load "$load" \
	'{events_per_s: $eps, events_per_round_trip: $batch, round_trips_per_s: $rts, redis_commands_per_event: $cpe,
	  scripts_per_event: $spe, stream_per_1k_events: {new_profiles: $created, merges: $merges, blocked_merges: $blocked},
	  redis_benchmark_ops_per_s: $base, redis_benchmark_evalsha_noop_per_s: $evalsha,
	  events_per_s_vs_baseline: $ratio, commands_driven_vs_baseline: $driven, host: $host, load_before: $load}' \
	>"$local_dir/bench/stitcher.json"
printf '\n%-40s %s\n' "identity resolution events/s" "$eps"
printf '%-40s %s\n' "events per Redis round trip" "$batch (one pipeline per batch)"
printf '%-40s %s\n' "Redis round trips/s" "$rts"
printf '%-40s %s\n' "scripts per event" "$spe"
printf '%-40s %s\n' "Redis commands per event (in the script)" "$cpe"
printf '%-40s %s\n' "redis-benchmark SET/GET/HSET ops/s" "$base_ops (mean, -P 16)"
printf '%-40s %s\n' "redis-benchmark EVALSHA no-op/s" "$evalsha_ops (-P 16)"
printf '%-40s %s\n' "events/s / baseline ops/s" "$ratio"
printf '%-40s %s\n' "commands driven / baseline ops/s" "$driven"
printf '%-40s %s\n' "stream per 1k events" "new $created, merges $merges, blocked $blocked"
