#!/usr/bin/env bash
# Benchmarks the collector against the local Kafka, on one machine:
#
#   1. Kafka's own producer (ProducerPerformance, acks=all, lz4, linger 5 ms)
#      writing records the size of one collector envelope: the ceiling.
#   2. The collector binary, fed realistic clickstream by tools/loadgen at
#      1, 20 and 100 events per request over 64 connections.
#
# Prints one table (events/s, p50, p99, peak RSS, ratio to the raw producer)
# and writes it as JSON to .local/bench/collector.json (under FP_LOCAL_DIR
# when set). Fresh topics with a unique prefix, deleted at the end; the
# collector is stopped on any exit. Takes about 1.5 minutes.
#
#   deploy/bench/collector.sh
#
# Knobs (environment): FP_BENCH_SECONDS (25 per load run), FP_BENCH_CONNS (64),
# FP_BENCH_BATCHES ("1 20 100"), FP_BENCH_RECORDS (producer baseline records,
# 500000), FP_BENCH_PARTITIONS (6), FP_BENCH_COLLECTOR_ENV (extra NAME=VALUE
# words for the collector only, for A/B runs: "GOGC=400 FP_KAFKA_BATCH_TIMEOUT=1ms").
# Needs go, java 17, jq; starts Kafka with deploy/local/servers.sh when it is
# not running.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${FP_BENCH_SECONDS:-25}
conns=${FP_BENCH_CONNS:-64}
batches=${FP_BENCH_BATCHES:-1 20 100}
records=${FP_BENCH_RECORDS:-500000}
partitions=${FP_BENCH_PARTITIONS:-6}
local_dir=${FP_LOCAL_DIR:-$root/.local} # as deploy/local/servers.sh
out_dir=$local_dir/bench

die() { echo "collector.sh: $*" >&2; exit 1; }
log() { printf '\n== %s\n' "$*" >&2; }

command -v jq >/dev/null || die "needs jq (apt-get install -y jq)"
command -v go >/dev/null || die "needs go"

answers() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
if [ ! -f "$local_dir/servers.env" ] || ! answers "$(sed -n 's/^FP_KAFKA_BROKERS=//p' "$local_dir/servers.env" | cut -d, -f1)"; then
	"$root/deploy/local/servers.sh" start kafka >&2
fi
set -a
# shellcheck disable=SC1091
. "$local_dir/servers.env"
set +a
if [ -z "${FP_KAFKA_LIBS:-}" ] || [ ! -d "$FP_KAFKA_LIBS" ]; then
	die "FP_KAFKA_LIBS is not a directory: run deploy/local/servers.sh install kafka"
fi
brokers=$FP_KAFKA_BROKERS
java=$(command -v java) || die "needs java 17"
kjava() { "$java" -Xmx512m -Dlog4j2.configurationFile="$root/deploy/local/kafka/log4j2.xml" -Dkafka.logs.dir="$work" -cp "$FP_KAFKA_LIBS/*" "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/fp-bench.XXXXXX")
prefix=bench-$(date +%s)-$$
raw_topic=$prefix.cdp.events.raw
perf_topic=$prefix.producer-perf
collector_pid=""

cleanup() {
	local rc=$?
	if [ -n "$collector_pid" ] && kill -0 "$collector_pid" 2>/dev/null; then
		kill -TERM "$collector_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$collector_pid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$collector_pid" 2>/dev/null || true
	fi
	# The runs wrote gigabytes; do not leave them on the broker.
	local topics
	topics=$(kjava org.apache.kafka.tools.TopicCommand --bootstrap-server "$brokers" --list 2>/dev/null | grep "^$prefix\." | paste -sd, || true)
	if [ -n "$topics" ]; then
		kjava org.apache.kafka.tools.TopicCommand --bootstrap-server "$brokers" --delete --topic "$topics" >/dev/null 2>&1 || true
	fi
	if [ "$rc" -ne 0 ] && [ -f "$work/collector.log" ]; then
		echo "collector log (last lines):" >&2
		tail -n 20 "$work/collector.log" >&2
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building the collector and the load generator"
(cd "$root/services/collector" && go build -o "$work/collector" .)
(cd "$root/tools" && go build -o "$work/loadgen" ./loadgen)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
port=$(free_port)
write_key=wk_bench_$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
cat >"$work/sources.yaml" <<EOF
workspaces:
  - id: bench
    sources:
      - id: web
        write_keys: [$write_key]
EOF

log "starting the collector on 127.0.0.1:$port (topics $prefix.*, $partitions partitions)"
# shellcheck disable=SC2086 # FP_BENCH_COLLECTOR_ENV is a list of words
FP_SOURCES_FILE=$work/sources.yaml FP_KAFKA_BROKERS=$brokers FP_HTTP_ADDR=127.0.0.1:$port FP_GRPC_ADDR='' \
	FP_KAFKA_PARTITIONS=$partitions FP_TOPIC_RAW=$raw_topic FP_TOPIC_VALID=$prefix.cdp.events.valid \
	FP_TOPIC_INVALID=$prefix.cdp.events.invalid FP_TOPIC_RESOLVED=$prefix.cdp.events.resolved \
	FP_TOPIC_PROFILES=$prefix.cdp.profiles.changes FP_TOPIC_MEMBERSHIP=$prefix.cdp.segments.membership \
	FP_RATELIMIT_EVENTS_PER_SECOND=1000000000 FP_RATELIMIT_BURST=1000000000 FP_LOG_LEVEL=warn \
	env ${FP_BENCH_COLLECTOR_ENV:-} "$work/collector" >"$work/collector.log" 2>&1 &
collector_pid=$!
for i in $(seq 150); do
	curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
	kill -0 "$collector_pid" 2>/dev/null || die "the collector exited during start"
	[ "$i" -lt 150 ] || die "the collector is not ready after 30 s"
	sleep 0.2
done

loadgen() { "$work/loadgen" -url "http://127.0.0.1:$port" -write-key "$write_key" -concurrency "$conns" "$@"; }

# The producer baseline writes records the size of one envelope as the
# collector writes it: measured on the raw topic after a short warm-up
# (which also opens the connections and lets the Go runtime size its heap).
log "warm-up (5 s, batch 20) and measuring one envelope's size"
loadgen -batch 20 -duration 5s -json -quiet >"$work/warmup.json"
# The local broker's data is on this machine: read the records' sizes from
# its log segment (DumpLogSegments prints each record's valueSize).
log_dir=$(sed -n 's/^log\.dirs=//p' "$local_dir/kafka/server.properties" | cut -d, -f1)
segment=$(find "$log_dir/$raw_topic-0" -name '*.log' 2>/dev/null | sort | head -n 1) || true
[ -n "$segment" ] || die "no log segment of $raw_topic under $log_dir"
envelope_bytes=$(kjava kafka.tools.DumpLogSegments --deep-iteration --files "$segment" 2>/dev/null |
	sed -n 's/.* valueSize: \([0-9]*\).*/\1/p' | awk '{s+=$1; n++} END {if (n) printf "%d", s/n}')
if [ -z "$envelope_bytes" ] || [ "$envelope_bytes" -le 0 ]; then
	die "could not measure the envelope size from $segment"
fi
event_bytes=$(jq -r '.avg_event_bytes | floor' "$work/warmup.json")
echo "one event: $event_bytes B of JSON (batched); one envelope on the raw topic: $envelope_bytes B" >&2

log "Kafka producer baseline: $records records of $envelope_bytes B, acks=all, lz4, linger 5 ms"
perf_load=$(cut -d' ' -f1 /proc/loadavg)
kjava org.apache.kafka.tools.TopicCommand --bootstrap-server "$brokers" --create --topic "$perf_topic" \
	--partitions "$partitions" --replication-factor 1 >/dev/null
kjava org.apache.kafka.tools.ProducerPerformance --topic "$perf_topic" --num-records "$records" \
	--record-size "$envelope_bytes" --throughput -1 \
	--producer-props bootstrap.servers="$brokers" acks=all linger.ms=5 compression.type=lz4 batch.size=262144 \
	>"$work/perf.out" 2>&1 || { cat "$work/perf.out" >&2; die "ProducerPerformance failed"; }
perf_line=$(grep 'records sent' "$work/perf.out" | tail -n 1)
echo "$perf_line" >&2
perf_rate=$(sed -n 's/.* records sent, \([0-9.]*\) records\/sec.*/\1/p' <<<"$perf_line")
perf_p50=$(sed -n 's/.* \([0-9]*\) ms 50th.*/\1/p' <<<"$perf_line")
perf_p99=$(sed -n 's/.* \([0-9]*\) ms 99th.*/\1/p' <<<"$perf_line")
[ -n "$perf_rate" ] || die "could not read ProducerPerformance's result: $perf_line"

# rss_kb prints a field of the collector's /proc status in kB.
rss_kb() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$collector_pid/status"; }

runs=()
for b in $batches; do
	log "collector: batch $b, $conns connections, $seconds s"
	# Reset the peak-RSS mark (VmHWM) so each run reports its own peak; also
	# sample VmRSS in case the kernel refuses the reset.
	echo 5 >"/proc/$collector_pid/clear_refs" 2>/dev/null || true
	: >"$work/rss.$b"
	(while kill -0 "$collector_pid" 2>/dev/null; do rss_kb VmRSS >>"$work/rss.$b"; sleep 0.2; done) &
	sampler=$!
	load_before=$(cut -d' ' -f1 /proc/loadavg)
	loadgen -batch "$b" -duration "${seconds}s" -json >"$work/run.$b.json"
	load_after=$(cut -d' ' -f1 /proc/loadavg)
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	hwm=$(rss_kb VmHWM)
	peak_kb=$(sort -n "$work/rss.$b" | tail -n 1)
	[ "${hwm:-0}" -gt "${peak_kb:-0}" ] && peak_kb=$hwm
	jq --argjson peak "${peak_kb:-0}" --argjson perf "$perf_rate" --argjson l0 "$load_before" --argjson l1 "$load_after" \
		'. + {peak_rss_mb: ($peak / 1024), ratio_to_producer: (.events_per_sec / $perf), loadavg_1m: {before: $l0, after: $l1}}' \
		"$work/run.$b.json" >"$work/run.$b.full.json"
	runs+=("$work/run.$b.full.json")
done

mkdir -p "$out_dir"
cp "$work/collector.log" "$out_dir/collector.log" # warnings only: why a request got no 200
jq -s --arg host "$(hostname)" --argjson cpus "$(nproc)" --argjson env_bytes "$envelope_bytes" \
	--argjson ev_bytes "$event_bytes" --argjson perf "$perf_rate" --argjson perf_p50 "${perf_p50:-0}" \
	--argjson perf_p99 "${perf_p99:-0}" --argjson records "$records" --arg perf_line "$perf_line" \
	--argjson perf_load "$perf_load" --arg cenv "${FP_BENCH_COLLECTOR_ENV:-}" \
	--arg commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	'{host: $host, cpus: $cpus, commit: $commit, at: (now | todate), collector_env: $cenv, event_json_bytes: $ev_bytes, envelope_bytes: $env_bytes,
	  producer_baseline: {records: $records, record_bytes: $env_bytes, records_per_sec: $perf, p50_ms: $perf_p50, p99_ms: $perf_p99, loadavg_1m_before: $perf_load, raw: $perf_line},
	  collector: .}' "${runs[@]}" >"$out_dir/collector.json"

{
	printf '\nCollector ingest vs Kafka producer baseline (%s, %d cores; event %s B JSON, envelope %s B%s)\n' \
		"$(hostname)" "$(nproc)" "$event_bytes" "$envelope_bytes" "${FP_BENCH_COLLECTOR_ENV:+; collector env: $FP_BENCH_COLLECTOR_ENV}"
	printf '%-22s %12s %10s %10s %10s %14s %8s %6s\n' "run" "events/s" "p50 ms" "p99 ms" "RSS MB" "ratio to raw" "non-200" "load"
	printf '%-22s %12.0f %10s %10s %10s %14s %8s %6s\n' "kafka producer (raw)" "$perf_rate" "${perf_p50:-?}" "${perf_p99:-?}" "-" "1.00" "-" "$perf_load"
	for f in "${runs[@]}"; do
		jq -r '[("collector batch " + (.batch | tostring)), .events_per_sec, .latency.p50_ms, .latency.p99_ms, .peak_rss_mb, .ratio_to_producer,
			(.requests_sent - .requests_ok), .loadavg_1m.before] | @tsv' "$f" |
			awk -F'\t' '{printf "%-22s %12.0f %10.2f %10.2f %10.0f %14.2f %8d %6s\n", $1, $2, $3, $4, $5, $6, $7, $8}'
	done
	printf '\n(producer p50/p99: per-record latency; collector p50/p99: per request. load: 1-min load average\n'
	printf 'when the run started; other work on the machine skews the numbers.)\nJSON: %s\n' "$out_dir/collector.json"
	if [ "$(wc -l <"$out_dir/collector.log")" -gt 0 ]; then
		printf 'collector warnings: %d lines in %s\n' "$(wc -l <"$out_dir/collector.log")" "$out_dir/collector.log"
	fi
}
