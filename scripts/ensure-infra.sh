#!/usr/bin/env bash
# Make sure the local infrastructure WEE5 needs is reachable:
#   PostgreSQL 127.0.0.1:5432, Redis 127.0.0.1:6379, NATS+JetStream 127.0.0.1:4222,
# and that the `uv` tool is installed.
#
# For each server: reuse whatever already listens on the port; otherwise start an
# installed server; otherwise (root or passwordless sudo + apt-get) install it from
# Debian and start it; otherwise explain what is missing. All problems are
# reported before exiting non-zero.
#
# Called by `make up`, `make test` and `.ci/run`. Set WEE5_SKIP_INFRA=1 to skip.
# WEE5_INFRA_{PG,REDIS,NATS}_PORT override the ports (used to test the start
# logic on spare ports without touching the real servers).
set -euo pipefail

if [[ ${WEE5_SKIP_INFRA:-0} == 1 ]]; then
    echo "infra: WEE5_SKIP_INFRA=1, skipping checks"
    exit 0
fi

# Server binaries (nats-server, start-stop-daemon, runuser) live in sbin dirs,
# which are not on a normal user's PATH on Debian.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

HOST=127.0.0.1
PG_PORT=${WEE5_INFRA_PG_PORT:-5432}
REDIS_PORT=${WEE5_INFRA_REDIS_PORT:-6379}
NATS_PORT=${WEE5_INFRA_NATS_PORT:-4222}
WAIT_SECONDS=20

# Private scratch dir, per user so concurrent users on one machine don't clash.
SCRATCH="${TMPDIR:-/tmp}/wee5-infra-$(id -u)"
mkdir -p "$SCRATCH"
# Output of apt-get and start commands goes here to keep the console short.
INFRA_LOG="$SCRATCH/ensure-infra.log"

FAILED=()          # components still missing at the end
APT_UPDATED=0      # run `apt-get update` at most once, and only when installing

# ---------------------------------------------------------------- helpers

# True if something accepts TCP on $HOST:$1 (bash's /dev/tcp, bounded by timeout).
port_open() {
    timeout 1 bash -c ": <>/dev/tcp/$HOST/$1" 2>/dev/null
}

# Poll the port for up to WAIT_SECONDS; servers need a moment after starting.
wait_port() {
    local port=$1 i
    for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
        port_open "$port" && return 0
        sleep 0.5
    done
    return 1
}

# Run a command as root: directly if we are root, else via passwordless sudo.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    else
        sudo -n "$@"
    fi
}

can_root() {
    [[ $EUID -eq 0 ]] || { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }
}

# Installing is only possible (and only attempted) as root on an apt system.
can_apt_install() {
    can_root && command -v apt-get >/dev/null
}

apt_install() {
    if [[ $APT_UPDATED == 0 ]]; then
        as_root apt-get update -qq >>"$INFRA_LOG" 2>&1 || return 1
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >>"$INFRA_LOG" 2>&1
}

# True if $1 exists (or can be created) and is writable by us.
dir_writable() {
    mkdir -p "$1" 2>/dev/null && [[ -w $1 ]]
}

# True if file $1 can be written (exists and writable, or its dir is writable).
file_writable() {
    if [[ -e $1 ]]; then [[ -w $1 ]]; else [[ -w $(dirname "$1") ]]; fi
}

# Non-default ports get their own files so a test instance never shares state
# (pid file, JetStream store, log) with the real one.
suffix() {
    [[ $1 == "$2" ]] || printf -- '-%s' "$1"
}

fail() {
    local name=$1
    shift
    echo "$name: $*" >&2
    FAILED+=("$name")
}

# ---------------------------------------------------------------- postgres

# Newest PostgreSQL major version whose server binary is installed, or nothing.
pg_installed_version() {
    local bin
    # Sort by version so e.g. 16 wins over 15; glob may match nothing.
    for bin in /usr/lib/postgresql/*/bin/postgres; do
        if [[ -x $bin ]]; then basename "$(dirname "$(dirname "$bin")")"; fi
    done | sort -V | tail -n 1
}

# Start (creating if needed) the "main" cluster. Returns 0 if we created a
# fresh cluster (so the caller sets the password), 1 if it already existed.
pg_start() {
    local ver=$1
    if [[ -d /etc/postgresql/$ver/main ]]; then
        # May fail with "already running" (e.g. on another port); the port wait
        # that follows is the real test.
        as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start >>"$INFRA_LOG" 2>&1 || true
        return 1
    fi
    as_root pg_createcluster --start -p "$PG_PORT" "$ver" main >>"$INFRA_LOG" 2>&1 || true
    return 0
}

# Fresh clusters have no password for `postgres`, but the project's default
# URL is postgresql://postgres:postgres@127.0.0.1:5432/...
pg_set_password() {
    as_root runuser -u postgres -- psql -q -p "$PG_PORT" \
        -c "ALTER USER postgres PASSWORD 'postgres'" >>"$INFRA_LOG" 2>&1
}

ensure_postgres() {
    local ver fresh=0 how=started
    if port_open "$PG_PORT"; then
        echo "postgres: using $HOST:$PG_PORT"
        return 0
    fi

    ver=$(pg_installed_version)
    if [[ -z $ver ]] || ! command -v pg_ctlcluster >/dev/null; then
        if ! can_apt_install; then
            fail postgres "nothing listens on $HOST:$PG_PORT and no server is installed;" \
                "install Debian package \`postgresql\` or point WEE5_DATABASE_URL at a reachable server and set WEE5_SKIP_INFRA=1"
            return 1
        fi
        echo "postgres: installing Debian package postgresql..."
        if ! apt_install postgresql; then
            fail postgres "apt-get install postgresql failed; see $INFRA_LOG"
            return 1
        fi
        fresh=1
        how=installed
        ver=$(pg_installed_version)
    fi

    # The package's own start may already have brought it up.
    if ! port_open "$PG_PORT"; then
        pg_start "$ver" && fresh=1
    fi
    if ! wait_port "$PG_PORT"; then
        fail postgres "started PostgreSQL $ver but $HOST:$PG_PORT did not answer within ${WAIT_SECONDS}s;" \
            "see /var/log/postgresql/postgresql-$ver-main.log and $INFRA_LOG"
        return 1
    fi
    if [[ $fresh == 1 ]] && ! pg_set_password; then
        fail postgres "$how PostgreSQL $ver on $HOST:$PG_PORT but could not set the postgres password; see $INFRA_LOG"
        return 1
    fi
    echo "postgres: $how PostgreSQL $ver on $HOST:$PG_PORT"
}

# ---------------------------------------------------------------- redis

redis_start() {
    local sfx dir logdir log
    sfx=$(suffix "$REDIS_PORT" 6379)
    dir=/var/lib/redis
    logdir=/var/log/redis
    # Non-root users usually can't write the system dirs; use our scratch dir.
    dir_writable "$dir" || dir="$SCRATCH/redis"
    dir_writable "$logdir" || logdir="$SCRATCH/redis"
    mkdir -p "$dir" "$logdir"
    log="$logdir/wee5$sfx.log"
    REDIS_LOG=$log
    # No persistence: it's a dev/test cache. Explicit pidfile so we never
    # overwrite the pidfile of a system-managed redis.
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
        --save "" --appendonly no --dir "$dir" --logfile "$log" \
        --pidfile "$dir/wee5$sfx.pid" >>"$INFRA_LOG" 2>&1 || true
}

ensure_redis() {
    local how=started
    REDIS_LOG=$INFRA_LOG
    if port_open "$REDIS_PORT"; then
        echo "redis: using $HOST:$REDIS_PORT"
        return 0
    fi

    if ! command -v redis-server >/dev/null; then
        if ! can_apt_install; then
            fail redis "nothing listens on $HOST:$REDIS_PORT and no server is installed;" \
                "install Debian package \`redis-server\` or point WEE5_REDIS_URL at a reachable server and set WEE5_SKIP_INFRA=1"
            return 1
        fi
        echo "redis: installing Debian package redis-server..."
        if ! apt_install redis-server; then
            fail redis "apt-get install redis-server failed; see $INFRA_LOG"
            return 1
        fi
        how=installed
    fi

    # The package's init script may already have started it.
    port_open "$REDIS_PORT" || redis_start
    if ! wait_port "$REDIS_PORT"; then
        fail redis "started redis-server but $HOST:$REDIS_PORT did not answer within ${WAIT_SECONDS}s; see $REDIS_LOG and $INFRA_LOG"
        return 1
    fi
    echo "redis: $how on $HOST:$REDIS_PORT (log: $REDIS_LOG)"
}

# ---------------------------------------------------------------- nats

nats_start() {
    local sfx bin store log pidfile rundir
    sfx=$(suffix "$NATS_PORT" 4222)
    bin=$(command -v nats-server)
    store=/var/lib/nats-server$sfx
    log=/var/log/nats-server$sfx.log
    rundir=/run
    dir_writable "$store" || store="$SCRATCH/nats-server$sfx"
    file_writable "$log" || log="$SCRATCH/nats-server$sfx.log"
    [[ -w $rundir ]] || rundir=$SCRATCH
    mkdir -p "$store"
    pidfile="$rundir/wee5-nats-server$sfx.pid"
    NATS_LOG=$log
    # -js: the services rely on JetStream streams.
    local args=(-a "$HOST" -p "$NATS_PORT" -js -sd "$store" -l "$log")
    if command -v start-stop-daemon >/dev/null; then
        # The pidfile makes --oknodo match only our instance, not any other
        # nats-server running on this machine.
        start-stop-daemon --start --oknodo --background --make-pidfile \
            --pidfile "$pidfile" --exec "$bin" -- "${args[@]}" >>"$INFRA_LOG" 2>&1 || true
    else
        nohup "$bin" "${args[@]}" >>"$INFRA_LOG" 2>&1 &
        echo $! >"$pidfile"
        disown
    fi
}

ensure_nats() {
    local how=started
    NATS_LOG=$INFRA_LOG
    # If something listens we can't cheaply tell whether JetStream is on; trust it.
    if port_open "$NATS_PORT"; then
        echo "nats: using $HOST:$NATS_PORT"
        return 0
    fi

    if ! command -v nats-server >/dev/null; then
        if ! can_apt_install; then
            fail nats "nothing listens on $HOST:$NATS_PORT and no server is installed;" \
                "install Debian package \`nats-server\` or point WEE5_NATS_URL at a reachable JetStream-enabled server and set WEE5_SKIP_INFRA=1"
            return 1
        fi
        echo "nats: installing Debian package nats-server..."
        if ! apt_install nats-server; then
            fail nats "apt-get install nats-server failed; see $INFRA_LOG"
            return 1
        fi
        how=installed
    fi

    port_open "$NATS_PORT" || nats_start
    if ! wait_port "$NATS_PORT"; then
        fail nats "started nats-server but $HOST:$NATS_PORT did not answer within ${WAIT_SECONDS}s; see $NATS_LOG and $INFRA_LOG"
        return 1
    fi
    echo "nats: $how with JetStream on $HOST:$NATS_PORT (log: $NATS_LOG)"
}

# ---------------------------------------------------------------- uv

# True if a working uv is on PATH.
uv_ok() {
    command -v uv >/dev/null && uv --version >/dev/null 2>&1
}

pip_install_uv() {
    local opts
    # Plain install works in a venv/pyenv; --user for non-root; Debian 12's
    # system Python refuses both without --break-system-packages (PEP 668).
    for opts in "" "--user" "--break-system-packages" "--user --break-system-packages"; do
        # shellcheck disable=SC2086  # $opts is intentionally word-split
        python3 -m pip install --quiet $opts uv >>"$INFRA_LOG" 2>&1 && return 0
    done
    return 1
}

ensure_uv() {
    local userbin
    if uv_ok; then
        echo "uv: $(command -v uv) ($(uv --version))"
        return 0
    fi
    if ! command -v python3 >/dev/null; then
        fail uv "not installed and python3 is missing; install Debian package \`python3\` or see https://docs.astral.sh/uv/"
        return 1
    fi
    # Debian's system python3 ships without pip.
    if ! python3 -m pip --version >/dev/null 2>&1 && can_apt_install; then
        apt_install python3-pip || true
    fi
    if ! pip_install_uv; then
        fail uv "not installed and \`python3 -m pip install uv\` failed; see $INFRA_LOG or https://docs.astral.sh/uv/"
        return 1
    fi
    hash -r
    if uv_ok; then
        echo "uv: installed $(command -v uv) ($(uv --version))"
        return 0
    fi
    # A --user install lands in ~/.local/bin, which may not be on PATH; later
    # make steps would not find it, so say exactly what to add.
    userbin="$(python3 -m site --user-base 2>/dev/null)/bin"
    if [[ -x $userbin/uv ]]; then
        fail uv "installed at $userbin/uv but $userbin is not on PATH; add it (export PATH=\"$userbin:\$PATH\")"
    else
        fail uv "pip reported success but no working uv was found; see $INFRA_LOG"
    fi
    return 1
}

# ---------------------------------------------------------------- page tools
# The pages' tests drive Debian's Chromium (Playwright never downloads a browser here), the
# rank cards are drawn with the DejaVu fonts, and `make bench` loads the gateway with wrk.
ensure_page_tools() {
    local missing=()
    command -v chromium >/dev/null || missing+=(chromium)
    [[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)
    command -v wrk >/dev/null || missing+=(wrk)
    if ((${#missing[@]} == 0)); then
        echo "page tools: chromium $(chromium --version 2>/dev/null | awk '{print $2}'), DejaVu fonts, wrk"
        return 0
    fi
    if ! can_apt_install; then
        fail page-tools "missing ${missing[*]}: install the Debian packages ${missing[*]} (needs root and apt-get)"
        return 1
    fi
    if ! apt_install "${missing[@]}"; then
        fail page-tools "apt-get install ${missing[*]} failed; see $INFRA_LOG"
        return 1
    fi
    echo "page tools: installed ${missing[*]}"
}

# ---------------------------------------------------------------- main

# Run every check even if an earlier one failed, so all problems are reported.
ensure_postgres || true
ensure_redis || true
ensure_nats || true
ensure_uv || true
ensure_page_tools || true

if ((${#FAILED[@]})); then
    echo "infra: missing: ${FAILED[*]}" >&2
    exit 1
fi
