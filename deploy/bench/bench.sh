#!/usr/bin/env bash
# The one benchmark (make bench): brings up the servers, measures each
# stage against its server's own tool, then drives the whole pipeline at
# increasing rates with the shop clickstream (tools/clickstream), and
# prints one table:
#
#   1. collector vs Kafka's ProducerPerformance      deploy/bench/collector.sh
#   2. stitcher vs redis-benchmark                    deploy/bench/stitcher.sh
#   3. loader vs clickhouse-client (same rows, TSV)   deploy/bench/loader.sh
#   4. the whole pipeline at FP_BENCH_RATES           deploy/bench/pipeline.sh
#      (collector accept → resolved / segment trigger / ClickHouse row,
#      p50/p99; throughput per stage; peak RSS per service)
#
# Writes .local/bench/bench.txt (the table), bench.json and bench.png (a
# chart), keeps each step's own JSON and log beside them, and compares
# with the previous run (bench.prev.json) so two runs can be held side by
# side. Takes about 7 minutes on the 2-core box (each rate is followed by up to
# 60 s for the pipeline to drain, so no step inherits the backlog of the one
# before).
#
#   deploy/bench/bench.sh            (make bench)
#
# Knobs (environment): FP_BENCH_RATES (pipeline rates, "1000,2000,3000,4000,5000"),
# FP_BENCH_PIPELINE_SECONDS (40 per rate), FP_BENCH_COLLECTOR_BATCHES
# ("1 20"), FP_BENCH_COLLECTOR_SECONDS (20 per batch size), FP_BENCH_ROWS
# (loader rows, 200000), FP_BENCH_SKIP (steps to leave out, e.g. "stitcher
# loader"; their columns show –).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
local_dir=${FP_LOCAL_DIR:-$root/.local}
out=$local_dir/bench
skip=" ${FP_BENCH_SKIP:-} "
started=$(date +%s)
die() { echo "bench.sh: $*" >&2; exit 1; }
elapsed() { local s=$(($(date +%s) - started)); printf '%d:%02d' $((s / 60)) $((s % 60)); }
step() { printf '\n\033[1m[%s/4 · %s elapsed] %s\033[0m\n' "$1" "$(elapsed)" "$2" >&2; }
command -v jq >/dev/null || die "needs jq (make deps)"
command -v go >/dev/null || die "needs go"

mkdir -p "$out"
# The previous report is kept for the comparison; stale step results are
# removed so a step that fails or is skipped is never reported with an
# earlier run's figures.
[ -f "$out/bench.json" ] && cp "$out/bench.json" "$out/bench.prev.json"
rm -f "$out"/{collector,stitcher,loader,pipeline}.json

"$root/deploy/local/servers.sh" start >&2
report=$(mktemp "${TMPDIR:-/tmp}/fp-benchreport.XXXXXX")
trap 'rm -f "$report"' EXIT
(cd "$root/tools" && go build -o "$report" ./benchreport)

# run NAME CMD…: one step, its stdout kept in NAME.log beside the JSON
# (progress and errors stay on the terminal).
run() {
	local name=$1
	shift
	if [[ $skip == *" $name "* ]]; then
		echo "skipped (FP_BENCH_SKIP)" >&2
		return
	fi
	"$@" >"$out/$name.log" || die "$name step failed; its output: $out/$name.log"
	cat "$out/$name.log" >&2
}

step 1 "collector vs Kafka's own producer (ProducerPerformance)"
run collector env FP_BENCH_BATCHES="${FP_BENCH_COLLECTOR_BATCHES:-1 20}" FP_BENCH_SECONDS="${FP_BENCH_COLLECTOR_SECONDS:-20}" \
	"$root/deploy/bench/collector.sh"
step 2 "stitcher (identity resolution) vs redis-benchmark"
run stitcher "$root/deploy/bench/stitcher.sh"
step 3 "loader (Kafka → ClickHouse) vs clickhouse-client inserting the same rows"
run loader "$root/deploy/bench/loader.sh"
step 4 "the whole pipeline at ${FP_BENCH_RATES:-1000,2000,3000,4000,5000} events/s"
run pipeline env FP_BENCH_RATES="${FP_BENCH_RATES:-1000,2000,3000,4000,5000}" FP_BENCH_SECONDS="${FP_BENCH_PIPELINE_SECONDS:-40}" \
	"$root/deploy/bench/pipeline.sh"

took=$(($(date +%s) - started))
printf '\n' >&2
"$report" -dir "$out" -json "$out/bench.json" -png "$out/bench.png" -prev "$out/bench.prev.json" \
	-commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	-host "$(nproc) cores, $(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1048576)) GiB" -took "${took}s" | tee "$out/bench.txt"
