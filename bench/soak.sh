#!/usr/bin/env bash
# Soak: two bounded runs against a fresh release server (server on core 0,
# clients on core 1), written to <results dir>:
#  - "kept": history large enough to keep every message, so every acked
#    message is checked against the server's history;
#  - "bounded": the default history (1000 events per room), full after the
#    warm-up, so memory growth is what is left once history stops growing.
#
#   bench/soak.sh <results dir> [seconds per run, default 600]
#
# Build first: cargo build --release -p roomcast-server -p roomcast-bench
# (the binaries are looked for under $CARGO_TARGET_DIR when it is set).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
out=$1; seconds=${2:-600}
mkdir -p "$out"
ulimit -n "$(ulimit -Hn)"
port=${PORT:-18290}
limits=(--rate-frames 10000 --rate-messages 10000 --rate-user-messages 10000 --rate-joins 10000)

soak() { # name [server flags...]
  local name=$1; shift
  RUST_LOG=warn taskset -c 0 "$bin_dir/roomcast" --bind "127.0.0.1:$port" --dev \
    --jwt-secret soak --api-key soak-key "${limits[@]}" "$@" >"$out/$name.server.log" 2>&1 &
  local server=$!
  local status=0
  # shellcheck disable=SC2046,SC2086 # SOAK_FLAGS is a list of flags
  wait_port "$port" &&
  taskset -c 1 "$bin_dir/roomcast-soak" --server "127.0.0.1:$port" --server-pid "$server" \
    --jwt-secret soak --api-key soak-key --duration "$seconds" --json "$out/$name.json" \
    ${SOAK_FLAGS:-} $([ "$name" = bounded ] && echo --no-history-check) || status=$?
  kill "$server"; wait "$server" 2>/dev/null || true
  return $status
}

soak kept --history-size 10000000
soak bounded
