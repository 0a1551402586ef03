#!/usr/bin/env bash
# Runs the pacing prototype (bench/pacer) as PROCS processes sharing one
# private redis-server, through bench/arrivals to a fresh sandbox, and prints
# the arrival analysis. Extra arguments go to every pacer process.
#   bash bench/pacer/run.sh -group 10            # per-message, 10 cells per reservation
#   bash bench/pacer/run.sh -batched -group 20   # requests of 20 recipients
# Env: PROCS (3), N (3000 messages in all), RATE (200), BURST (20),
# FANOUT (/tmp/fanout), BIN (/tmp: pacer and arrivals binaries).
set -euo pipefail
cd "$(dirname "$0")/../.."
PROCS=${PROCS:-3} N=${N:-3000} RATE=${RATE:-200} BURST=${BURST:-20}
FANOUT=${FANOUT:-/tmp/fanout} BIN=${BIN:-/tmp}
[ -x "$BIN/pacer" ] || go build -o "$BIN/pacer" ./bench/pacer
[ -x "$BIN/arrivals" ] || go build -o "$BIN/arrivals" ./bench/arrivals
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(port) sport=$(port) pport=$(port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
pids+=($!)
"$FANOUT" sandbox --addr "127.0.0.1:$sport" 2>"$dir/sandbox.log" &
pids+=($!)
"$BIN/arrivals" -listen "127.0.0.1:$pport" -target "http://127.0.0.1:$sport" -out "$dir/arrivals.tsv" 2>/dev/null &
proxy=$!
pids+=($proxy)
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && curl -sf "127.0.0.1:$pport/sandbox/stats" >/dev/null && break; sleep 0.05; done
echo "== $PROCS pacer processes, $N messages, rate $RATE burst $BURST, args: $*; load $(cut -d' ' -f1-3 /proc/loadavg)"
each=$((N / PROCS))
ppids=()
for i in $(seq 0 $((PROCS - 1))); do
	"$BIN/pacer" -redis "127.0.0.1:$rport" -target "http://127.0.0.1:$pport" -n "$each" -offset $((i * each)) \
		-rate "$RATE" -burst "$BURST" "$@" &
	ppids+=($!)
done
for p in "${ppids[@]}"; do wait "$p"; done
kill -TERM "$proxy"
wait "$proxy" 2>/dev/null || true
"$BIN/arrivals" -analyze "$dir/arrivals.tsv" -limit "$RATE" -burst "$BURST"
echo "arrival log: $dir/arrivals.tsv"
