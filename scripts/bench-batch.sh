#!/usr/bin/env bash
# Throughput of `liveportrait batch --queue` with N worker processes on this
# machine: a redis-server of its own on a free loopback port (no
# persistence), N workers (`--workers 0`: each renders in its own process,
# one core each), JOBS one-frame jobs on synthetic weights over the shared
# media, timed from enqueue to the last job done. Prints jobs/minute and
# seconds per job.
#
# Usage: scripts/bench-batch.sh [WORKERS=1] [JOBS=4] [FRAMES=1]
set -euo pipefail
n=${1:-1}
jobs=${2:-4}
frames=${3:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
media=${LP_MEDIA_DIR:-$root/../shared/media}
tmp=$(mktemp -d)
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
redis-server --port "$port" --bind 127.0.0.1 --dir "$tmp" --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
redis=$!
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  kill "$redis" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
sleep 1
for s in s0.jpg s9.jpg; do
  for d in laugh.pkl d11.mp4 d0.mp4 d12.jpg; do
    echo "{\"source\": \"$media/$s\", \"driving\": \"$media/$d\", \"maxFrames\": $frames}"
  done
done | head -n "$jobs" >"$tmp/jobs.jsonl"
for i in $(seq 1 "$n"); do
  node "$root/bin/liveportrait.js" worker --queue "redis://127.0.0.1:$port" --weights synthetic --workers 0 -q >"$tmp/worker$i.log" 2>&1 &
  pids+=($!)
done
t0=$(date +%s.%N)
node "$root/bin/liveportrait.js" batch "$tmp/jobs.jsonl" -o "$tmp/out" --queue "redis://127.0.0.1:$port" -q
t1=$(date +%s.%N)
node -e "const s=$t1-$t0, j=$jobs; console.log('bench-batch: ' + $n + ' worker process(es), ' + j + ' jobs of ' + $frames + ' frame(s): ' + s.toFixed(1) + ' s, ' + (j/s*60).toFixed(2) + ' jobs/minute, ' + (s/j).toFixed(1) + ' s per job')"
