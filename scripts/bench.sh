#!/usr/bin/env bash
# Runs Caravan's benchmarks (crates/caravan-bench) and prints one table of the results.
# Not part of the test suite: run it by hand, on a quiet machine.
#
#   ./scripts/bench.sh                         # every benchmark, full size
#   ./scripts/bench.sh writes reads            # only these (writes, wakeups, reads)
#   CARAVAN_BENCH_DURATION=3s CARAVAN_BENCH_WAITERS=1000 ./scripts/bench.sh   # a quick smoke run
#
# Steps:
#   1. raise the open-files limit (the wakeups benchmark holds one socket per waiter, and the
#      agent it starts inherits the limit and holds as many)
#   2. build caravan and caravan-bench with --release
#   3. start a throwaway PostgreSQL cluster (as scripts/test.sh does: a temp dir, a free
#      127.0.0.1 port, fsync and synchronous_commit on); stopped and deleted on exit
#   4. run each benchmark; each prints its own figures, and all rows are gathered in the final
#      table. A benchmark that fails is reported and the others still run.
#
# Environment:
#   CARAVAN_BENCH_DURATION     length of each timed run of writes and reads (default 10s)
#   CARAVAN_BENCH_WAITERS      blocking queries of the wakeups benchmark (default 10000)
#   CARAVAN_BENCH_NODES        extra nodes registered for the wakeups benchmark (default 10)
#   CARAVAN_BENCH_CONNECTIONS  connections of the reads benchmark (default 64)
#   CARAVAN_BENCH_WRK          1: also run wrk in the reads benchmark, installing the Debian
#                              package when it is missing; 0: never; unset: only if installed
#   CARAVAN_TEST_PG_BIN        the PostgreSQL bin dir (initdb, pg_ctl, postgres, pgbench)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${CARAVAN_BENCH_DURATION:-10s}
WAITERS=${CARAVAN_BENCH_WAITERS:-10000}
NODES=${CARAVAN_BENCH_NODES:-10}
CONNECTIONS=${CARAVAN_BENCH_CONNECTIONS:-64}

if [[ $# -eq 0 ]]; then
  BENCHES=(writes wakeups reads)
else
  BENCHES=("$@")
fi
for bench in "${BENCHES[@]}"; do
  case "$bench" in
  writes | wakeups | reads) ;;
  *)
    echo "error: unknown benchmark '$bench' (want writes, wakeups or reads)" >&2
    exit 2
    ;;
  esac
done

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

section() { printf '\n==> %s\n' "$*"; }

is_root() { [[ "$(id -u)" == 0 ]]; }

as_root() {
  if is_root; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run '$*' (not root and no sudo)"
  fi
}

# ------------------------------------------------------------------------------------------------
# PostgreSQL: the provisioning of scripts/test.sh, trimmed to what a benchmark needs
# ------------------------------------------------------------------------------------------------

PG_BIN=""
PG_TMP=""
PG_DATA=""
PG_USER="" # the OS user that runs the cluster when we are root; empty: ourselves

has_pg_server() { [[ -x "$1/initdb" && -x "$1/pg_ctl" && -x "$1/postgres" ]]; }

find_pg_bin() {
  local dir
  if [[ -n "${CARAVAN_TEST_PG_BIN:-}" ]]; then
    has_pg_server "$CARAVAN_TEST_PG_BIN" ||
      die "CARAVAN_TEST_PG_BIN=$CARAVAN_TEST_PG_BIN has no initdb, pg_ctl and postgres"
    PG_BIN=$CARAVAN_TEST_PG_BIN
    return 0
  fi
  if command -v initdb >/dev/null 2>&1; then
    dir=$(dirname "$(readlink -f "$(command -v initdb)")")
    if has_pg_server "$dir"; then
      PG_BIN=$dir
      return 0
    fi
  fi
  while IFS= read -r dir; do
    if has_pg_server "$dir"; then
      PG_BIN=$dir
      return 0
    fi
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
  return 1
}

install_postgres() {
  command -v apt-get >/dev/null 2>&1 ||
    die "PostgreSQL server binaries not found and there is no apt-get: install PostgreSQL, or set CARAVAN_TEST_PG_BIN"
  echo "PostgreSQL server binaries not found; installing the Debian packages 'postgresql' and 'postgresql-contrib'"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql postgresql-contrib
}

as_pg() {
  if [[ -z "$PG_USER" ]]; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u "$PG_USER" -- "$@"
  else
    su -s /bin/sh "$PG_USER" -c "$(printf '%q ' "$@")"
  fi
}

pick_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' &&
      return 0
  fi
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 12000))
    if ! timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free TCP port found on 127.0.0.1"
}

stop_postgres() {
  if [[ -n "$PG_DATA" && -f "$PG_DATA/postmaster.pid" ]]; then
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >/dev/null 2>&1; then
      local pid
      pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)
      if [[ "$pid" =~ ^[0-9]+$ ]]; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
  fi
  if [[ -n "$PG_TMP" ]]; then
    rm -rf -- "$PG_TMP"
  fi
  PG_DATA=""
  PG_TMP=""
}

start_postgres() {
  if ! find_pg_bin; then
    install_postgres
    find_pg_bin || die "PostgreSQL was installed but initdb, pg_ctl and postgres are still not found"
  fi
  [[ -x "$PG_BIN/pgbench" ]] || echo "warning: no pgbench in $PG_BIN (Debian: postgresql-contrib before PostgreSQL 10, else part of postgresql-client)" >&2
  echo "PostgreSQL binaries: $PG_BIN ($("$PG_BIN/postgres" --version))"

  local tmp_base=${TMPDIR:-/tmp}
  if is_root; then
    # initdb and postgres refuse to run as root: run the cluster as the `postgres` user.
    PG_USER=postgres
    if ! id -u "$PG_USER" >/dev/null 2>&1; then
      useradd --system --user-group --no-create-home --home-dir /nonexistent "$PG_USER"
    fi
    tmp_base=/tmp
  fi

  PG_TMP=$(mktemp -d "$tmp_base/caravan-bench-pg.XXXXXX")
  PG_DATA=$PG_TMP/data
  if [[ -n "$PG_USER" ]]; then
    chown "$PG_USER:" "$PG_TMP"
  fi
  if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U caravan --auth=trust --encoding=UTF8 --locale=C \
    --no-sync >"$PG_TMP/initdb.log" 2>&1; then
    cat "$PG_TMP/initdb.log" >&2
    die "initdb failed"
  fi

  local attempt port
  for attempt in 1 2 3 4 5; do
    port=$(pick_port)
    # Durable settings on purpose (as in production): every commit is fsync'd.
    cat >"$PG_DATA/postgresql.auto.conf" <<EOF
# Written by scripts/bench.sh for a throwaway benchmark cluster.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PG_TMP'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 300
log_min_messages = warning
log_connections = off
EOF
    if [[ -n "$PG_USER" ]]; then
      chown "$PG_USER:" "$PG_DATA/postgresql.auto.conf"
    fi
    if as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_TMP/postgres.log" -w -t 60 start >/dev/null; then
      export CARAVAN_TEST_DATABASE_URL="postgres://caravan@127.0.0.1:$port/postgres"
      export CARAVAN_TEST_PG_BIN=$PG_BIN
      echo "PostgreSQL cluster: $PG_DATA, listening on 127.0.0.1:$port"
      return 0
    fi
    echo "PostgreSQL did not start on port $port (attempt $attempt); its log:" >&2
    tail -n 20 "$PG_TMP/postgres.log" >&2 || true
  done
  die "could not start PostgreSQL"
}

# ------------------------------------------------------------------------------------------------
# Run
# ------------------------------------------------------------------------------------------------

SUMMARY=""
cleanup() {
  stop_postgres
  [[ -n "$SUMMARY" ]] && rm -f -- "$SUMMARY"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wants() {
  local b
  for b in "${BENCHES[@]}"; do [[ "$b" == "$1" ]] && return 0; done
  return 1
}

section "Open-files limit"
if wants wakeups; then
  # One socket per waiter here and one in the agent (which inherits this limit), plus spares.
  needed=$((WAITERS + 1024))
  if [[ "$(ulimit -n)" != unlimited && "$(ulimit -n)" -lt 65536 ]]; then
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -H -n)" 2>/dev/null || true
  fi
  limit=$(ulimit -n)
  echo "ulimit -n: $limit (hard $(ulimit -H -n)); wakeups needs about $needed"
  if [[ "$limit" != unlimited && "$limit" -lt "$needed" ]]; then
    die "the open-files limit ($limit) is below $needed and cannot be raised here: set CARAVAN_BENCH_WAITERS lower (e.g. $((limit - 1024)))"
  fi
else
  echo "ulimit -n: $(ulimit -n) (not raised: no wakeups benchmark)"
fi

section "Build: cargo build --release -p caravan -p caravan-bench"
command -v cargo >/dev/null 2>&1 || die "cargo not found: install the Rust toolchain (rustup)"
cargo build --release -p caravan -p caravan-bench || die "build failed"
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BENCH_BIN=$TARGET_DIR/release/caravan-bench
export CARAVAN_BIN=$TARGET_DIR/release/caravan
[[ -x "$BENCH_BIN" && -x "$CARAVAN_BIN" ]] || die "built binaries not found in $TARGET_DIR/release"

if wants writes; then
  section "PostgreSQL: throwaway cluster"
  start_postgres
fi

WRK_ARGS=()
if wants reads && [[ "${CARAVAN_BENCH_WRK:-}" != 0 ]]; then
  if ! command -v wrk >/dev/null 2>&1 && [[ "${CARAVAN_BENCH_WRK:-}" == 1 ]]; then
    section "wrk: installing the Debian package"
    if command -v apt-get >/dev/null 2>&1; then
      as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk ||
        echo "warning: could not install wrk; running without it" >&2
    else
      echo "warning: no apt-get to install wrk; running without it" >&2
    fi
  fi
  if command -v wrk >/dev/null 2>&1; then
    WRK_ARGS=(--wrk "$(command -v wrk)")
  fi
fi

SUMMARY=$(mktemp "${TMPDIR:-/tmp}/caravan-bench-summary.XXXXXX")
failed=()
run_bench() { # <name> <args...>
  local name=$1
  shift
  section "Benchmark: $name"
  echo "+ caravan-bench --summary <file> $name $*"
  if ! "$BENCH_BIN" --summary "$SUMMARY" "$name" "$@"; then
    failed+=("$name")
  fi
}

for bench in "${BENCHES[@]}"; do
  case "$bench" in
  writes) run_bench writes --duration "$DURATION" ;;
  wakeups) run_bench wakeups --waiters "$WAITERS" --nodes "$NODES" ;;
  reads) run_bench reads --duration "$DURATION" --connections "$CONNECTIONS" "${WRK_ARGS[@]}" ;;
  esac
done

section "Results ($(nproc) CPUs, $(uname -r); durations: $DURATION, waiters: $WAITERS)"
{
  printf 'bench\tsetup\trate\tp50\tp90\tp99\tmax\tnote\n'
  cat "$SUMMARY"
} | column -t -s $'\t'

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "FAILED: ${failed[*]} (see their output above)" >&2
  exit 1
fi
