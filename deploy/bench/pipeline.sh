#!/usr/bin/env bash
# Benchmarks the whole pipeline on one machine: the collector, validator,
# stitcher, segmenter and loader binaries run against the local Kafka, Redis
# and ClickHouse, with a benchmark workspace of 50 active segments, and
# tools/pipebench drives them through the collector at increasing rates.
# Per rate it reports event → resolved, event → segment trigger and
# event → ClickHouse row latency (p50/p99 from the moment the request was
# posted), each stage's throughput, segment evaluations/s, and each
# service's peak RSS.
#
#   deploy/bench/pipeline.sh            (make bench-pipeline)
#
# Writes .local/bench/pipeline.json (under FP_LOCAL_DIR when set) and prints
# a table. Everything runs under a unique prefix (topics, consumer groups,
# database, workspace) and is removed at the end, so it does not disturb a
# running `make up`. Takes about 3 minutes with the defaults.
#
# Knobs (environment): FP_BENCH_RATES ("1000,5000"), FP_BENCH_SECONDS (30 per
# rate), FP_BENCH_WARMUP (20: seconds at the first rate before the steps,
# uncounted, so the shop's devices have been seen once), FP_BENCH_DRAIN (60: longest wait in s after a rate for its last
# probes), FP_BENCH_SEGMENTS (50), FP_BENCH_PARTITIONS (6), FP_BENCH_BATCH (10
# events per request), FP_BENCH_PROBE_EVERY (20), FP_BENCH_STAGE_ENV (extra
# NAME=VALUE words for the validator, stitcher and segmenter, for A/B runs:
# "FP_CONSUMER_BATCH_WAIT=5ms FP_KAFKA_BATCH_TIMEOUT=1ms"), FP_BENCH_ENV (the
# same for all five services, e.g. "FP_KAFKA_COMPRESSION=none"; the stages' own
# win over it), FP_BENCH_OUT (the
# result's path instead of .local/bench/pipeline.json).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rates=${FP_BENCH_RATES:-1000,5000}
seconds=${FP_BENCH_SECONDS:-30}
warmup=${FP_BENCH_WARMUP:-20}
nsegments=${FP_BENCH_SEGMENTS:-50}
partitions=${FP_BENCH_PARTITIONS:-6}
batch=${FP_BENCH_BATCH:-10}
probe_every=${FP_BENCH_PROBE_EVERY:-20}
# After each rate, wait up to this long for its last probes, so a step the
# pipeline could not keep up with does not leave its backlog to the next.
drain=${FP_BENCH_DRAIN:-60}
local_dir=${FP_LOCAL_DIR:-$root/.local}
out_dir=$local_dir/bench
# FP_BENCH_OUT: where pipeline.json goes (A/B runs keep each result).
out_file=${FP_BENCH_OUT:-$out_dir/pipeline.json}

die() { echo "pipeline.sh: $*" >&2; exit 1; }
log() { printf '\n== %s\n' "$*" >&2; }
command -v jq >/dev/null || die "needs jq (apt-get install -y jq)"
command -v go >/dev/null || die "needs go"

"$root/deploy/local/servers.sh" start >&2
set -a
# shellcheck disable=SC1091
. "$local_dir/servers.env"
set +a

work=$(mktemp -d "${TMPDIR:-/tmp}/fp-pipebench.XXXXXX")
id=pb$(date +%s)$$
prefix=$id.
ws=bench-$id
db=bench_$id
write_key=fpw_bench_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
services=(collector:18180 validator:18181 stitcher:18182 segmenter:18183 loader:18184)
declare -A pids=()

cleanup() {
	local rc=$?
	for s in "${services[@]}"; do
		p=${pids[${s%%:*}]:-}
		[ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
	done
	for s in "${services[@]}"; do
		p=${pids[${s%%:*}]:-}
		[ -n "$p" ] || continue
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$p" 2>/dev/null || true
	done
	if [ "$rc" -ne 0 ]; then
		for s in "${services[@]}"; do
			echo "--- ${s%%:*} log (last lines)" >&2
			tail -n 8 "$work/${s%%:*}.log" 2>/dev/null >&2 || true
		done
	fi
	# Leave nothing behind: topics, database, Redis keys of the workspace.
	"$work/fpbench-cleanup" 2>/dev/null || true
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT

log "building the services and pipebench"
"$root/deploy/local/stack.sh" build >&2
(cd "$root/tools" && go build -o "$work/pipebench" ./pipebench)

# The benchmark workspace: a toggle segment that flips with every probe (so
# each probe causes one transition), the lifecycle templates, and
# realistic audiences over the shop's events to make up FP_BENCH_SEGMENTS.
{
	echo "workspaces:"
	echo "  - id: $ws"
	echo "    sources:"
	echo "      - {id: web, write_keys: [$write_key], rate_limit: {events_per_second: 1000000, burst: 1000000}}"
	echo "    segments:"
	echo "      - {id: bench-toggle, version: 1, name: Toggle, condition: 'toggles % 2 == 1', aggregates: {toggles: {count: {event: \"Bench Toggle\"}}}}"
	n=1
	for f in "$root"/pkg/segments/templates/*.yaml; do
		grep -v '^#' "$f" | sed -e '1s/^/      - /' -e '2,$s/^/        /'
		n=$((n + 1))
	done
	categories=(audio video computers phones cameras gaming home books)
	i=0
	while [ "$n" -lt "$nsegments" ]; do
		c=${categories[$((i % ${#categories[@]}))]}
		case $((i % 5)) in
		0) echo "      - {id: views-$c-$i, version: 1, name: 'Viewed $c', condition: 'views >= 3', aggregates: {views: {count: {event: \"Product Viewed\", where: 'properties.category == \"$c\"', within: 7d}}}}" ;;
		1) echo "      - {id: carts-$c-$i, version: 1, name: 'Carted $c', condition: 'carts >= 1 && orders == 0', aggregates: {carts: {count: {event: \"Product Added\", where: 'properties.category == \"$c\"', within: 24h}}, orders: {count: {event: \"Order Completed\", within: 24h}}}}" ;;
		2) echo "      - {id: spend-$i, version: 1, name: 'Spent $((i * 20))', condition: 'revenue >= $((i * 20)).0', aggregates: {revenue: {sum: {event: \"Order Completed\", property: revenue, within: 90d}}}}" ;;
		3) echo "      - {id: abandoned-$i, version: 1, name: 'Abandoned $i', condition: 'gone', aggregates: {gone: {absence: {after: \"Product Added\", missing: \"Order Completed\", within: $((30 + i))m}}}}" ;;
		4) echo "      - {id: pages-$i, version: 1, name: 'Browsers $i', condition: 'pages >= $((i % 7 + 2)) && has(traits.email)', aggregates: {pages: {count: {type: page, within: 1h}}}}" ;;
		esac
		i=$((i + 1))
		n=$((n + 1))
	done
} >"$work/workspaces.yaml"

cat >"$work/fpbench-cleanup" <<EOF
#!/usr/bin/env bash
java -Xmx256m -Dkafka.logs.dir=/tmp -Dlog4j2.configurationFile="$root/deploy/local/kafka/log4j2.xml" -cp "$FP_KAFKA_LIBS/*" org.apache.kafka.tools.TopicCommand \
  --bootstrap-server "$FP_KAFKA_BROKERS" --delete --topic "${prefix//./\\.}.*" >/dev/null 2>&1 || true
curl -fsS "$FP_CLICKHOUSE_HTTP/" --data-binary "DROP DATABASE IF EXISTS $db" >/dev/null || true
redis-cli -u "redis://${FP_REDIS_ADDR}" --scan --pattern 'fp:{$ws}:*' | xargs -r -n 500 redis-cli -u "redis://${FP_REDIS_ADDR}" DEL >/dev/null || true
EOF
chmod +x "$work/fpbench-cleanup"

log "starting the pipeline (prefix $prefix, $nsegments segments, $partitions partitions)"
for s in "${services[@]}"; do
	name=${s%%:*} port=${s##*:}
	# FP_BENCH_ENV for every service, then the stages' own (the later wins).
	read -r -a extra <<<"${FP_BENCH_ENV:-}"
	stage=()
	case $name in validator | stitcher | segmenter) read -r -a stage <<<"${FP_BENCH_STAGE_ENV:-}" ;; esac
	extra+=("${stage[@]}")
	env "${extra[@]}" FP_HTTP_ADDR=127.0.0.1:$port FP_LOG_FORMAT=json FP_DEBUG_PPROF=true FP_GRPC_ADDR= FP_SOURCES_FILE="$work/workspaces.yaml" \
		FP_KAFKA_PARTITIONS="$partitions" FP_CONSUMER_GROUP="$id-$name" FP_CLICKHOUSE_DATABASE="$db" \
		FP_TOPIC_RAW="${prefix}cdp.events.raw" FP_TOPIC_VALID="${prefix}cdp.events.valid" FP_TOPIC_INVALID="${prefix}cdp.events.invalid" \
		FP_TOPIC_RESOLVED="${prefix}cdp.events.resolved" FP_TOPIC_PROFILES="${prefix}cdp.profiles.changes" \
		FP_TOPIC_MEMBERSHIP="${prefix}cdp.segments.membership" FP_TOPIC_TIMERS="${prefix}cdp.segments.timers" \
		FP_TOPIC_WEBHOOKS_DEAD="${prefix}cdp.segments.webhooks.dead" \
		"$root/bin/$name" >"$work/$name.log" 2>&1 &
	pids[$name]=$!
done
for s in "${services[@]}"; do
	name=${s%%:*} port=${s##*:}
	for _ in $(seq 1 120); do
		curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port/readyz" && continue 2
		kill -0 "${pids[$name]}" 2>/dev/null || die "$name exited: $(tail -n 5 "$work/$name.log")"
		sleep 0.5
	done
	die "$name not ready after 60 s"
done

metrics=""
for s in "${services[@]}"; do metrics="$metrics${metrics:+,}${s%%:*}=http://127.0.0.1:${s##*:}/metrics"; done
# CPU per step: the five services, and the servers found by their
# listening ports (absent from the table when ss cannot name them).
cpu=""
for s in "${services[@]}"; do cpu="$cpu${cpu:+,}${s%%:*}=${pids[${s%%:*}]}"; done
listener() { ss -ltnpH "sport = :${1##*:}" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2; }
for srv in kafka:"${FP_KAFKA_BROKERS%%,*}" redis:"$FP_REDIS_ADDR" clickhouse:"$FP_CLICKHOUSE_ADDR"; do
	p=$(listener "${srv#*:}")
	[ -n "$p" ] && cpu="$cpu,${srv%%:*}=$p"
done
log "driving ${rates} events/s for ${seconds} s each"
"$work/pipebench" -url http://127.0.0.1:18180 -write-key "$write_key" -brokers "$FP_KAFKA_BROKERS" \
	-topic.resolved "${prefix}cdp.events.resolved" -topic.membership "${prefix}cdp.segments.membership" \
	-clickhouse "$FP_CLICKHOUSE_HTTP" -clickhouse.database "$db" \
	-rates "$rates" -duration "${seconds}s" -warmup "${warmup}s" -drain "${drain}s" -batch "$batch" -probe-every "$probe_every" -metrics "$metrics" -cpu "$cpu" >"$work/result.json"

rss='{}'
for s in "${services[@]}"; do
	name=${s%%:*}
	kb=$(awk '/VmHWM/ {print $2}' "/proc/${pids[$name]}/status" 2>/dev/null || echo 0)
	rss=$(jq --arg n "$name" --argjson kb "${kb:-0}" '. + {($n): ($kb / 1024 | floor)}' <<<"$rss")
done
mkdir -p "$(dirname "$out_file")"
jq --argjson rss "$rss" --arg segments "$nsegments" --arg partitions "$partitions" --arg host "$(nproc) cores" \
	'. + {peak_rss_mb: $rss, segments: ($segments|tonumber), partitions: ($partitions|tonumber), host: $host}' \
	"$work/result.json" >"$out_file"

log "result ($out_file)"
jq -r '
  ["rate/s", "achieved/s", "→resolved p50/p99 ms", "→trigger p50/p99 ms", "→row p50/p99 ms", "missing", "new profiles", "evals/s", "validator/s", "stitcher/s", "segmenter/s", "loader/s"],
  (.steps[] | [ .target_rate, (.achieved_rate|floor),
     "\(.collector_to_resolved.p50_ms)/\(.collector_to_resolved.p99_ms)",
     "\(.collector_to_trigger.p50_ms)/\(.collector_to_trigger.p99_ms)",
     "\(.collector_to_clickhouse_row.p50_ms)/\(.collector_to_clickhouse_row.p99_ms)",
     (.collector_to_trigger.missing + .collector_to_resolved.missing),
     "\((.new_profile_share // 0) * 1000 | round / 10)%",
     (.segment_evaluations_per_s|floor), (.throughput_per_s.validator|floor), (.throughput_per_s.stitcher|floor),
     (.throughput_per_s.segmenter|floor), (.throughput_per_s.loader|floor) ])
  | @tsv' "$out_file" | column -t -s $'\t'
jq -r '.steps[] | "cpu cores at \(.target_rate)/s: " + ([.cpu_cores // {} | to_entries[] | "\(.key) \(.value * 100 | round / 100)"] | join(", ")) + "; total \([.cpu_cores // {} | .[]] | add // 0 | . * 100 | round / 100)"' "$out_file"
echo "peak RSS (MB): $(jq -c .peak_rss_mb "$out_file")"
