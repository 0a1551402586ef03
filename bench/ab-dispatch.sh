#!/usr/bin/env bash
# Side-by-side dispatch speed of two revisions, for a noisy shared machine:
# builds `fanout` at BEFORE (default: the first parent of HEAD) and at the
# working tree, then alternates `fanout dispatch --json` of the same
# FANOUT_BENCH_ROWS-row CSV (default 1,000,000) into one private
# redis-server (emptied before each run), FANOUT_BENCH_PAIRS times (default
# 3). Prints each run's recipients/s, CPU seconds and load, then the median
# rate and CPU of each side and the ratio. Needs redis-server.
#   bash bench/ab-dispatch.sh 58070b5
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${1:-HEAD~1}
ROWS=${FANOUT_BENCH_ROWS:-1000000}
PAIRS=${FANOUT_BENCH_PAIRS:-3}
command -v redis-server >/dev/null || { echo "ab-dispatch: redis-server not installed"; exit 1; }
dir=$(mktemp -d)
rpid=
. bench/dispatch-env.sh
trap bench_cleanup EXIT
mkdir "$dir/before"
git archive "$BEFORE" | tar -x -C "$dir/before"
(cd "$dir/before" && go build -o "$dir/fanout-before" ./cmd/fanout)
go build -o "$dir/fanout-after" ./cmd/fanout
bench_env bench-ab
echo "== $ROWS rows, $PAIRS pairs, before $(git rev-parse --short "$BEFORE"), after $(git describe --always --dirty), $(nproc) cores"
declare -A rates cpus
for i in $(seq "$PAIRS"); do
	for side in before after; do
		redis-cli -p "$port" flushall >/dev/null
		load=$(cut -d' ' -f1 /proc/loadavg)
		/usr/bin/time -f '%U %S' -o "$dir/time.txt" "$dir/fanout-$side" dispatch $(offline_flag "$dir/fanout-$side") --json "$dir/bench.yaml" >"$dir/out.json"
		cpu=$(awk '{printf "%.2f", $1+$2}' "$dir/time.txt")
		valid=$(grep -o '"valid":[0-9]*' "$dir/out.json" | cut -d: -f2)
		el=$(grep -o '"elapsed_s":[0-9.]*' "$dir/out.json" | cut -d: -f2)
		rate=$(awk -v v="$valid" -v e="$el" 'BEGIN {printf "%.0f", v/e}')
		rates[$side]+="$rate "
		cpus[$side]+="$cpu "
		echo "$side run $i: $valid valid in ${el}s: $rate recipients/s, CPU ${cpu}s, load $load"
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
for side in before after; do
	echo "$side: median $(echo "${rates[$side]}" | median) recipients/s, median CPU $(echo "${cpus[$side]}" | median)s"
done
echo "ratio after/before (rate): $(awk -v a="$(echo "${rates[after]}" | median)" -v b="$(echo "${rates[before]}" | median)" 'BEGIN {printf "%.2f", a/b}')"
