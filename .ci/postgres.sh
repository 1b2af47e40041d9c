#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the storage tests (see docs/storage.md).
#
#   .ci/postgres.sh start DIR   initialise a cluster in DIR (must not exist or be empty),
#                               start it on a free loopback port, create the database
#                               forexgrid_test, and print its SQLAlchemy URL on stdout
#   .ci/postgres.sh stop DIR    stop the server and delete DIR
#
# Run as root (CI), the server runs as the postgres user; run as another user, as that user.
# If initdb is missing and we are root, the Debian package is installed first.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
pgdata=$2

find_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$found" ] && command -v initdb >/dev/null 2>&1; then
    found=$(dirname "$(command -v initdb)")
  fi
  echo "$found"
}

as_server_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    bin=$(find_bin)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
      if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "postgres.sh: installing postgresql" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 \
          || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
        bin=$(find_bin)
      fi
    fi
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
      echo "postgres.sh: initdb not found; install PostgreSQL (apt-get install -y postgresql)" >&2
      exit 1
    fi
    # A free loopback port, so parallel runs and other servers never clash.
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if [ "$(id -u)" -eq 0 ]; then
      install -d -o postgres -g postgres -m 700 "$pgdata"
    else
      install -d -m 700 "$pgdata"
    fi
    as_server_user "$bin/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --no-locale --no-sync >&2
    as_server_user "$bin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w \
      -o "-k $pgdata -c listen_addresses=127.0.0.1 -p $port -c fsync=off" start >&2
    as_server_user "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres forexgrid_test >&2
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/forexgrid_test"
    ;;
  stop)
    bin=$(find_bin)
    if [ -f "$pgdata/postmaster.pid" ] && [ -n "$bin" ]; then
      as_server_user "$bin/pg_ctl" -D "$pgdata" -w -m fast stop >&2 || true
    fi
    # Only ever delete what start created (a cluster directory), never an arbitrary path.
    if [ -f "$pgdata/PG_VERSION" ]; then rm -rf "$pgdata"; fi
    ;;
  *)
    usage
    ;;
esac
