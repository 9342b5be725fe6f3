#!/usr/bin/env bash
# Installs and runs the real servers Firstparty needs — Kafka 4.1.1 (KRaft),
# Redis and ClickHouse — on loopback, without Docker.
#
#   deploy/local/servers.sh install [kafka|redis|clickhouse ...]  apt-get + Maven Central, cached
#   deploy/local/servers.sh start   [...]  install, start, wait until each answers
#   deploy/local/servers.sh stop    [...]  SIGTERM (SIGKILL after FP_STOP_TIMEOUT); FP_WIPE=1 also wipes
#   deploy/local/servers.sh wipe    [...]  stop and delete the data
#   deploy/local/servers.sh status  [...]  one line per server; exit 1 if one does not answer
#   deploy/local/servers.sh env            FP_* addresses as shell assignments
# No names means all three.
#
# Data, logs and pid files: $FP_LOCAL_DIR (default <repo>/.local)/{kafka,redis,clickhouse}.
# Downloads: $FP_CACHE_DIR (default ~/.cache/firstparty), shared by every checkout;
# installing clickhouse also installs chDB (a current ClickHouse engine, PyPI)
# into a virtualenv there, for the tests (FP_CHDB_PYTHON).
# Ports: FP_KAFKA_PORT (19092), FP_KAFKA_CONTROLLER_PORT (19093), FP_REDIS_PORT
# (16379), FP_CLICKHOUSE_PORT (19000), FP_CLICKHOUSE_HTTP_PORT (18123) — away
# from the defaults so a system Redis/ClickHouse or a Docker stack does not clash.
# shellcheck disable=SC2317 # launch_* and *_ready are called by name ("launch_$s")
set -euo pipefail

KAFKA_VERSION=4.1.1 # keep in step with deploy/local/kafka/pom.xml
# chDB embeds a current ClickHouse (4.4.0: ClickHouse 26.9) in a Python
# module from PyPI: the tests run the loader's schema and the SQL cookbook on
# it as well as on Debian's 18.16 server, so both stay true without Docker.
CHDB_VERSION=4.4.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$root/deploy/local
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
cache_dir=$(abs "${FP_CACHE_DIR:-$HOME/.cache/firstparty}")
local_dir=$(abs "${FP_LOCAL_DIR:-$root/.local}")

kafka_port=${FP_KAFKA_PORT:-19092}
kafka_controller_port=${FP_KAFKA_CONTROLLER_PORT:-19093}
redis_port=${FP_REDIS_PORT:-16379}
ch_port=${FP_CLICKHOUSE_PORT:-19000}
ch_http_port=${FP_CLICKHOUSE_HTTP_PORT:-18123}
start_timeout=${FP_START_TIMEOUT:-60}
stop_timeout=${FP_STOP_TIMEOUT:-30}

kafka_home=$cache_dir/kafka-$KAFKA_VERSION
chdb_home=$cache_dir/chdb-$CHDB_VERSION
kafka_libs=$kafka_home/libs
kafka_dir=$local_dir/kafka
redis_dir=$local_dir/redis
ch_dir=$local_dir/clickhouse

all_servers=(kafka redis clickhouse)
java=""

die() { echo "servers.sh: $*" >&2; exit 1; }

usage() {
	sed -n '5,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

# ---------------------------------------------------------------- install

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# find_java prints a java binary of version 17 or newer (Kafka 4 needs 17).
find_java() {
	local j v
	for j in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java || true)" /usr/lib/jvm/java-17-openjdk-*/bin/java; do
		if [ -z "$j" ] || [ ! -x "$j" ]; then continue; fi
		v=$("$j" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
		if [ "${v%%.*}" -ge 17 ] 2>/dev/null; then
			printf '%s\n' "$j"
			return 0
		fi
	done
	return 1
}

apt_install() {
	local missing=() p policy=/usr/sbin/policy-rc.d added="" rc=0
	for p in "$@"; do deb_installed "$p" || missing+=("$p"); done
	[ ${#missing[@]} -gt 0 ] || return 0
	echo "installing Debian packages: ${missing[*]}"
	# The redis-server and clickhouse-server postinst scripts start the system
	# services (on 6379, 9000/8123/9009). We do not want them — our own
	# instances run on other ports — and on a machine without an init system
	# `invoke-rc.d … || exit 1` can fail the whole install. A policy-rc.d that
	# answers 101 ("action forbidden") makes them skip the start; it is only
	# ours while apt-get runs (Docker images usually ship one already).
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
		as_root chmod 755 "$policy"
		added=1
	fi
	as_root apt-get update -qq >/dev/null &&
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		rc=$?
	[ -z "$added" ] || as_root rm -f "$policy"
	[ "$rc" -eq 0 ] || die "apt-get install ${missing[*]} failed (exit $rc)"
}

install_kafka() {
	local marker=$kafka_home/.complete partial=$kafka_home/libs.partial want
	# The marker is written last, so an interrupted download is redone from
	# scratch; it holds the pom's checksum, so editing the pom refreshes libs/.
	want=$(sha256sum "$here/kafka/pom.xml" | cut -d' ' -f1)
	[ "$(cat "$marker" 2>/dev/null)" = "$want" ] && return 0
	echo "installing kafka $KAFKA_VERSION jars from Maven Central (~54 MB) into $kafka_libs"
	rm -rf "$partial"
	mkdir -p "$kafka_home"
	# Own local repository in the cache: one directory holds everything we
	# downloaded, and a user's ~/.m2 settings or contents play no part.
	# Output to a file: even with -q, Maven 3.8 sprinkles ANSI resets on stdout.
	if ! mvn -q -B -f "$here/kafka/pom.xml" -Dmaven.repo.local="$cache_dir/m2" \
		dependency:copy-dependencies -DoutputDirectory="$partial" >"$kafka_home/mvn.log" 2>&1; then
		tail -n 40 "$kafka_home/mvn.log" >&2
		die "mvn could not fetch the kafka $KAFKA_VERSION jars (log: $kafka_home/mvn.log)"
	fi
	if [ ! -f "$partial/kafka_2.13-$KAFKA_VERSION.jar" ] || [ ! -f "$partial/kafka-tools-$KAFKA_VERSION.jar" ]; then
		die "mvn finished but $partial lacks the kafka jars"
	fi
	# Swapped in whole: a broker already running from libs/ keeps its open
	# jars, and libs/ is never seen half-filled.
	rm -rf "$kafka_libs"
	mv "$partial" "$kafka_libs"
	echo "kafka $KAFKA_VERSION: $(find "$kafka_libs" -name '*.jar' | wc -l) jars, $(du -sh "$kafka_libs" | cut -f1)"
	echo "$want" >"$marker"
}

# install_chdb puts chDB into its own virtualenv in the cache (the marker is
# written last, so an interrupted install is redone).
install_chdb() {
	local marker=$chdb_home/.complete py
	[ -f "$marker" ] && return 0
	py=$(command -v python3) || die "chDB needs python3"
	echo "installing chDB $CHDB_VERSION (a current ClickHouse engine) from PyPI into $chdb_home"
	rm -rf "$chdb_home"
	if ! "$py" -m venv "$chdb_home" >/dev/null 2>&1; then
		rm -rf "$chdb_home"
		apt_install python3-venv
		"$py" -m venv "$chdb_home" || die "python3 -m venv $chdb_home failed"
	fi
	if ! "$chdb_home/bin/pip" install -q --disable-pip-version-check "chdb==$CHDB_VERSION" >"$chdb_home/pip.log" 2>&1; then
		tail -n 20 "$chdb_home/pip.log" >&2
		die "pip could not install chdb==$CHDB_VERSION (log: $chdb_home/pip.log)"
	fi
	"$chdb_home/bin/python" -c 'import chdb; print("chDB", chdb.__version__, "= ClickHouse", chdb.query("SELECT version()", "TSVRaw").bytes().decode().strip())' ||
		die "chdb installed but does not run"
	touch "$marker"
}

cmd_install() {
	local pkgs=() s
	for s in "$@"; do
		case $s in
		kafka)
			find_java >/dev/null || pkgs+=(openjdk-17-jre-headless)
			command -v mvn >/dev/null || pkgs+=(maven)
			pkgs+=(kcat)
			;;
		redis) pkgs+=(redis-server redis-tools) ;;
		clickhouse) pkgs+=(clickhouse-server clickhouse-client curl) ;;
		esac
	done
	apt_install "${pkgs[@]}"
	if has kafka "$@"; then
		java=$(find_java) || die "no java 17+ found even after installing openjdk-17-jre-headless"
		mkdir -p "$cache_dir"
		# Two checkouts installing at once must not download into the same directory.
		exec 8>"$cache_dir/.install.lock"
		flock 8
		install_kafka
		exec 8>&-
	fi
	if has clickhouse "$@"; then
		mkdir -p "$cache_dir"
		exec 8>"$cache_dir/.install.lock"
		flock 8
		install_chdb
		exec 8>&-
	fi
}

# ---------------------------------------------------------------- processes

has() {
	local want=$1 s
	shift
	for s in "$@"; do [ "$s" = "$want" ] && return 0; done
	return 1
}

pidfile() {
	case $1 in
	kafka) echo "$kafka_dir/kafka.pid" ;;
	redis) echo "$redis_dir/redis.pid" ;;
	clickhouse) echo "$ch_dir/clickhouse.pid" ;;
	esac
}

logfile() {
	case $1 in
	kafka) echo "$kafka_dir/logs/server.log" ;;
	redis) echo "$redis_dir/redis.log" ;;
	clickhouse) echo "$ch_dir/logs/clickhouse-server.log" ;;
	esac
}

# A pid file can outlive its process, and the pid be reused; only a process
# whose command line carries this checkout's marker is ours to wait on or kill.
marker() {
	case $1 in
	kafka) echo "$kafka_dir/server.properties" ;;
	redis) echo "redis-server" ;; # redis rewrites its argv to "redis-server 127.0.0.1:port"
	clickhouse) echo "$ch_dir/config.xml" ;;
	esac
}

# own_pid prints the pid of the running server this checkout started.
own_pid() {
	local pid
	pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	{ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$(marker "$1")" || return 1
	printf '%s\n' "$pid"
}

# gone: no such process, or a zombie nobody reaps (PID 1 in some containers does not).
gone() {
	[ -e "/proc/$1" ] || return 0
	[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" = Z ]
}

# spawn PIDFILE OUTFILE CMD... starts CMD in the background in its own
# session, so a Ctrl-C in the calling terminal or the end of a CI step does not
# take the server down with this script. The wrapper writes its own pid and
# then execs, so the pid file holds the server's pid.
spawn() {
	local pf=$1 out=$2
	shift 2
	rm -f "$pf"
	# shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
	setsid sh -c 'echo $$ >"$0"; exec "$@"' "$pf" "$@" </dev/null >>"$out" 2>&1 &
	local i
	for i in $(seq 50); do
		[ -s "$pf" ] && return 0
		sleep 0.1
	done
	die "could not start $3"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

kafka_ready() {
	port_open "$kafka_port" || return 1
	# A metadata answer means the broker is registered with the controller
	# and unfenced: an open port alone comes earlier.
	if command -v kcat >/dev/null; then
		kcat -b "127.0.0.1:$kafka_port" -L -m 3 >/dev/null 2>&1
	else
		[ -n "$java" ] || java=$(find_java) || return 1
		"$java" -cp "$kafka_libs/*" org.apache.kafka.tools.BrokerApiVersionsCommand \
			--bootstrap-server "127.0.0.1:$kafka_port" >/dev/null 2>&1
	fi
}

redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = PONG ]; }

clickhouse_ready() {
	[ "$(curl -fsS --max-time 3 "http://127.0.0.1:$ch_http_port/ping" 2>/dev/null)" = "Ok." ] &&
		clickhouse-client --host 127.0.0.1 --port "$ch_port" -q 'SELECT 1' >/dev/null 2>&1
}

ready() { "$1_ready"; }

where() {
	case $1 in
	kafka) echo "127.0.0.1:$kafka_port" ;;
	redis) echo "127.0.0.1:$redis_port" ;;
	clickhouse) echo "127.0.0.1:$ch_port (http :$ch_http_port)" ;;
	esac
}

# ---------------------------------------------------------------- start

launch_kafka() {
	local props=$kafka_dir/server.properties out
	mkdir -p "$kafka_dir/data" "$kafka_dir/logs"
	# Regenerated on every start so a port change takes effect; the identity
	# of the node (cluster id, node id) lives in data/meta.properties.
	cat >"$props" <<EOF
# Generated by deploy/local/servers.sh on each start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$kafka_controller_port
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$kafka_controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$kafka_dir/data
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Topics are created explicitly (pkg/topics), never by a typo in a client.
auto.create.topics.enable=false
# Benchmarks write gigabytes; a day of data is plenty on a dev box.
log.retention.hours=24
# One broker on a small box: a network thread and two request handlers
# (defaults 3 and 8) hand requests over less; on the 2-core box Kafka used
# 0.26-0.29 cores instead of 0.34-0.35 at 2,000 events/s through the
# pipeline (deploy/bench/pipeline.sh, A/B in README's Performance section).
num.network.threads=1
num.io.threads=2
EOF
	if [ ! -f "$kafka_dir/data/meta.properties" ]; then
		local id
		id=$("$java" -cp "$kafka_libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
		echo "kafka: formatting storage (cluster id $id)"
		# controller.quorum.voters is set, so no --standalone (that is for a dynamic quorum).
		out=$("$java" -cp "$kafka_libs/*" -Dkafka.logs.dir="$kafka_dir/logs" \
			-Dlog4j2.configurationFile="$here/kafka/log4j2.xml" \
			kafka.tools.StorageTool format -t "$id" -c "$props" 2>&1) ||
			{ echo "$out" >&2; die "kafka: formatting storage failed"; }
	fi
	echo "kafka: starting on 127.0.0.1:$kafka_port (controller :$kafka_controller_port)"
	spawn "$(pidfile kafka)" "$kafka_dir/logs/kafka.out" \
		"$java" -Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
		-Djava.awt.headless=true -Dkafka.logs.dir="$kafka_dir/logs" \
		-Dlog4j2.configurationFile="$here/kafka/log4j2.xml" \
		-cp "$kafka_libs/*" kafka.Kafka "$props"
}

launch_redis() {
	mkdir -p "$redis_dir"
	rm -f "$(pidfile redis)"
	echo "redis: starting on 127.0.0.1:$redis_port"
	# --daemonize: redis forks and writes its own pid file; no wrapper needed.
	# The pipeline writes about 2.5 kB of append-only file an event (segment
	# state, idempotency markers, dedup); with the default rewrite threshold
	# (100%) Redis forked a rewrite of the whole dataset every ~20 s at
	# 4,000 events/s, ~6 s of a core each, on a box with no core to spare:
	# trigger p99 1.9-2.7 s instead of 0.5 s. The file may now grow to five
	# times the dataset (at least 1 GB) before it is rewritten: more disk and
	# a longer replay after a crash, for a fifth of the rewrites.
	redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly yes \
		--auto-aof-rewrite-percentage 400 --auto-aof-rewrite-min-size 1gb \
		--dir "$redis_dir" --daemonize yes --pidfile "$(pidfile redis)" \
		--logfile "$(logfile redis)" </dev/null >/dev/null
}

launch_clickhouse() {
	mkdir -p "$ch_dir/data" "$ch_dir/logs"
	local esc
	esc=$(printf '%s' "$ch_dir" | sed 's/[\\|&]/\\&/g')
	sed -e "s|@DIR@|$esc|g" -e "s|@TCP_PORT@|$ch_port|g" -e "s|@HTTP_PORT@|$ch_http_port|g" \
		"$here/clickhouse/config.xml.in" >"$ch_dir/config.xml"
	cp "$here/clickhouse/users.xml" "$ch_dir/users.xml"
	echo "clickhouse: starting on 127.0.0.1:$ch_port (http :$ch_http_port)"
	# Runs as root without complaint (18.16 has no owner check); every path
	# it writes is under $ch_dir, so the package's clickhouse user is unused.
	spawn "$(pidfile clickhouse)" "$ch_dir/logs/stdout.log" \
		clickhouse-server --config-file="$ch_dir/config.xml"
}

wait_ready() {
	local s=$1 t0=$SECONDS log
	log=$(logfile "$s")
	while :; do
		if ready "$s"; then
			echo "$s: answering on $(where "$s") after $((SECONDS - t0)) s"
			return 0
		fi
		# Redis daemonizes, so its pid file may lag the command by a moment.
		if ! own_pid "$s" >/dev/null && { [ -f "$(pidfile "$s")" ] || [ $((SECONDS - t0)) -ge 5 ]; }; then
			echo "$s: FAILED: the process exited during start; last lines of $log:" >&2
			break
		fi
		if [ $((SECONDS - t0)) -ge "$start_timeout" ]; then
			echo "$s: FAILED: not answering on $(where "$s") after $start_timeout s; last lines of $log:" >&2
			break
		fi
		sleep 0.3
	done
	tail -n 30 "$log" >&2 2>/dev/null || true
	if [ "$s" = kafka ]; then tail -n 20 "$kafka_dir/logs/kafka.out" >&2 2>/dev/null || true; fi
	if [ "$s" = clickhouse ]; then tail -n 20 "$ch_dir/logs/clickhouse-server.err.log" >&2 2>/dev/null || true; fi
	return 1
}

write_env() {
	mkdir -p "$local_dir"
	cmd_env >"$local_dir/servers.env.tmp"
	mv "$local_dir/servers.env.tmp" "$local_dir/servers.env"
}

cmd_start() {
	cmd_install "$@"
	local s pid waiting=() failed=0
	for s in "$@"; do
		if ready "$s"; then
			if pid=$(own_pid "$s"); then
				echo "$s: already running (pid $pid) and answering on $(where "$s")"
			else
				echo "$s: already answering on $(where "$s") (not started from this checkout); using it"
			fi
			continue
		fi
		if pid=$(own_pid "$s"); then
			echo "$s: running (pid $pid) but not answering yet; waiting"
		else
			"launch_$s"
		fi
		waiting+=("$s")
	done
	for s in ${waiting[@]+"${waiting[@]}"}; do
		wait_ready "$s" || failed=1
	done
	write_env
	[ "$failed" -eq 0 ] || die "some servers did not come up (logs under $local_dir)"
}

# ---------------------------------------------------------------- stop

cmd_stop() {
	local s pid pids=() names=() i t0
	for s in "$@"; do
		if pid=$(own_pid "$s"); then
			echo "$s: stopping (pid $pid)"
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
			names+=("$s")
		elif ready "$s"; then
			echo "$s: answering on $(where "$s") but not started from this checkout; left running"
		else
			echo "$s: not running"
			rm -f "$(pidfile "$s")"
		fi
	done
	for i in ${pids[@]+"${!pids[@]}"}; do
		t0=$SECONDS
		until gone "${pids[$i]}"; do
			if [ $((SECONDS - t0)) -ge "$stop_timeout" ]; then
				echo "${names[$i]}: still there after $stop_timeout s; sending SIGKILL"
				kill -KILL "${pids[$i]}" 2>/dev/null || true
				t0=$SECONDS
				until gone "${pids[$i]}" || [ $((SECONDS - t0)) -ge 10 ]; do sleep 0.2; done
				break
			fi
			sleep 0.2
		done
		gone "${pids[$i]}" || die "${names[$i]}: pid ${pids[$i]} survived SIGKILL"
		rm -f "$(pidfile "${names[$i]}")"
		echo "${names[$i]}: stopped"
	done
	if [ "${FP_WIPE:-0}" = 1 ]; then
		for s in "$@"; do
			echo "$s: wiping $local_dir/$s"
			rm -rf "${local_dir:?}/$s"
		done
	fi
}

# ---------------------------------------------------------------- status, env

cmd_status() {
	local s pid bad=0 who
	for s in "$@"; do
		who=""
		if pid=$(own_pid "$s"); then who=" (pid $pid)"; fi
		if ready "$s"; then
			printf '%-10s answering on %s%s\n' "$s" "$(where "$s")" "${who:- (not started from this checkout)}"
		else
			printf '%-10s NOT answering on %s%s\n' "$s" "$(where "$s")" "${who:+$who, running}"
			bad=1
		fi
	done
	return "$bad"
}

cmd_env() {
	printf 'FP_KAFKA_BROKERS=%q\n' "127.0.0.1:$kafka_port"
	printf 'FP_REDIS_ADDR=%q\n' "127.0.0.1:$redis_port"
	printf 'FP_CLICKHOUSE_ADDR=%q\n' "127.0.0.1:$ch_port"
	printf 'FP_CLICKHOUSE_HTTP=%q\n' "http://127.0.0.1:$ch_http_port"
	printf 'FP_KAFKA_LIBS=%q\n' "$kafka_libs"
	printf 'FP_CHDB_PYTHON=%q\n' "$chdb_home/bin/python"
}

# ---------------------------------------------------------------- main

main() {
	[ $# -ge 1 ] || usage
	local cmd=$1 s
	shift
	for s in "$@"; do has "$s" "${all_servers[@]}" || die "unknown server '$s' (want: ${all_servers[*]})"; done
	[ $# -gt 0 ] || set -- "${all_servers[@]}"

	# start/stop/wipe of one checkout must not interleave (two `make test` at
	# once), so they re-run themselves under flock. -o keeps the lock in the
	# flock process only: a lock fd inherited by the servers would stay held
	# for as long as they run and block every later start or stop.
	case $cmd in
	start | stop | wipe)
		if [ -z "${FP_SERVERS_LOCKED:-}" ]; then
			mkdir -p "$local_dir"
			FP_SERVERS_LOCKED=1 exec flock -o "$local_dir/.servers.lock" "${BASH_SOURCE[0]}" "$cmd" "$@"
		fi
		unset FP_SERVERS_LOCKED
		;;
	esac

	case $cmd in
	install) cmd_install "$@" ;;
	start) cmd_start "$@" ;;
	stop) cmd_stop "$@" ;;
	wipe) FP_WIPE=1 cmd_stop "$@" ;;
	status) cmd_status "$@" ;;
	env) cmd_env ;;
	*) usage ;;
	esac
}

# One line, so bash has read the whole file before running anything: editing
# this script while a start waits on the lock does not change what it runs.
main "$@"; exit
