#!/usr/bin/env bash
# Runs one roomcast-bench scenario against a fresh release server, pinned:
# the server on core 0, the generator on core 1 (this machine has two).
#
#   bench/run.sh <results.json> <scenario> [roomcast-bench flags...]
#   SERVER_FLAGS="--send-queue 8192" bench/run.sh results/fanout-1k.json fanout --subscribers 1000
#
# The server's per-connection rate limits (sized for people) are raised: the
# generator is a trusted client.
# Build first: cargo build --release -p roomcast-server -p roomcast-bench
# (SERVER_BIN=<path> runs another build of the server, for comparisons; the
# binaries are looked for under $CARGO_TARGET_DIR when it is set).
# REDIS_PORT=<port> starts a redis-server on the server's core and runs the
# Redis engine against it; its CPU counts as the server's.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
out=$1; scenario=$2; shift 2
port=${PORT:-18080}
server_core=${SERVER_CORE:-0}
bench_core=${BENCH_CORE:-1}
ulimit -n "$(ulimit -Hn)"
backend=()
server=
redis=
stop() {
  for pid in $server $redis; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap stop EXIT
if [ -n "${REDIS_PORT:-}" ]; then
  taskset -c "$server_core" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
    --save '' --appendonly no >"${out%.json}.redis.log" 2>&1 &
  redis=$!
  wait_port "$REDIS_PORT"
  SERVER_FLAGS="${SERVER_FLAGS:-} --redis-url redis://127.0.0.1:$REDIS_PORT"
  backend=(--backend-pid "$redis")
fi
# shellcheck disable=SC2086 # SERVER_FLAGS is a list of flags
RUST_LOG=${RUST_LOG:-warn} taskset -c "$server_core" "${SERVER_BIN:-$bin_dir/roomcast}" \
  --bind "127.0.0.1:$port" "${trusted_limits[@]}" \
  ${SERVER_FLAGS:-} >"${out%.json}.server.log" 2>&1 &
server=$!
wait_port "$port"
taskset -c "$bench_core" "$bin_dir/roomcast-bench" "$scenario" \
  --server "127.0.0.1:$port" --server-pid "$server" "${backend[@]}" --json "$out" "$@"
