#!/usr/bin/env python3
"""Attribute a fanout worker CPU profile to the costs issue 9 names.

Reads `go tool pprof -traces BINARY PROFILE` and gives each sample to the
first category (in the order below) that has a frame in its stack, so the
shares add up to 100%; then prints cross-cutting inclusive figures (a frame
anywhere in the stack: pool health checks, JSON, syscalls, ...). With
-n MESSAGES it also prints microseconds per message.

    go tool pprof -traces /tmp/profworker worker.pprof > traces.txt
    python3 bench/pprof-attribute.py traces.txt -n 100000
"""
import re
import sys

# (name, regex on a frame). First match wins, so the specific ones go first.
CATEGORIES = [
    ("ledger Store.Stamp (1 script per message)", r"(campaigns|storage)\.\(\*Store\)\.Stamp"),
    ("ledger Store.Claim (per batch)", r"(campaigns|storage)\.\(\*Store\)\.Claim"),
    ("ledger Store.Record (per batch, per DLR poll)", r"(campaigns|storage)\.\(\*Store\)\.Record"),
    ("limiter Allow/Block", r"fanout/ratelimit\."),
    ("enqueue follow-ups (DLR poll tasks)", r"fanout/tasks\.Enqueue|worker\.enqueueDLR"),
    ("DLR poll handler: GET /dlr/{id}/sms, caller side", r"worker\.\(\*DLRHandler\)"),
    ("send: oneroute.Client.send, caller side (build, encode, RoundTrip wait, decode)", r"oneroute\.\(\*Client\)\.send"),
    ("net/http transport goroutines (persistConn readLoop/writeLoop)", r"net/http\.\(\*persistConn\)"),
    ("net/http other (dial, conn setup)", r"^net/http\."),
    ("task payload decode (tasks.Decode)", r"fanout/tasks\.Decode"),
    ("worker handler logic (process, eachCall, outcomes, middleware)", r"fanout/worker\."),
    ("asynq itself (dequeue, done, heartbeat, forwarder, ...)", r"hibiken/asynq"),
    ("go-redis other", r"redis/go-redis"),
    ("logging (zerolog)", r"rs/zerolog"),
    ("GC background (mark, sweep, scavenge)", r"runtime\.gcBgMarkWorker|runtime\.bgsweep|runtime\.bgscavenge"),
    ("scheduler, netpoll, timers (runtime.mcall/schedule)", r"runtime\.mcall|runtime\.schedule|runtime\.findRunnable|runtime\.netpoll|runtime\.mstart|runtime\.sysmon"),
]

CROSS = [
    ("go-redis pool Get (incl. health check)", r"redis/go-redis/v9\.\(\*baseClient\)\._getConn"),
    ("go-redis pool health check (connCheck: SetDeadline + recvfrom MSG_PEEK)", r"pool\.connCheck"),
    ("go-redis: all", r"redis/go-redis"),
    ("net/http + oneroute client: all", r"^net/http\.|oneroute\.\(\*Client\)"),
    ("encoding/json: all", r"^encoding/json\."),
    ("syscalls (read/write/epoll...)", r"internal/runtime/syscall/linux\.Syscall6|syscall\.RawSyscall"),
    ("malloc (mallocgc)", r"runtime\.mallocgc"),
    ("zerolog: all", r"rs/zerolog"),
    ("asynq: all", r"hibiken/asynq"),
    ("hash/fnv + fmt (DLR poll ids)", r"^fmt\.|hash/fnv"),
    ("GC assist", r"runtime\.gcAssistAlloc"),
]


def parse(path):
    samples = []
    cur, val = None, 0
    unit = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    for line in open(path, encoding="utf-8"):
        if line.startswith("-----------+"):
            if cur:
                samples.append((val, cur))
            cur, val = [], 0
            continue
        if cur is None:
            continue
        m = re.match(r"^\s+([\d.]+)(s|ms|us|µs|ns)\s+(\S.*)$", line)
        if m:
            val = float(m.group(1)) * unit[m.group(2)]
            cur.append(m.group(3).strip())
        elif line.strip():
            cur.append(line.strip())
    if cur:
        samples.append((val, cur))
    return samples


def main():
    args = sys.argv[1:]
    n = 0
    if "-n" in args:
        i = args.index("-n")
        n = int(args[i + 1])
        del args[i:i + 2]
    samples = parse(args[0])
    total = sum(v for v, _ in samples)
    cats = {name: 0.0 for name, _ in CATEGORIES}
    cats["other"] = 0.0
    for v, stack in samples:
        for name, rx in CATEGORIES:
            if any(re.search(rx, f) for f in stack):
                cats[name] += v
                break
        else:
            cats["other"] += v

    def row(name, v):
        per = f"{v * 1e6 / n:8.1f} µs/msg" if n else ""
        print(f"  {v:7.2f}s {100 * v / total:5.1f}%  {per}  {name}")

    print(f"total {total:.2f}s CPU in the profile" + (f", {total * 1e6 / n:.1f} µs per message" if n else ""))
    print("exclusive attribution (first matching category):")
    for name, v in sorted(cats.items(), key=lambda kv: -kv[1]):
        row(name, v)
    print("inclusive, anywhere in the stack:")
    for name, rx in CROSS:
        row(name, sum(v for v, st in samples if any(re.search(rx, f) for f in st)))


if __name__ == "__main__":
    main()
