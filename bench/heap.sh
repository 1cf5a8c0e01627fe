#!/usr/bin/env bash
# Where an idle connection's bytes go: runs the `idle` scenario against a
# release server under heaptrack, stops the server with SIGKILL while the
# connections sit idle (so nothing is freed before the dump), and prints the
# allocation sites still live, in bytes per connection.
#
#   bench/heap.sh [connections] [rooms]        # default 10000 100
#
# Needs heaptrack (Debian: apt-get install heaptrack). Build first:
# cargo build --release -p roomcast-server -p roomcast-bench
# (SERVER_BIN=<path> measures another build; PORT, as in run.sh). The raw
# data stays in <target dir>/heap/heap-<connections>.zst for
# `heaptrack --analyze`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
n=${1:-10000}
rooms=${2:-100}
port=${PORT:-18081}
server_bin=${SERVER_BIN:-$bin_dir/roomcast}
mkdir -p "$target_dir/heap"
out=$target_dir/heap/heap-$n
command -v heaptrack >/dev/null || { echo "heaptrack is not installed" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"
rm -f "$out.zst"
# In memory, as run.sh's default: the connections' bytes, not a store's cache
# (and nothing written into the working directory).
RUST_LOG=warn taskset -c 0 heaptrack -o "$out" "$server_bin" --bind "127.0.0.1:$port" \
  --database-url memory "${trusted_limits[@]}" >"$out.log" 2>&1 &
wrapper=$!
# heaptrack runs the server as its child: find it by its flags.
server=
for _ in $(seq 100); do
  server=$(pgrep -f "^$server_bin --bind 127.0.0.1:$port" || true)
  [ -n "$server" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
[ -n "$server" ] || { echo "the server did not start (see $out.log)" >&2; exit 1; }
# The generator stays connected much longer than this script waits.
taskset -c 1 "$bin_dir/roomcast-bench" idle --server "127.0.0.1:$port" --server-pid "$server" \
  --connections "$n" --rooms "$rooms" --duration 600 >"$out.bench.log" 2>&1 &
bench=$!
stop() {
  kill "$bench" 2>/dev/null || true
  wait "$bench" 2>/dev/null || true
}
trap stop EXIT
# Idle once the server's RSS has not moved for 10 s.
prev=0
for i in $(seq 120); do
  sleep 5
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status")
  [ "$rss" = "$prev" ] && [ "$i" -gt 2 ] && break
  prev=$rss
done
sleep 5
echo "server RSS $rss KiB with $n idle connections"
kill -9 "$server"
wait "$wrapper" 2>/dev/null || true
# Sizes are printed with SI suffixes (40.96M = 40,960,000 bytes).
heaptrack_print -f "$out.zst" --print-leaks 1 --print-peaks 0 --print-allocators 0 \
  --print-temporary 0 -n 30 -s 0 2>/dev/null |
  awk -v n="$n" '
    function bytes(s,  v, u) {
      v = s + 0; u = substr(s, length(s))
      return v * (u == "K" ? 1e3 : u == "M" ? 1e6 : u == "G" ? 1e9 : 1)
    }
    /total memory leaked/ { printf "heap per connection: %d bytes\n", bytes($4) / n }
    / leaked over / {
      size = bytes($1); getline; site = $1
      gsub(/\$LT\$/, "<", site); gsub(/\$GT\$/, ">", site); gsub(/\$C\$/, ",", site)
      gsub(/\$u20\$/, " ", site); gsub(/\$u7b\$/, "{", site); gsub(/\$u7d\$/, "}", site)
      gsub(/\$RF\$/, "\\&", site); gsub(/\.\./, "::", site); sub(/::h[0-9a-f]+$/, "", site)
      printf "%8d  %s\n", size / n, substr(site, 1, 120)
    }
  '
echo "(an address without a name is where inlined Vec and HashMap growth lands; its"
echo " backtraces: heaptrack_print -f $out.zst --print-leaks 1 -n 1 -s 20)"
