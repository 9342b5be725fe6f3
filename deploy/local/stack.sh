#!/usr/bin/env bash
# Runs the six Firstparty services in the background against the servers
# started by servers.sh, and writes .local/demo.env for people and scripts.
#   deploy/local/stack.sh start   build, start every service, wait for /readyz
#   deploy/local/stack.sh stop    SIGTERM every service (they drain), wait
#   deploy/local/stack.sh status  one line per service
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
local_dir=${FP_LOCAL_DIR:-$root/.local}
run_dir=$local_dir/run
log_dir=$local_dir/logs
bin_dir=$root/bin

# service:port — the order is the pipeline's.
services=(collector:8080 validator:8081 stitcher:8082 segmenter:8083 loader:8084 api:8090)

pid_of() { cat "$run_dir/$1.pid" 2>/dev/null || true; }
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
ready() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$1/readyz"; }

secrets() {
	# Generated once per checkout and kept, so restarts keep working keys.
	local f=$local_dir/secrets.env
	if [ ! -f "$f" ]; then
		mkdir -p "$local_dir"
		umask 077
		{
			echo "FP_WRITE_KEY=fpw_$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
			echo "FP_ADMIN_KEY=fpa_$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		} >"$f"
	fi
	# The operator key (workspace *: creates and deletes workspaces, applies
	# the whole file); added to checkouts whose secrets predate it.
	grep -q '^FP_OPERATOR_KEY=' "$f" || (umask 077 && echo "FP_OPERATOR_KEY=fpo_$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')" >>"$f")
	# shellcheck disable=SC1090
	. "$f"
	# The demo workspace and its one source; the collector reloads this file
	# when it changes, so keys can be added or revoked while it runs.
	if [ ! -f "$local_dir/sources.yaml" ]; then
		cat >"$local_dir/sources.yaml" <<YAML
# Written once by deploy/local/stack.sh. The services read their configuration
# from the config topic (cdp.config); make up applies this file to it at every
# start, and so does: bin/fpctl apply -f .local/sources.yaml (FP_API_URL and
# FP_ADMIN_KEY=$FP_OPERATOR_KEY from .local/demo.env and .local/secrets.env).
workspaces:
  - id: demo
    name: Demo shop
    sources:
      - id: web
        name: Demo website
        write_keys: [$FP_WRITE_KEY]
    # Audiences (pkg/segments): the segmenter re-reads them when this file
    # changes and backfills a new one from current state.
    segments:
      - id: abandoned-cart
        version: 1
        name: Abandoned cart
        description: Added to cart, no order within the hour.
        condition: abandoned
        aggregates: {abandoned: {absence: {after: "Product Added", missing: "Order Completed", within: 1h}}}
      - id: shoe-fans
        version: 1
        name: Shoe fans
        description: Viewed three pairs of shoes within a week.
        condition: views >= 3
        aggregates: {views: {count: {event: "Product Viewed", where: 'properties.category == "Shoes"', within: 7d}}}
      - id: big-spenders
        version: 1
        name: Big spenders
        condition: revenue >= 500.0
        aggregates: {revenue: {sum: {event: "Order Completed", property: revenue, within: 90d}}}
      - id: pro-plan
        version: 1
        name: Pro plan
        condition: 'has(traits.plan) && traits.plan == "pro"'
      - id: multi-device
        version: 1
        name: Seen on two devices
        description: One person, two or more devices (the stitcher merged them).
        condition: 'identities.filter(i, i.startsWith("anonymous_id:")).size() >= 2'
      - id: refunded
        version: 1
        name: Refunded
        description: Had an order refunded in the last 30 days.
        condition: refunds >= 1
        aggregates: {refunds: {count: {event: "Order Refunded", within: 30d}}}
      # Short windows so a demo shows time-driven triggers within minutes
      # (make demo); production audiences use hours or days.
      - id: cart-left-1m
        version: 1
        name: Cart left for a minute
        description: Added to cart, no order within a minute.
        condition: left
        aggregates: {left: {absence: {after: "Product Added", missing: "Order Completed", within: 1m}}}
      - id: quiet-1m
        version: 1
        name: Quiet for a minute
        description: No event for a minute.
        condition: quiet
        aggregates: {quiet: {inactive: {within: 1m}}}
YAML
		# The lifecycle templates shipped with the segment language.
		for f in "$root"/pkg/segments/templates/*.yaml; do
			grep -v '^#' "$f" | sed -e '1s/^/      - /' -e '2,$s/^/        /'
		done >>"$local_dir/sources.yaml"
	fi
}

build() {
	echo "building services into bin/"
	mkdir -p "$bin_dir"
	for s in "${services[@]}"; do
		name=${s%%:*}
		(cd "$root/services/$name" && go build -o "$bin_dir/$name" .)
	done
	(cd "$root/services/fpctl" && go build -o "$bin_dir/fpctl" .)
}

start() {
	[ -f "$local_dir/servers.env" ] || { echo "servers are not started: run deploy/local/servers.sh start first" >&2; exit 1; }
	set -a
	# shellcheck disable=SC1091
	. "$local_dir/servers.env"
	set +a
	secrets
	build
	mkdir -p "$run_dir" "$log_dir"
	for s in "${services[@]}"; do
		name=${s%%:*} port=${s##*:}
		if alive "$name"; then
			echo "$name already running (pid $(pid_of "$name"))"
			continue
		fi
		# gRPC faces: the collector's ingest on 8085, the admin API on 8091.
		grpc=
		case $name in collector) grpc=127.0.0.1:8085 ;; api) grpc=127.0.0.1:8091 ;; esac
		FP_HTTP_ADDR=127.0.0.1:$port FP_LOG_FORMAT=${FP_LOG_FORMAT:-json} \
			FP_CONFIG_SOURCE=topic FP_SOURCES_FILE=$local_dir/sources.yaml FP_GRPC_ADDR=$grpc \
			FP_ADMIN_KEYS="$FP_ADMIN_KEY=demo,$FP_OPERATOR_KEY=*" \
			nohup "$bin_dir/$name" >>"$log_dir/$name.log" 2>&1 &
		echo $! >"$run_dir/$name.pid"
	done
	for s in "${services[@]}"; do
		name=${s%%:*} port=${s##*:}
		printf 'waiting for %s /readyz ' "$name"
		for _ in $(seq 1 120); do
			if ready "$port"; then echo ok; continue 2; fi
			if ! alive "$name"; then
				echo "FAILED: $name exited; last log lines:" >&2
				tail -n 20 "$log_dir/$name.log" >&2
				exit 1
			fi
			printf .
			sleep 0.5
		done
		echo "FAILED: $name not ready after 60 s; last log lines:" >&2
		tail -n 20 "$log_dir/$name.log" >&2
		exit 1
	done
	# The services follow the config topic (the API seeded an empty one from
	# the file); the file is its GitOps copy, applied at every start, which
	# changes nothing when nothing in it changed.
	local applied
	if ! applied=$(FP_API_URL=http://127.0.0.1:8090 FP_ADMIN_KEY=$FP_OPERATOR_KEY "$bin_dir/fpctl" apply -f "$local_dir/sources.yaml" 2>&1); then
		echo "FAILED: applying .local/sources.yaml to the config topic:" >&2
		echo "$applied" >&2
		exit 1
	fi
	echo "configuration: .local/sources.yaml applied to the config topic cdp.config"
	echo "$applied" | sed 's/^/  /'
	{
		echo "# Written by deploy/local/stack.sh start; source it: set -a; . .local/demo.env; set +a"
		echo "FP_COLLECTOR_URL=http://127.0.0.1:8080"
		echo "FP_WRITE_KEY=$FP_WRITE_KEY"
		echo "FP_API_URL=http://127.0.0.1:8090"
		echo "FP_ADMIN_KEY=$FP_ADMIN_KEY"
		echo "FP_OPERATOR_KEY=$FP_OPERATOR_KEY"
		grep -E '^FP_(KAFKA_BROKERS|REDIS_ADDR|CLICKHOUSE_ADDR|CLICKHOUSE_HTTP)=' "$local_dir/servers.env"
	} >"$local_dir/demo.env"
	echo
	echo "Firstparty is up. Connection details (.local/demo.env):"
	sed -n '2,$p' "$local_dir/demo.env" | sed 's/^/  /'
	echo "Logs: .local/logs/<service>.log   Health: curl http://127.0.0.1:<port>/readyz   Stop: make down"
	smoke
}

# smoke sends a first identify and track through the collector, as any
# Segment SDK would, so a person sees the pipeline accept traffic. Each run
# has its own buyer: a second order of one buyer would (rightly) take them
# out of lifecycle-first-purchase, so make up could not be run again.
smoke() {
	echo
	echo "Sending a first identify + track through the collector:"
	local out user device
	user=demo-user-$(date +%s) device=demo-device-$(date +%s)
	out=$(curl -sS -u "$FP_WRITE_KEY:" -H 'Content-Type: application/json' http://127.0.0.1:8080/v1/batch -d '{
	  "batch": [
	    {"type": "identify", "anonymousId": "'"$device"'", "userId": "'"$user"'", "traits": {"email": "ada@example.com", "plan": "pro"}},
	    {"type": "track", "anonymousId": "'"$device"'", "userId": "'"$user"'", "event": "Order Completed", "properties": {"revenue": 42.5, "currency": "EUR"}}
	  ]}')
	echo "  POST /v1/batch → $out"
	# Collector → validator → stitcher → Redis, read back through the API.
	for _ in $(seq 1 40); do
		if out=$(curl -fs -H "Authorization: Bearer $FP_ADMIN_KEY" http://127.0.0.1:8090/v1/profiles/user_id:$user); then
			echo "  GET  /v1/profiles/user_id:$user → $out"
			break
		fi
		sleep 0.25
	done
	[ -n "$out" ] || { echo "  the profile did not appear within 10 s: see .local/logs/" >&2; return 1; }
	# … and the segmenter put the buyer in the first-purchase audience.
	grep -q 'lifecycle-first-purchase' "$local_dir/sources.yaml" || return 0
	for _ in $(seq 1 40); do
		if curl -fs -H "Authorization: Bearer $FP_ADMIN_KEY" http://127.0.0.1:8090/v1/profiles/user_id:$user | grep -q '"lifecycle-first-purchase"'; then
			echo "  segments now: $(curl -fs -H "Authorization: Bearer $FP_ADMIN_KEY" http://127.0.0.1:8090/v1/profiles/user_id:$user | jq -c .segments 2>/dev/null)"
			return 0
		fi
		sleep 0.25
	done
	echo "  the profile did not enter lifecycle-first-purchase within 10 s: see .local/logs/segmenter.log" >&2
	return 1
}

stop() {
	for s in "${services[@]}"; do
		name=${s%%:*}
		if alive "$name"; then kill -TERM "$(pid_of "$name")"; fi
	done
	for s in "${services[@]}"; do
		name=${s%%:*}
		for _ in $(seq 1 60); do alive "$name" || break; sleep 0.5; done
		if alive "$name"; then
			echo "$name did not stop in 30 s; killing" >&2
			kill -KILL "$(pid_of "$name")" 2>/dev/null || true
		fi
		rm -f "$run_dir/$name.pid"
		echo "$name stopped"
	done
}

status() {
	for s in "${services[@]}"; do
		name=${s%%:*} port=${s##*:}
		if alive "$name" && ready "$port"; then echo "$name: ready (pid $(pid_of "$name"), :$port)"
		elif alive "$name"; then echo "$name: running, NOT ready (:$port)"
		else echo "$name: stopped"; fi
	done
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
build) build ;;
*) echo "usage: $0 {start|stop|status|build}" >&2; exit 2 ;;
esac
