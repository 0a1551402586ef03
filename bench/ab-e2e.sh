#!/usr/bin/env bash
# Side-by-side end-to-end delivery of two revisions, for a noisy shared
# machine: builds the bench binaries (make bench-bin) of BEFORE (default:
# the first parent of HEAD) from a git archive and of the working tree, then
# alternates each side's own bench/e2e over the same scenarios,
# FANOUT_BENCH_PAIRS times (default 3), with the plain program of the
# working tree after each pair. Every run has its own private redis-server
# and sandbox process. Prints each run's line and keeps the JSON lines in
# bench-out/ab-e2e/{before,after,plain}.jsonl. Needs redis-server.
#   bash bench/ab-e2e.sh 7e19f54
#   FANOUT_BENCH_SCENARIOS=fanout-sms FANOUT_BENCH_N=50000 bash bench/ab-e2e.sh HEAD~3
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${1:-HEAD~1}
PAIRS=${FANOUT_BENCH_PAIRS:-3}
SCENARIOS=${FANOUT_BENCH_SCENARIOS:-fanout-sms,fanout-wa}
N=${FANOUT_BENCH_N:-100000}
command -v redis-server >/dev/null || { echo "ab-e2e: redis-server not installed"; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
out=bench-out/ab-e2e
mkdir -p "$out" "$dir/before"
rm -f "$out"/{before,after,plain}.jsonl
git archive "$BEFORE" | tar -x -C "$dir/before"
(cd "$dir/before" && make -s bench-bin >/dev/null)
make -s bench-bin >/dev/null
echo "== $N messages, $PAIRS pairs of $SCENARIOS, before $(git rev-parse --short "$BEFORE"), after $(git describe --always --dirty), $(nproc) cores"
run() { # side, bin dir, scenarios
	local B=$2
	"$B/e2e" -fanout "$B/fanout" -plain "$B/plain" -noop "$B/noop" -arrivals "$B/arrivals" \
		-scenarios "$3" -runs 1 -n "$N" -dlr-max-age 30s -until-complete=false -out "$out/$1.jsonl" 2>&1 |
		grep -E '^(fanout|plain|noop)' | sed "s/^/$1 pair $i, load $(cut -d' ' -f1 /proc/loadavg): /"
}
for i in $(seq "$PAIRS"); do
	run before "$dir/before/bench-out/bin" "$SCENARIOS"
	run after bench-out/bin "$SCENARIOS"
	run plain bench-out/bin plain
done
echo "JSON lines in $out/"
