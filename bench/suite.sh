#!/usr/bin/env bash
# The measurements of docs/performance.md: every scenario at the sizes the
# targets name, each against a fresh server (bench/run.sh pins the server to
# core 0 and the generator to core 1). Results go to <out>/*.json; draw the
# plot with `roomcast-bench plot <out>/fanout-step-*.json -o <svg>`.
#
#   bench/suite.sh <out> [server binary]
#
# Build first: cargo build --release -p roomcast-server -p roomcast-bench
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
out=$1
export SERVER_BIN=${2:-$bin_dir/roomcast}
mkdir -p "$out"
run() { echo "== $*" >&2; bench/run.sh "$@" 2>&1 | grep -v "^\(fanout\|mesh\|idle\): \(getting\|connecting\)" || echo "FAILED: $*"; }

run "$out/idle-1k.json" idle --connections 1000 --rooms 100 --duration 3
run "$out/idle-10k.json" idle --connections 10000 --rooms 100 --duration 3
run "$out/fanout-1k-10.json" fanout --subscribers 1000 --rate 10 --duration 20
run "$out/fanout-5k-10.json" fanout --subscribers 5000 --rate 10 --duration 20
run "$out/fanout-step-1k.json" fanout --subscribers 1000 --rate 25 --step --step-factor 2 \
  --warmup 2 --duration 5
run "$out/fanout-step-5k.json" fanout --subscribers 5000 --rate 5 --step --step-factor 2 \
  --warmup 2 --duration 5
run "$out/mesh-500x10.json" mesh --rooms 500 --members 10 --rate-per-member 1 --duration 20
