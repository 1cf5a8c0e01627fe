# shellcheck shell=bash disable=SC2034 # the variables are for the scripts
# What the bench scripts share. Each sources it (`. bench/lib.sh`) once it
# has changed to the repository root, which the paths are relative to.

# Where cargo puts what it builds, and the release binaries in it.
target_dir=${CARGO_TARGET_DIR:-target}
bin_dir=$target_dir/release

# The server's per-connection rate limits are sized for people; a load
# generator is a trusted client, so they are raised for it.
trusted_limits=(--rate-frames 1000000 --rate-messages 1000000 --rate-user-messages 1000000
  --rate-joins 1000000)

# wait_port <port>: waits up to 10 s for something to listen on
# 127.0.0.1:<port>; fails, saying so, if nothing does.
wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done
  echo "nothing listens on port $1" >&2
  return 1
}

# The PostgreSQL server programs (Debian keeps them off PATH), newest first.
pg_bin() {
  local dirs
  dirs=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$dirs" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; return 1; }
  echo "$dirs"
}

# as_postgres <cmd...>: PostgreSQL refuses to run as root.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_start <dir> <port> <core>: a fresh cluster in <dir>/data, listening on
# 127.0.0.1:<port> and a socket in <dir>, pinned to <core>, with a
# `roomcast` database. fsync stays on: the figures are for durable commits.
# The cluster has no locale unless PG_ICU_LOCALE names one (`en-US`): a
# linguistic collation, as most deployed clusters have.
pg_start() {
  local dir=$1 port=$2 core=$3 bin locale=(--no-locale)
  bin=$(pg_bin)
  if [ -n "${PG_ICU_LOCALE:-}" ]; then
    locale=(--locale=C.UTF-8 --locale-provider=icu "--icu-locale=$PG_ICU_LOCALE")
  fi
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  as_postgres "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 "${locale[@]}" --no-sync >/dev/null
  as_postgres taskset -c "$core" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -w -t 60 start >/dev/null
  as_postgres "$bin/createdb" -h "$dir" -p "$port" -U postgres roomcast
}

# pg_stop <dir>: stops the cluster pg_start made there, if it runs.
pg_stop() {
  local dir=$1 bin
  [ -f "$dir/data/postmaster.pid" ] || return 0
  bin=$(pg_bin)
  as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
    kill -QUIT "$(head -1 "$dir/data/postmaster.pid")" 2>/dev/null || true
}

# pg_sql <dir> <port> <database> <query>: one value.
pg_sql() {
  as_postgres psql -h "$1" -p "$2" -U postgres -d "$3" -XAtc "$4"
}

# pg_commits <dir> <port>: transactions committed in the `roomcast` database.
pg_commits() {
  pg_sql "$1" "$2" postgres "SELECT xact_commit FROM pg_stat_database WHERE datname = 'roomcast'"
}

# store_summary <store> <events> <commits> <what counted commits> [<thread ticks>]: JSON.
# With thread ticks (see thread_ticks), also the CPU those threads took per
# stored event, in microseconds.
store_summary() {
  local per=null ticks=${5:-null} us=null
  if [ "$3" != null ] && [ "$3" -gt 0 ]; then per=$(awk "BEGIN { printf \"%.2f\", $2 / $3 }"); fi
  if [ "$ticks" != null ] && [ "$2" -gt 0 ]; then
    us=$(awk "BEGIN { printf \"%.1f\", $ticks * 1000000 / $(getconf CLK_TCK) / $2 }")
  fi
  printf '{"store":"%s","events":%s,"commits":%s,"commits_from":"%s","events_per_commit":%s,"thread_ticks":%s,"thread_us_per_event":%s}\n' \
    "$1" "$2" "$3" "$4" "$per" "$ticks" "$us"
}

# thread_ticks <pid> <name prefix>: the CPU time (user + system, in clock
# ticks) the process's threads whose name starts with the prefix have taken.
thread_ticks() {
  local total=0 task comm stat
  for task in /proc/"$1"/task/*; do
    comm=$(cat "$task/comm" 2>/dev/null) || continue
    case $comm in "$2"*) ;; *) continue ;; esac
    stat=$(cat "$task/stat" 2>/dev/null) || continue
    # Fields after the command's closing parenthesis: utime and stime are
    # the 12th and 13th.
    read -r -a fields <<<"${stat##*) }"
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}
