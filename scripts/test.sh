#!/usr/bin/env bash
# Runs every check and test of the workspace on a fresh machine: the command CI runs.
#
#   ./scripts/test.sh                      # lint, build, all tests (nextest) and doc tests
#   ./scripts/test.sh -p caravan-state     # extra arguments go to the test runner
#   CARAVAN_SKIP_LINT=1 ./scripts/test.sh  # skip rustfmt and clippy
#
# Steps:
#   1. lint: cargo fmt --check, cargo clippy -D warnings (fail fast; skipped with CARAVAN_SKIP_LINT=1)
#   2. PostgreSQL: find the server binaries (install the Debian package if missing), start one
#      throwaway cluster in a temp dir on a free 127.0.0.1 port; it is stopped and deleted on exit
#   3. build the whole workspace once (tests, benches, examples and the caravan binary that the
#      black-box tests run)
#   4. tests: cargo nextest run (cargo test when nextest is missing), then the doc tests
#      (nextest does not run those; only in a full run, without extra arguments)
#
# Tests get CARAVAN_TEST_PYTHON (a python with python-nomad, for tests/compat) and
# CARAVAN_TEST_DATABASE_URL (superuser `caravan`, trust auth; each test creates its
# own database, see caravan-test-utils) and CARAVAN_TEST_PG_BIN (the PostgreSQL bin dir, for
# pgbench and friends).
#
# Environment: CARAVAN_SKIP_LINT=1 skips step 1; CARAVAN_TEST_PG_BIN=<dir> picks the PostgreSQL
# binaries; CI=true selects the nextest `ci` profile (see .config/nextest.toml) unless
# NEXTEST_PROFILE is set.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# ------------------------------------------------------------------------------------------------
# Output helpers
# ------------------------------------------------------------------------------------------------

script_start=$SECONDS
step_start=$SECONDS
summary=()

section() {
  step_start=$SECONDS
  printf '\n==> %s\n' "$*"
}

step_done() { # <what> <status>
  summary+=("$(printf '%-28s %-6s %4ss' "$1" "$2" "$((SECONDS - step_start))")")
}

print_summary() {
  printf '\n==> Summary (%ss in all)\n' "$((SECONDS - script_start))"
  local line
  for line in "${summary[@]}"; do printf '    %s\n' "$line"; done
}

# die, as_root, start_postgres, stop_postgres
# shellcheck source=lib/postgres.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/postgres.sh"

# ------------------------------------------------------------------------------------------------
# Run
# ------------------------------------------------------------------------------------------------

# python-nomad, an unmodified Nomad client library, drives the API in tests/compat. It lives in a
# virtualenv under target/ (kept between runs); python3 and venv come from apt when missing.
PYTHON_NOMAD_VERSION=2.1.0
provision_python_nomad() {
  local venv="$PWD/target/compat-venv"
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo "python3 with venv not found: installing the Debian packages"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv \
      || die "could not install python3 and python3-venv"
  fi
  if ! "$venv/bin/python" -c "import nomad" >/dev/null 2>&1; then
    rm -rf -- "$venv"
    python3 -m venv "$venv" || die "could not create a virtualenv in $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "python-nomad==$PYTHON_NOMAD_VERSION" \
      || die "could not install python-nomad from PyPI"
  fi
  export CARAVAN_TEST_PYTHON="$venv/bin/python"
  echo "python-nomad $PYTHON_NOMAD_VERSION: $CARAVAN_TEST_PYTHON"
}

RUN_LOGS=""
cleanup() {
  stop_postgres
  if [[ -n "$RUN_LOGS" ]]; then rm -rf -- "$RUN_LOGS"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

LOCKED=()
if [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]]; then
  export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0} # a clean clone: incremental data is waste
  export NEXTEST_PROFILE=${NEXTEST_PROFILE:-ci}
  LOCKED=(--locked) # CI builds exactly the committed Cargo.lock
fi

command -v cargo >/dev/null 2>&1 || die "cargo not found: install the Rust toolchain (rustup)"
echo "toolchain: $(cargo --version), $(rustc --version)"

# A component missing from a minimal toolchain: try rustup, else say so and go on without it.
have_cargo_tool() { # <cargo subcommand> <rustup component>
  cargo "$1" --version >/dev/null 2>&1 && return 0
  if command -v rustup >/dev/null 2>&1; then
    rustup component add "$2" >/dev/null 2>&1 || true
    cargo "$1" --version >/dev/null 2>&1 && return 0
  fi
  printf 'warning: cargo %s is not available (rustup component %s); skipping it\n' "$1" "$2" >&2
  return 1
}

if [[ "${CARAVAN_SKIP_LINT:-}" == "1" ]]; then
  echo
  echo "==> Lint skipped (CARAVAN_SKIP_LINT=1)"
else
  section "[1/4] Lint: cargo fmt --check"
  if have_cargo_tool fmt rustfmt; then
    cargo fmt --all -- --check || die "formatting differs: run 'cargo fmt --all'"
    step_done "fmt" "ok"
  else
    step_done "fmt" "absent"
  fi

  section "[1/4] Lint: cargo clippy -D warnings"
  if have_cargo_tool clippy clippy; then
    cargo clippy "${LOCKED[@]}" --workspace --all-targets -- -D warnings || die "clippy found problems"
    step_done "clippy" "ok"
  else
    step_done "clippy" "absent"
  fi
fi

section "[2/4] PostgreSQL: throwaway cluster"
start_postgres
step_done "postgres" "ok"

section "[2/4] Client compatibility: python-nomad in a virtualenv"
provision_python_nomad
step_done "python-nomad" "ok"

section "[3/4] Build: cargo build --workspace --all-targets"
cargo build "${LOCKED[@]}" --workspace --all-targets || die "build failed"
step_done "build" "ok"

# The runners' output is shown and also kept, to count the tests for the closing line.
RUN_LOGS=$(mktemp -d "${TMPDIR:-/tmp}/caravan-test-logs.XXXXXX")
color=()
if [[ -t 1 ]]; then color=(--color always); fi # keep colours although the output goes to tee

run_logged() { # <log file> <command...>; the command's exit status
  "${@:2}" 2>&1 | tee "$1"
  return "${PIPESTATUS[0]}"
}

strip_ansi() { sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$1"; }

# Sums the numbers before <word> (e.g. "passed") in the given lines.
sum_of() { # <word> <lines>
  { grep -oE "[0-9]+ $1" <<<"$2" || true; } | awk '{ n += $1 } END { print n + 0 }'
}

# --workspace unless the arguments choose packages (cargo lets --workspace override -p).
scope=(--workspace)
for arg in "$@"; do
  case $arg in
    --) break ;;
    -p | -p?* | --package | --package=*) scope=() ;;
  esac
done

passed=0
failed_tests=0
counted=0
failed=0
if cargo nextest --version >/dev/null 2>&1; then
  # Doc tests first (nextest does not run them), so that nextest's summary closes the output.
  if [[ $# -eq 0 ]]; then
    section "[4/4] Tests: cargo test --workspace --doc"
    if run_logged "$RUN_LOGS/doc.log" cargo test "${color[@]}" --workspace --doc --no-fail-fast; then
      step_done "doc tests" "ok"
    else
      step_done "doc tests" "FAILED"
      failed=1
    fi
    lines=$(strip_ansi "$RUN_LOGS/doc.log" | grep -E '^test result: ' || true)
    passed=$((passed + $(sum_of passed "$lines")))
    failed_tests=$((failed_tests + $(sum_of failed "$lines")))
  fi

  section "[4/4] Tests: cargo nextest run ${scope[*]:+${scope[*]} }--no-fail-fast $*"
  if run_logged "$RUN_LOGS/nextest.log" cargo nextest run "${color[@]}" "${scope[@]}" --no-fail-fast "$@"; then
    step_done "tests (nextest)" "ok"
  else
    step_done "tests (nextest)" "FAILED"
    failed=1
  fi
  # "Summary [ 12.3s] 40 tests run: 38 passed (1 flaky), 1 failed, 1 timed out, 2 skipped"
  line=$(strip_ansi "$RUN_LOGS/nextest.log" | grep -E 'Summary \[.*\] [0-9]+ tests? run:' | tail -n 1 || true)
  if [[ -n "$line" ]]; then
    counted=1
    passed=$((passed + $(sum_of passed "$line")))
    failed_tests=$((failed_tests + $(sum_of failed "$line") + $(sum_of 'timed out' "$line")))
  fi
else
  section "[4/4] Tests: cargo test ${scope[*]:+${scope[*]} }--no-fail-fast $* (cargo-nextest not found)"
  if run_logged "$RUN_LOGS/test.log" cargo test "${color[@]}" "${scope[@]}" --no-fail-fast "$@"; then
    step_done "tests (cargo test)" "ok"
  else
    step_done "tests (cargo test)" "FAILED"
    failed=1
  fi
  lines=$(strip_ansi "$RUN_LOGS/test.log" | grep -E '^test result: ' || true)
  if [[ -n "$lines" ]]; then
    counted=1
    passed=$((passed + $(sum_of passed "$lines")))
    failed_tests=$((failed_tests + $(sum_of failed "$lines")))
  fi
fi

print_summary
if [[ $failed -ne 0 ]]; then
  echo "FAILED: see the failing tests above"
else
  echo "all checks passed"
fi
# One plain closing line with the totals, after everything else.
if [[ $counted -eq 1 ]]; then
  echo "tests: $passed passed, $failed_tests failed"
fi
exit "$failed"
