#!/usr/bin/env bash
# The durable-store measurements of docs/performance.md: each scenario
# against memory, SQLite and PostgreSQL in turn (so the three share the
# machine's conditions), repeated. Results go to <out>/<scenario>-<store>-<n>.json,
# with what the store did in <...>.store.json (see bench/run.sh).
#
#   bench/store.sh <out> [repeats]
#   MESH_SECONDS=10 bench/store.sh <out>      # a shorter mesh
#
# Build first: cargo build --release -p roomcast-server -p roomcast-bench
# Needs PostgreSQL (apt-get install postgresql), perf for SQLite's commits.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1
repeats=${2:-2}
mkdir -p "$out"
run() {
  echo "== STORE=$STORE $*" >&2
  bench/run.sh "$@" 2>&1 | grep -v "^\(fanout\|mesh\|idle\): \(getting\|connecting\)" || echo "FAILED: $*"
}
for n in $(seq "$repeats"); do
  for STORE in memory sqlite postgres; do
    export STORE
    # What one commit costs: one sender, one message at a time.
    run "$out/one-sender-$STORE-$n.json" mesh --rooms 1 --members 1 --closed-loop \
      --warmup 1 --duration 5
    # 5,000 members chatting at 1 msg/s, for a minute: long enough for
    # SQLite's checkpoints and the database file's growth to show.
    run "$out/mesh-500x10-$STORE-$n.json" mesh --rooms 500 --members 10 --rate-per-member 1 \
      --duration "${MESH_SECONDS:-60}"
    # Group commit at work: 1,000 senders, each sending when its last send
    # is acknowledged.
    run "$out/mesh-closed-100x10-$STORE-$n.json" mesh --rooms 100 --members 10 --closed-loop \
      --duration 10
    run "$out/fanout-step-1k-$STORE-$n.json" fanout --subscribers 1000 --rate 25 --step \
      --step-factor 2 --max-rate 3200 --duration 5
  done
done
