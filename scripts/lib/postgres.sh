# Shared by scripts/test.sh and scripts/bench.sh: a throwaway PostgreSQL cluster for one run.
# Source it, call start_postgres (exports CARAVAN_TEST_DATABASE_URL and CARAVAN_TEST_PG_BIN),
# and call stop_postgres on exit. Needs bash; uses set -u-safe variables only.

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

is_root() { [[ "$(id -u)" == 0 ]]; }

# Runs a command as root: directly when we are root, else through sudo when there is one.
as_root() {
  if is_root; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run '$*' (not root and no sudo): install PostgreSQL yourself, or set CARAVAN_TEST_PG_BIN"
  fi
}

# ------------------------------------------------------------------------------------------------
# PostgreSQL
# ------------------------------------------------------------------------------------------------

PG_BIN=""
PG_TMP=""
PG_DATA=""
PG_USER="" # the OS user that runs the cluster when we are root; empty: ourselves

has_pg_server() { [[ -x "$1/initdb" && -x "$1/pg_ctl" && -x "$1/postgres" ]]; }

# Sets PG_BIN to a directory holding initdb, pg_ctl and postgres, or returns 1.
find_pg_bin() {
  local dir
  if [[ -n "${CARAVAN_TEST_PG_BIN:-}" ]]; then
    has_pg_server "$CARAVAN_TEST_PG_BIN" ||
      die "CARAVAN_TEST_PG_BIN=$CARAVAN_TEST_PG_BIN has no initdb, pg_ctl and postgres"
    PG_BIN=$CARAVAN_TEST_PG_BIN
    return 0
  fi
  if command -v initdb >/dev/null 2>&1; then
    # Resolve symlinks (e.g. /usr/bin/initdb -> /usr/lib/postgresql/N/bin/initdb).
    dir=$(dirname "$(readlink -f "$(command -v initdb)")")
    if has_pg_server "$dir"; then
      PG_BIN=$dir
      return 0
    fi
  fi
  # Debian and Ubuntu: /usr/lib/postgresql/<major>/bin, highest version first.
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
    die "PostgreSQL server binaries not found and there is no apt-get: install PostgreSQL (initdb, pg_ctl, postgres), or set CARAVAN_TEST_PG_BIN"
  echo "PostgreSQL server binaries not found; installing the Debian package 'postgresql'"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
}

# Runs a command as the cluster's OS user.
as_pg() {
  if [[ -z "$PG_USER" ]]; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u "$PG_USER" -- "$@"
  else
    su -s /bin/sh "$PG_USER" -c "$(printf '%q ' "$@")"
  fi
}

# Prints a TCP port on 127.0.0.1 that nothing listens on right now.
pick_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' &&
      return 0
  fi
  # No python: a random port below the kernel's ephemeral range that refuses connections.
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
    # Immediate: the cluster is thrown away, so there is nothing to flush.
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >/dev/null 2>&1; then
      local pid
      pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)
      if [[ "$pid" =~ ^[0-9]+$ ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
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
  echo "PostgreSQL binaries: $PG_BIN ($("$PG_BIN/postgres" --version))"
  [[ -x "$PG_BIN/pgbench" ]] || echo "note: no pgbench in $PG_BIN (the benchmarks compare against it)" >&2

  local tmp_base=${TMPDIR:-/tmp}
  if is_root; then
    # initdb and postgres refuse to run as root: run the cluster as the `postgres` user.
    PG_USER=postgres
    if ! id -u "$PG_USER" >/dev/null 2>&1; then
      echo "creating the system user $PG_USER"
      useradd --system --user-group --no-create-home --home-dir /nonexistent "$PG_USER"
    fi
    tmp_base=/tmp # a TMPDIR under /root would not be reachable by that user
  fi

  PG_TMP=$(mktemp -d "$tmp_base/caravan-pg.XXXXXX")
  PG_DATA=$PG_TMP/data
  if [[ -n "$PG_USER" ]]; then
    chown "$PG_USER:" "$PG_TMP"
  fi

  # --no-sync: nothing to protect before the server first starts; the server runs with fsync on.
  if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U caravan --auth=trust --encoding=UTF8 --locale=C \
    --no-sync >"$PG_TMP/initdb.log" 2>&1; then
    cat "$PG_TMP/initdb.log" >&2
    die "initdb failed"
  fi

  # The port is free when picked but can be taken before the server binds it: retry a few times.
  local attempt port
  for attempt in 1 2 3 4 5; do
    port=$(pick_port)
    cat >"$PG_DATA/postgresql.auto.conf" <<EOF
# Written by scripts/lib/postgres.sh for a throwaway cluster.
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
      echo "CARAVAN_TEST_DATABASE_URL=$CARAVAN_TEST_DATABASE_URL"
      return 0
    fi
    echo "PostgreSQL did not start on port $port (attempt $attempt); its log:" >&2
    tail -n 20 "$PG_TMP/postgres.log" >&2 || true
  done
  die "could not start PostgreSQL"
}
