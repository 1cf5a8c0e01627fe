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
