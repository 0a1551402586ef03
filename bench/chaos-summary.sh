#!/usr/bin/env bash
# chaos-summary.sh LOG...: the figures of `make chaos` runs, one block per
# log (make chaos 2>&1 | tee chaos-1.log; bench/chaos-summary.sh chaos-*.log).
set -euo pipefail
for f in "$@"; do
  echo "== $f"
  grep -hE -- '^(--- |    --- )(PASS|FAIL)|^(ok|FAIL)[[:space:]]' "$f" | sed 's/^/  /' | sort | uniq -c | awk '$2=="---"{print}' | sed -E 's/^ +[0-9]+ +//' | sort -u || true
  grep -hE 'sliding one-second max|max sliding 1 s window|soak: |killed soak|terminated soak|Redis stalled|gateway 502/504|deleted b0|fanout cancel|duplicate sends|redis SIGKILL|killed the dispatcher' "$f" |
    sed -E 's/^[[:space:]]+[a-z_]+_test\.go:[0-9]+: /  /' || true
  n=$(grep -cE '^--- FAIL|^    --- FAIL|^FAIL' "$f" || true)
  echo "  failures: $n"
done
