#!/usr/bin/env bash
# idle.sh measures what an idle sharded kvstore cluster costs: it starts
# three members of BINARY with --shards SHARDS (default 10000), each with its
# own --data-dir under /var/tmp (a real disk, never tmpfs), waits until
# every member has a leader for every shard and every shard quiesced (GET
# /status: no_leader 0, quiesced SHARDS), then reads each member's
# utime+stime from /proc/<pid>/stat over SECONDS (default 10) and prints a
# line per member: CPU as % of one core, and VmRSS. With FAILOVER=1 it
# then kills member 1 (SIGKILL) and prints how long until members 2 and 3
# between them lead every shard (GET /status: the sum of their "leading").
#
#	go build -o /var/tmp/kv ./examples/kvstore
#	examples/kvstore/bench/idle.sh /var/tmp/kv [SHARDS] [SECONDS] [extra kvstore flags...]
#
# Linux only (/proc). Ports are picked from BASE_PORT (default 23400).
set -euo pipefail

bin=${1:?usage: idle.sh BINARY [SHARDS] [SECONDS] [kvstore flags...]}
shards=${2:-10000}
secs=${3:-10}
shift $(( $# < 3 ? $# : 3 ))
base=${BASE_PORT:-23400}
dir=$(mktemp -d /var/tmp/kvstore-idle.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT

cluster="1=127.0.0.1:$((base + 1)),2=127.0.0.1:$((base + 2)),3=127.0.0.1:$((base + 3))"
for id in 1 2 3; do
	"$bin" --id "$id" --shards "$shards" --data-dir "$dir/m$id" \
		--listen-peer "127.0.0.1:$((base + id))" --listen-client "127.0.0.1:$((base + 10 + id))" \
		--initial-cluster "$cluster" --log-level warn "$@" 2>"$dir/m$id.log" &
	pids+=($!)
done

# ready reports whether member id sees a leader for every shard and every
# shard quiesced.
ready() {
	local st
	st=$(curl -sf "http://127.0.0.1:$((base + 10 + $1))/status") || return 1
	[[ $st == *"\"no_leader\":0,"* && $st == *"\"quiesced\":$shards,"* ]]
}
start=$(date +%s)
until ready 1 && ready 2 && ready 3; do
	if (( $(date +%s) - start > 300 )); then
		echo "idle.sh: not all led and quiesced after 300 s" >&2
		exit 1
	fi
	sleep 0.5
done
settled=$(( $(date +%s) - start ))

# cpu prints utime+stime of pid, in clock ticks (fields 14 and 15 of
# /proc/<pid>/stat, counted after the parenthesised command name).
cpu() {
	local s
	s=$(<"/proc/$1/stat")
	s=${s##*) }
	read -r -a f <<<"$s"
	echo $(( f[11] + f[12] ))
}
hz=$(getconf CLK_TCK)
before=()
for p in "${pids[@]}"; do before+=("$(cpu "$p")"); done
t0=$(date +%s.%N)
sleep "$secs"
t1=$(date +%s.%N)
load=$(cut -d' ' -f1-3 /proc/loadavg)
for i in 0 1 2; do
	p=${pids[$i]}
	used=$(( $(cpu "$p") - before[i] ))
	rss=$(awk '/^VmRSS/ {print int($2/1024)}' "/proc/$p/status")
	awk -v u="$used" -v hz="$hz" -v t0="$t0" -v t1="$t1" -v id=$((i + 1)) -v rss="$rss" -v load="$load" -v settled="$settled" \
		'BEGIN { printf "member %d: %.2f%% of a core, %d MiB RSS (settled in %d s; load %s)\n", id, 100 * u / hz / (t1 - t0), rss, settled, load }'
done
for id in 1 2 3; do
	if ! ready "$id"; then echo "idle.sh: member $id no longer all led and quiesced after the sample" >&2; fi
done

if [[ ${FAILOVER:-0} == 1 ]]; then
	leading() {
		local st
		st=$(curl -sf "http://127.0.0.1:$((base + 10 + $1))/status") || { echo 0; return; }
		st=${st#*\"leading\":}
		echo "${st%%,*}"
	}
	kill -9 "${pids[0]}"
	t0=$(date +%s%N)
	wait "${pids[0]}" 2>/dev/null || true
	until (( $(leading 2) + $(leading 3) == shards )); do
		if (( ($(date +%s%N) - t0) / 1000000000 > 120 )); then
			echo "idle.sh: the others did not take over every shard within 120 s" >&2
			exit 1
		fi
		sleep 0.02
	done
	echo "failover: every shard led by member 2 or 3 $(( ($(date +%s%N) - t0) / 1000000 )) ms after member 1 was killed"
fi
