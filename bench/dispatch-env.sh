# Sourced by bench/dispatch-rss.sh and bench/ab-dispatch.sh: a private
# redis-server on a free port in folder $dir (stopped on exit), a
# ROWS-row recipient file and a personalised SMS spec with id $1, and the
# environment fanout reads. Sets $port and $rpid.
bench_env() {
	local id=$1
	go run ./bench/gencsv -rows "$ROWS" -out "$dir/recipients.csv"
	port=$(( 20000 + RANDOM % 20000 ))
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
	rpid=$!
	for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
	cat > "$dir/bench.yaml" <<YAML
id: $id
channel: sms
channel_id: ch-bench
message: "Hi {{.first_name}}, your {{.discount}}% discount is waiting"
recipients: recipients.csv
YAML
	export REDIS_URL="redis://127.0.0.1:$port/0" ONEROUTE_API_KEY=bench-not-a-key LOG_LEVEL=warn
}

# offline_flag prints --offline when fanout binary $1 has it: the bench's
# channel ch-bench is no OneRoute channel, so the preflight is skipped (an
# older revision has no preflight and no flag).
offline_flag() { "$1" dispatch --help 2>/dev/null | grep -q -- '--offline' && echo --offline; }

# bench_cleanup stops the redis-server and removes $dir.
bench_cleanup() { [ -n "${rpid:-}" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null; rm -rf "$dir"; }
