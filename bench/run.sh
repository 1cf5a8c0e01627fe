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
# STORE picks where messages are kept, always fresh, in a temporary directory
# removed on exit:
#   memory    nothing durable (the default; never the working directory)
#   sqlite    a new SQLite file
#   postgres  a new PostgreSQL cluster on a free port (PG_PORT), on the
#             server's core, fsync on; its CPU counts as the server's;
#             PG_ICU_LOCALE=en-US gives it that linguistic collation
# With sqlite or postgres, <results>.store.json gets what the store did over
# the whole run (set-up included): events stored, commits (PostgreSQL's
# xact_commit; for SQLite, the server's fsync and fdatasync calls, counted
# with `perf stat` when perf is installed) and events per commit; for SQLite
# also the CPU time sqlx's SQLite worker threads took (read as the scenario
# ends), per stored event.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
out=$1; scenario=$2; shift 2
port=${PORT:-18080}
server_core=${SERVER_CORE:-0}
bench_core=${BENCH_CORE:-1}
ulimit -n "$(ulimit -Hn)"
store=${STORE:-memory}
backend=()
server=
redis=
syncs=
tmp=$(mktemp -d)
stop() {
  for pid in $syncs $server $redis; do
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$store" = postgres ]; then pg_stop "$tmp"; fi
  rm -rf "$tmp"
}
trap stop EXIT
case $store in
  memory) SERVER_FLAGS="${SERVER_FLAGS:-} --database-url memory" ;;
  sqlite) SERVER_FLAGS="${SERVER_FLAGS:-} --database-url sqlite://$tmp/roomcast.db" ;;
  postgres)
    pg_port=${PG_PORT:-15432}
    pg_start "$tmp" "$pg_port" "$server_core"
    backend+=(--backend-pid "$(head -1 "$tmp/data/postmaster.pid")")
    SERVER_FLAGS="${SERVER_FLAGS:-} --database-url postgres://postgres@127.0.0.1:$pg_port/roomcast"
    ;;
  *) echo "STORE must be memory, sqlite or postgres, not $store" >&2; exit 2 ;;
esac
if [ -n "${REDIS_PORT:-}" ]; then
  taskset -c "$server_core" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
    --save '' --appendonly no >"${out%.json}.redis.log" 2>&1 &
  redis=$!
  wait_port "$REDIS_PORT"
  SERVER_FLAGS="${SERVER_FLAGS:-} --redis-url redis://127.0.0.1:$REDIS_PORT"
  backend+=(--backend-pid "$redis")
fi
# shellcheck disable=SC2086 # SERVER_FLAGS is a list of flags
RUST_LOG=${RUST_LOG:-warn} taskset -c "$server_core" "${SERVER_BIN:-$bin_dir/roomcast}" \
  --bind "127.0.0.1:$port" "${trusted_limits[@]}" \
  ${SERVER_FLAGS:-} >"${out%.json}.server.log" 2>&1 &
server=$!
wait_port "$port"
commits_before=0
case $store in
  sqlite)
    if command -v perf >/dev/null; then
      perf stat -x, -e syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync -p "$server" \
        -o "$tmp/syncs" &
      syncs=$!
    fi
    ;;
  postgres) commits_before=$(pg_commits "$tmp" "$pg_port") ;;
esac
taskset -c "$bench_core" "$bin_dir/roomcast-bench" "$scenario" \
  --server "127.0.0.1:$port" --server-pid "$server" "${backend[@]}" --json "$out" "$@"
ticks=null
if [ "$store" = sqlite ]; then ticks=$(thread_ticks "$server" sqlx-sqlite); fi
# The server stops first: then `perf stat` has seen every sync and ends
# with it, and PostgreSQL's backends report their counts as they exit.
kill -INT "$server"; wait "$server" || true; server=
case $store in
  sqlite)
    commits=null
    if [ -n "$syncs" ]; then
      wait "$syncs" || true; syncs=
      commits=$(awk -F, '/syscalls/ { n += $1 } END { print n + 0 }' "$tmp/syncs")
    fi
    events=$(sqlite3 "$tmp/roomcast.db" 'SELECT COALESCE(sum(latest), 0) FROM rooms')
    store_summary sqlite "$events" "$commits" "fsync and fdatasync calls" "$ticks" >"${out%.json}.store.json"
    ;;
  postgres)
    sleep 1
    commits=$(($(pg_commits "$tmp" "$pg_port") - commits_before))
    events=$(pg_sql "$tmp" "$pg_port" roomcast 'SELECT COALESCE(sum(latest), 0) FROM rooms')
    store_summary postgres "$events" "$commits" "xact_commit" >"${out%.json}.store.json"
    ;;
esac
