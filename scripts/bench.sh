#!/usr/bin/env bash
# Runs Caravan's benchmarks (crates/caravan-bench, tests/benches) and prints one table of the
# results.
# Not part of the test suite: run it by hand, on a quiet machine.
#
#   ./scripts/bench.sh                         # every benchmark, full size
#   ./scripts/bench.sh writes reads            # only these (writes, wakeups, reads, placements, tasks, fs, exec, periodic, acl, services)
#   CARAVAN_BENCH_DURATION=3s CARAVAN_BENCH_WAITERS=1000 ./scripts/bench.sh   # a quick smoke run
#   CARAVAN_BENCH_PLACEMENTS="--nodes 500 --jobs 4 --count 500" ./scripts/bench.sh placements
#
# Steps:
#   1. raise the open-files limit (the wakeups benchmark holds one socket per waiter, and the
#      agent it starts inherits the limit and holds as many)
#   2. build caravan and caravan-bench with --release (and the placements benchmark of
#      caravan-tests, with cargo bench --no-run)
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
#   CARAVAN_BENCH_PLACEMENTS   flags of the placements benchmark (default: its full size, 5,000
#                              simulated nodes and 20 jobs x 5,000 allocations; see --help)
#   CARAVAN_BENCH_TASKS        flags of the tasks benchmark (default: 200 latency jobs, 1,000
#                              mock_driver and 200 raw_exec tasks on one agent; see --help)
#   CARAVAN_BENCH_FS           flags of the fs benchmark (default: 1 GiB file and logs, 200
#                              follow appends, 500 followers; see --help)
#   CARAVAN_BENCH_EXEC         flags of the exec benchmark (default: 1,000 keystroke round trips
#                              with and without a terminal, 100 session starts, a 100 MiB cat;
#                              see --help)
#   CARAVAN_BENCH_PERIODIC     flags of the periodic benchmark (default: 100 jobs on a one-minute
#                              cron, 2 launches each, about 3 minutes; see --help)
#   CARAVAN_BENCH_WRK          1: also run wrk in the reads benchmark, installing the Debian
#                              package when it is missing; 0: never; unset: only if installed
#   CARAVAN_TEST_PG_BIN        the PostgreSQL bin dir (initdb, pg_ctl, postgres, pgbench)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${CARAVAN_BENCH_DURATION:-10s}
WAITERS=${CARAVAN_BENCH_WAITERS:-10000}
NODES=${CARAVAN_BENCH_NODES:-10}
CONNECTIONS=${CARAVAN_BENCH_CONNECTIONS:-64}
read -r -a PLACEMENTS_ARGS <<<"${CARAVAN_BENCH_PLACEMENTS:-}"
read -r -a TASKS_ARGS <<<"${CARAVAN_BENCH_TASKS:-}"
read -r -a FS_ARGS <<<"${CARAVAN_BENCH_FS:-}"
read -r -a EXEC_ARGS <<<"${CARAVAN_BENCH_EXEC:-}"
read -r -a PERIODIC_ARGS <<<"${CARAVAN_BENCH_PERIODIC:-}"

if [[ $# -eq 0 ]]; then
  BENCHES=(writes wakeups reads placements tasks fs exec periodic acl services)
else
  BENCHES=("$@")
fi
for bench in "${BENCHES[@]}"; do
  case "$bench" in
  writes | wakeups | reads | placements | tasks | fs | exec | periodic | acl | services) ;;
  *)
    echo "error: unknown benchmark '$bench' (want writes, wakeups, reads, placements, tasks, fs, exec, periodic, acl or services)" >&2
    exit 2
    ;;
  esac
done

section() { printf '\n==> %s\n' "$*"; }

# die, as_root, start_postgres, stop_postgres
# shellcheck source=lib/postgres.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/postgres.sh"

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

PLACEMENTS_BIN=""
if wants placements; then
  section "Build: cargo bench -p caravan-tests --bench placements --no-run"
  # The executable's path is the last line cargo prints to stderr ("Executable benches/...").
  PLACEMENTS_BIN=$(cargo bench -p caravan-tests --bench placements --no-run 2>&1 | tee /dev/stderr |
    sed -n 's/.*Executable .* (\(.*\))$/\1/p' | tail -n 1) || die "build failed"
  [[ -x "$PLACEMENTS_BIN" ]] || die "the placements benchmark was not built"
fi

TASKS_BIN=""
if wants tasks; then
  section "Build: cargo bench -p caravan-tests --bench tasks --no-run"
  TASKS_BIN=$(cargo bench -p caravan-tests --bench tasks --no-run 2>&1 | tee /dev/stderr |
    sed -n 's/.*Executable .* (\(.*\))$/\1/p' | tail -n 1) || die "build failed"
  [[ -x "$TASKS_BIN" ]] || die "the tasks benchmark was not built"
fi

FS_BIN=""
if wants fs; then
  section "Build: cargo bench -p caravan-tests --bench fs --no-run"
  FS_BIN=$(cargo bench -p caravan-tests --bench fs --no-run 2>&1 | tee /dev/stderr |
    sed -n 's/.*Executable .* (\(.*\))$/\1/p' | tail -n 1) || die "build failed"
  [[ -x "$FS_BIN" ]] || die "the fs benchmark was not built"
fi

EXEC_BIN=""
if wants exec; then
  section "Build: cargo bench -p caravan-tests --bench exec --no-run"
  EXEC_BIN=$(cargo bench -p caravan-tests --bench exec --no-run 2>&1 | tee /dev/stderr |
    sed -n 's/.*Executable .* (\(.*\))$/\1/p' | tail -n 1) || die "build failed"
  [[ -x "$EXEC_BIN" ]] || die "the exec benchmark was not built"
fi

if wants writes || wants placements || wants tasks || wants fs || wants exec; then
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
run_placements() {
  section "Benchmark: placements"
  echo "+ placements --summary <file> ${PLACEMENTS_ARGS[*]}"
  # The simulated nodes share a few HTTP/2 connections: no open-files limit to raise for them.
  if ! "$PLACEMENTS_BIN" --summary "$SUMMARY" "${PLACEMENTS_ARGS[@]}"; then
    failed+=(placements)
  fi
}

run_tasks() {
  section "Benchmark: tasks"
  echo "+ tasks --summary <file> ${TASKS_ARGS[*]}"
  if ! "$TASKS_BIN" --summary "$SUMMARY" "${TASKS_ARGS[@]}"; then
    failed+=(tasks)
  fi
}

run_fs() {
  section "Benchmark: fs"
  echo "+ fs --summary <file> ${FS_ARGS[*]}"
  if ! "$FS_BIN" --summary "$SUMMARY" "${FS_ARGS[@]}"; then
    failed+=(fs)
  fi
}

run_exec() {
  section "Benchmark: exec"
  echo "+ exec --summary <file> ${EXEC_ARGS[*]}"
  if ! "$EXEC_BIN" --summary "$SUMMARY" "${EXEC_ARGS[@]}"; then
    failed+=(exec)
  fi
}

for bench in "${BENCHES[@]}"; do
  case "$bench" in
  writes) run_bench writes --duration "$DURATION" ;;
  wakeups) run_bench wakeups --waiters "$WAITERS" --nodes "$NODES" ;;
  reads) run_bench reads --duration "$DURATION" --connections "$CONNECTIONS" "${WRK_ARGS[@]}" ;;
  placements) run_placements ;;
  tasks) run_tasks ;;
  fs) run_fs ;;
  exec) run_exec ;;
  periodic) run_bench periodic "${PERIODIC_ARGS[@]}" ;;
  acl) run_bench acl --connections "$CONNECTIONS" ;;
  services) run_bench services --connections "$CONNECTIONS" --duration "$DURATION" ;;
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
