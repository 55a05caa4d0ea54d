#!/usr/bin/env bash
# Makes sure Postgres (127.0.0.1:5432) and Redis (127.0.0.1:6379) are up for the tests and
# for local runs: reachable -> nothing to do; installed but stopped -> start; missing -> install
# (apt), configure and start. Also makes sure the role the tests connect as exists.
# Idempotent, and quick when everything already runs. Exports nothing.

# Sourcing is supported, but the strict mode and `exit`s below must not leak into the
# caller's shell: re-run this file in a child bash instead.
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    bash "${BASH_SOURCE[0]}"
    return $?
fi
set -euo pipefail

PG_PORT=5432
REDIS_PORT=6379
# The same default as shared/testkit (admin_database_url).
TEST_DB_URL="${TIERLINE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:${PG_PORT}/postgres}"
# Never hang on a password prompt or an unresponsive server.
export PGCONNECT_TIMEOUT=5

die() { echo "ERROR: $*" >&2; exit 1; }

# Debian ships pg_isready/psql as wrappers in /usr/bin; elsewhere they may only live in
# /usr/lib/postgresql/<version>/bin. Appended, so the wrappers win when both exist.
add_pg_bin_to_path() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [[ -n "$dir" && ":$PATH:" != *":$dir:"* ]]; then PATH="$PATH:$dir"; fi
}

# Run a command as root: directly when we are root, else through sudo if there is one.
as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root for: $* (no sudo available)"; fi
}

# Run a command as the postgres OS user (peer auth on the local socket makes it superuser).
# `cd /` avoids "could not change directory" warnings from a directory postgres cannot read.
as_postgres() (
    cd /
    if [[ $EUID -eq 0 ]] && command -v runuser >/dev/null; then runuser -u postgres -- "$@"
    elif [[ $EUID -eq 0 ]]; then su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    elif command -v sudo >/dev/null; then sudo -u postgres "$@"
    else return 1; fi
)

# A TCP connect that cannot hang; the fallback when the client tools are missing.
tcp_open() { timeout 2 bash -c ": </dev/tcp/127.0.0.1/$1" 2>/dev/null; }

pg_up() {
    if command -v pg_isready >/dev/null; then pg_isready -q -h 127.0.0.1 -p "$PG_PORT"
    else tcp_open "$PG_PORT"; fi
}

redis_up() {
    if command -v redis-cli >/dev/null; then
        [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
    else tcp_open "$REDIS_PORT"; fi
}

# Polls a check once a second for up to 60 s.
wait_for() {
    local name=$1 check=$2 i
    echo "==> Waiting for $name (up to 60 s)"
    for ((i = 0; i < 60; i++)); do
        if "$check"; then echo "==> $name is ready"; return 0; fi
        sleep 1
    done
    die "$name did not become reachable on 127.0.0.1 within 60 s"
}

# One `apt-get update` per run, even when both services need installing.
APT_UPDATED=false
apt_install() {
    command -v apt-get >/dev/null || die "$* not installed and apt-get is unavailable: install it yourself"
    echo "==> Installing $* with apt-get"
    if [[ $APT_UPDATED == false ]]; then as_root apt-get update; APT_UPDATED=true; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# Newest server cluster version under /etc/postgresql (empty when no server is installed).
pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -1 || true; }

# $1 = start | restart. Debian's pg_ctlcluster first (works without systemd, e.g. in
# containers), the init script as fallback.
pg_control() {
    local version
    version=$(pg_version)
    if [[ -n "$version" ]] && command -v pg_ctlcluster >/dev/null \
        && as_root pg_ctlcluster --skip-systemctl-redirect "$version" main "$1"; then
        return 0
    fi
    as_root service postgresql "$1" || die "could not $1 Postgres (tried pg_ctlcluster and service)"
}

# A fresh install only allows peer/password auth; the tests connect over TCP without a
# password, so trust local connections. Prepended because the first matching line wins.
configure_pg_trust() {
    local hba
    hba="/etc/postgresql/$(pg_version)/main/pg_hba.conf"
    [[ -f "$hba" ]] || die "cannot find pg_hba.conf of the new cluster ($hba)"
    if ! as_root grep -q '^# tierline: trust local' "$hba"; then
        echo "==> Trusting local connections in $hba"
        as_root sed -i '1i # tierline: trust local connections (development/test only)\nlocal all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
}

ensure_postgres() {
    add_pg_bin_to_path
    if pg_up; then echo "==> Postgres is reachable on 127.0.0.1:$PG_PORT"; return; fi
    if [[ -n "$(pg_version)" || -x /etc/init.d/postgresql ]]; then
        echo "==> Postgres is installed but not running: starting it"
        pg_control start
    else
        apt_install postgresql
        add_pg_bin_to_path
        configure_pg_trust
        # restart: the package may already have started the cluster with the old pg_hba.conf.
        echo "==> Starting Postgres"
        pg_control restart
    fi
    wait_for Postgres pg_up
}

ensure_redis() {
    if redis_up; then echo "==> Redis is reachable on 127.0.0.1:$REDIS_PORT"; return; fi
    if ! command -v redis-server >/dev/null; then apt_install redis-server; fi
    # The package may have started it already; otherwise run a throwaway, non-persistent one.
    if ! redis_up; then
        echo "==> Starting redis-server (log: /tmp/tierline-redis.log)"
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
            --save "" --appendonly no --dir /tmp --logfile /tmp/tierline-redis.log
    fi
    wait_for Redis redis_up
}

# The tests connect as the user in TEST_DB_URL and create databases, so that role must
# exist and may create databases (superuser keeps it simple on a dev/test server).
ensure_test_role() {
    local user
    if psql -w "$TEST_DB_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
        echo "==> Tests can connect to Postgres"; return
    fi
    [[ "$TEST_DB_URL" =~ ^postgres(ql)?://([^:@/]+)[:@] ]] || die "cannot connect with $TEST_DB_URL (and no user name in it to create)"
    user=${BASH_REMATCH[2]}
    echo "==> Cannot connect as '$user': creating the role through the postgres OS user"
    if ! as_postgres psql -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 -Atqc \
        "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN CREATE ROLE \"$user\" LOGIN SUPERUSER; END IF; END \$\$"; then
        echo "WARNING: could not create role '$user' as the postgres OS user" >&2
    fi
    psql -w "$TEST_DB_URL" -Atqc 'SELECT 1' >/dev/null \
        || die "tests still cannot connect with $TEST_DB_URL (check pg_hba.conf allows trust on 127.0.0.1, or set TIERLINE_TEST_DATABASE_URL)"
    echo "==> Tests can connect to Postgres"
}

ensure_postgres
ensure_redis
ensure_test_role
