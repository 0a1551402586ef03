#!/usr/bin/env bash
# The dispatcher's peak RSS and speed as a user runs it: `fanout dispatch` on a
# FANOUT_BENCH_ROWS-row CSV (default 1,000,000) into a private redis-server
# on a free port, measured with /usr/bin/time -v, FANOUT_BENCH_RUNS times
# (default 3; the private Redis is emptied between runs) with the median
# rate. The machine is shared: each run prints its CPU time and the load
# average, so a slow run can be told from a busy machine. Needs redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${FANOUT_BENCH_ROWS:-1000000}
RUNS=${FANOUT_BENCH_RUNS:-3}
command -v redis-server >/dev/null || { echo "dispatch-rss: redis-server not installed; skipped"; exit 0; }
dir=$(mktemp -d)
rpid=
. bench/dispatch-env.sh
trap bench_cleanup EXIT
go build -o "$dir/fanout" ./cmd/fanout
bench_env bench-rss
echo "== fanout dispatch, $ROWS rows, $RUNS runs, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
rates=()
peak=0
for i in $(seq "$RUNS"); do
	redis-cli -p "$port" flushall >/dev/null
	load=$(cut -d' ' -f1 /proc/loadavg)
	/usr/bin/time -v "$dir/fanout" dispatch $(offline_flag "$dir/fanout") --json "$dir/bench.yaml" >"$dir/out.json" 2>"$dir/time.txt"
	rss=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$dir/time.txt")
	cpu=$(awk -F: '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.2f", u+s}' "$dir/time.txt")
	valid=$(grep -o '"valid":[0-9]*' "$dir/out.json" | cut -d: -f2)
	el=$(grep -o '"elapsed_s":[0-9.]*' "$dir/out.json" | cut -d: -f2)
	rate=$(awk -v v="$valid" -v e="$el" 'BEGIN {printf "%.0f", v/e}')
	rates+=("$rate")
	peak=$(( rss > peak ? rss : peak ))
	echo "run $i: $valid valid recipients in $(printf '%.2f' "$el")s: $rate recipients/s; peak RSS $((rss / 1024)) MB; CPU ${cpu}s; load average $load"
done
median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}')
echo "recipients/s (dispatch time), median of $RUNS: $median"
echo "peak RSS, highest of $RUNS: $((peak / 1024)) MB ($peak kB)"
echo "redis used_memory after: $(redis-cli -p "$port" info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r')"
echo "== again (nothing to do: resumed from the checkpoint)"
/usr/bin/time -v "$dir/fanout" dispatch $(offline_flag "$dir/fanout") --json "$dir/bench.yaml" >"$dir/out2.json" 2>"$dir/time2.txt"
echo "second run: $(grep -o '"enqueued":[0-9]*,"resumed":[0-9]*' "$dir/out2.json"), wall $(awk '/Elapsed \(wall clock\)/ {print $NF}' "$dir/time2.txt")"
