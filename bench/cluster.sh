#!/usr/bin/env bash
# Fan-out through Redis: one instance on Redis, then two (publisher on one,
# subscribers on the other), with the in-memory engine as the reference.
# Servers and Redis on core 0, the generator on core 1.
#
#   bench/cluster.sh <results dir> [roomcast-bench fanout flags...]
#   bench/cluster.sh target/bench-cluster --subscribers 1000 --rate 10
#
# Build first: cargo build --release -p roomcast-server -p roomcast-bench
# (the binaries are looked for under $CARGO_TARGET_DIR when it is set).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
out=$1; shift
mkdir -p "$out"
ulimit -n "$(ulimit -Hn)"
secret=bench-secret
redis_port=${REDIS_PORT:-16379}
flags=(--jwt-secret "$secret" --api-key bench-key --dev --send-queue 65536 "${trusted_limits[@]}")
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

server() { # port [extra flags...]
  local port=$1; shift
  RUST_LOG=warn taskset -c 0 "$bin_dir/roomcast" --bind "127.0.0.1:$port" "${flags[@]}" "$@" \
    >"$out/server-$port.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
}

run() { # name server-port server-pid [flags...]
  local name=$1 port=$2 pid=$3; shift 3
  echo "== $name" | tee -a "$out/summary.txt"
  taskset -c 1 "$bin_dir/roomcast-bench" fanout --server "127.0.0.1:$port" --server-pid "$pid" \
    --jwt-secret "$secret" --json "$out/$name.json" "$@" 2>&1 | tee -a "$out/summary.txt"
}

server 18180
run memory-1-instance 18180 "${pids[-1]}" "$@"
kill "${pids[-1]}"

taskset -c 0 redis-server --port "$redis_port" --save "" --appendonly no >"$out/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port"
server 18181 --redis-url "redis://127.0.0.1:$redis_port"
run redis-1-instance 18181 "${pids[-1]}" "$@"
server 18182 --redis-url "redis://127.0.0.1:$redis_port"
run redis-2-instances 18182 "${pids[-1]}" --publish-to 127.0.0.1:18181 "$@"
