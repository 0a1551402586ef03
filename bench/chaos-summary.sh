#!/usr/bin/env bash
# chaos-summary.sh LOG...: the figures of `make chaos` runs, one block per
# log (make chaos 2>&1 | tee chaos-1.log; bench/chaos-summary.sh chaos-*.log):
# how many tests passed, every failure, and each test's figure line.
set -euo pipefail
for f in "$@"; do
  echo "== $f"
  pass=$(grep -cE -- '^ *--- PASS' "$f" || true)
  fail=$(grep -cE -- '^ *--- FAIL|^FAIL' "$f" || true)
  echo "  tests and subtests passed: $pass; failures: $fail"
  grep -hE -- '^ *--- FAIL' "$f" | sed 's/^ */  /' || true
  grep -hE 'sliding one-second max|max sliding 1 s window|soak: |Redis stalled|gateway 502/504|deleted b0|fanout cancel|duplicate sends|redis SIGKILL|killed the dispatcher|^== run' "$f" |
    sed -E 's/^[[:space:]]+[a-z_]+_test\.go:[0-9]+: /  /' || true
done
