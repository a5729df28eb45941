#!/usr/bin/env bash
# Throw-away Redis on loopback for development and tests (Debian's redis-server,
# our own process, not the system service). No persistence: a restart is empty.
#
# Usage: deploy/local/redis.sh start|stop [--purge]|restart|status|logs [-f|N]
#
# Environment:
#   CC_REDIS_PORT   port on 127.0.0.1 (default 6379)
#   CC_LOCAL_DIR    state root; relative paths are taken from the project root
#                   (default <project>/.local); this instance lives in
#                   $CC_LOCAL_DIR/redis-<port>/ (redis.pid, redis.log)
#   CC_REDIS_START_TIMEOUT  seconds to wait for PING (default 20)
#
# Optional authentication and TLS (all off by default):
#   CC_REDIS_ACL_PASSWORD  require this password; with CC_REDIS_ACL_USER it belongs to
#                          that ACL user (all commands and keys) and the default user
#                          is disabled, without it to the default user
#   CC_REDIS_ACL_USER      ACL user name
#   CC_REDIS_TLS_PORT      also serve TLS on this port (clients need no certificate)
#   CC_REDIS_TLS_CERT, CC_REDIS_TLS_KEY  its PEM certificate and key
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

die() { echo "redis.sh: error: $*" >&2; exit 1; }
say() { echo "redis.sh: $*"; }

PORT=${CC_REDIS_PORT:-6379}
[[ "$PORT" =~ ^[0-9]+$ ]] || die "CC_REDIS_PORT must be a number, got '$PORT'"
LOCAL_DIR=${CC_LOCAL_DIR:-.local}
[[ "$LOCAL_DIR" = /* ]] || LOCAL_DIR="$ROOT/$LOCAL_DIR"
INST="$LOCAL_DIR/redis-$PORT"
PIDFILE="$INST/redis.pid"
LOG="$INST/redis.log"
TIMEOUT=${CC_REDIS_START_TIMEOUT:-20}
CONF="$INST/redis.conf"

ACL_USER=${CC_REDIS_ACL_USER:-}
ACL_PASSWORD=${CC_REDIS_ACL_PASSWORD:-}
[[ -z "$ACL_USER" || "$ACL_USER" =~ ^[A-Za-z0-9._-]+$ ]] || die "CC_REDIS_ACL_USER: letters, digits, '.', '_' and '-' only"
[[ -z "$ACL_USER" || -n "$ACL_PASSWORD" ]] || die "CC_REDIS_ACL_USER needs CC_REDIS_ACL_PASSWORD"
TLS_PORT=${CC_REDIS_TLS_PORT:-}
if [[ -n "$TLS_PORT" ]]; then
    [[ "$TLS_PORT" =~ ^[0-9]+$ && "$TLS_PORT" != "$PORT" ]] || die "CC_REDIS_TLS_PORT must be a number other than $PORT, got '$TLS_PORT'"
    [[ -f "${CC_REDIS_TLS_CERT:-}" && -f "${CC_REDIS_TLS_KEY:-}" ]] || die "CC_REDIS_TLS_PORT needs CC_REDIS_TLS_CERT and CC_REDIS_TLS_KEY (PEM files)"
fi

# kill -0 also succeeds for a zombie; a stopped daemon is reparented to PID 1,
# which here may reap it late, so a zombie counts as gone.
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null || true)
    [[ "$state" != Z ]]
}

# Running = pidfile names a live redis-server serving our port (guards against
# a stale pidfile whose pid was reused). Redis retitles itself "redis-server 127.0.0.1:PORT".
redis_pid() {
    local pid
    [[ -f "$PIDFILE" ]] || return 1
    pid=$(<"$PIDFILE")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmdline" =~ redis-server.*:$PORT( |$) ]] || return 1
    echo "$pid"
}

# The password goes through the environment, not the command line (ps).
ping() {
    local user=()
    [[ -z "$ACL_USER" ]] || user=(--user "$ACL_USER")
    [[ "$(REDISCLI_AUTH="$ACL_PASSWORD" redis-cli -h 127.0.0.1 -p "$PORT" "${user[@]}" ping 2>/dev/null)" == PONG ]]
}

# Settings that are off by default, as a config file (mode 600): it holds the
# password as a SHA-256 hash, never in clear, and nothing on the command line.
write_config() {
    : >"$CONF"
    chmod 600 "$CONF"
    if [[ -n "$ACL_PASSWORD" ]]; then
        local hash
        hash=$(printf '%s' "$ACL_PASSWORD" | sha256sum | cut -d' ' -f1)
        if [[ -n "$ACL_USER" ]]; then
            printf 'user default off\nuser %s on #%s ~* &* +@all\n' "$ACL_USER" "$hash" >>"$CONF"
        else
            printf 'user default on #%s ~* &* +@all\n' "$hash" >>"$CONF"
        fi
    fi
    if [[ -n "$TLS_PORT" ]]; then
        printf 'tls-port %s\ntls-cert-file %s\ntls-key-file %s\ntls-auth-clients no\n' \
            "$TLS_PORT" "$CC_REDIS_TLS_CERT" "$CC_REDIS_TLS_KEY" >>"$CONF"
    fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

lock_instance() {
    mkdir -p "$INST"
    exec 9>"$INST/.lock"
    flock -w 60 9 || die "timed out waiting for lock $INST/.lock"
}

cmd_start() {
    lock_instance
    local pid
    if pid=$(redis_pid); then
        say "already running (pid $pid) on 127.0.0.1:$PORT"
        return 0
    fi
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        die "redis-server/redis-cli not found; run deploy/local/setup.sh (or apt-get install redis-server)"
    fi
    rm -f "$PIDFILE"
    port_busy "$PORT" && die "port $PORT is already in use by another process (not this script's redis in $INST); pick another with CC_REDIS_PORT"
    [[ -z "$TLS_PORT" ]] || ! port_busy "$TLS_PORT" || die "TLS port $TLS_PORT is already in use"
    write_config
    echo "==== $(date '+%F %T') start redis on 127.0.0.1:$PORT" >>"$LOG"
    # --save "" / --appendonly no: state is disposable, and nothing is written
    # to disk behind the tests' back. Closing fd 9 keeps our lock out of the daemon.
    redis-server "$CONF" --bind 127.0.0.1 --port "$PORT" --protected-mode yes \
        --daemonize yes --pidfile "$PIDFILE" --logfile "$LOG" --dir "$INST" \
        --save "" --appendonly no 9>&- ||
        die "redis-server failed to start; log: $LOG"
    local i
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        if ping; then
            say "started redis (pid $(<"$PIDFILE")) on 127.0.0.1:$PORT; log: $LOG"
            return 0
        fi
        sleep 0.1
    done
    echo "---- last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    die "redis did not answer PING on 127.0.0.1:$PORT within ${TIMEOUT}s; full log: $LOG"
}

cmd_stop() {
    local purge=${1:-}
    [[ -z "$purge" || "$purge" == --purge ]] || die "unknown option for stop: $purge"
    lock_instance
    local pid i
    if pid=$(redis_pid); then
        say "stopping redis (pid $pid) on 127.0.0.1:$PORT"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            say "still alive after 10s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        say "stopped"
    else
        say "not running on 127.0.0.1:$PORT"
    fi
    rm -f "$PIDFILE"
    if [[ "$purge" == --purge ]]; then
        rm -f "$LOG" "$CONF"
        say "purged $INST"
    fi
}

cmd_status() {
    local pid
    if pid=$(redis_pid); then
        if ping; then
            say "running (pid $pid) on 127.0.0.1:$PORT"
        else
            say "process running (pid $pid) but not answering PING on 127.0.0.1:$PORT; log: $LOG"
        fi
        return 0
    fi
    say "not running on 127.0.0.1:$PORT"
    return 3 # LSB: program is not running
}

cmd_logs() {
    [[ -f "$LOG" ]] || die "no log yet at $LOG"
    if [[ "${1:-}" == -f ]]; then
        exec tail -n 100 -F "$LOG"
    fi
    tail -n "${1:-200}" "$LOG"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop "${2:-}" ;;
restart)
    cmd_stop
    exec 9>&-
    cmd_start
    ;;
reset) cmd_stop --purge ;;
status) cmd_status ;;
logs) cmd_logs "${2:-}" ;;
*)
    echo "usage: $0 start|stop [--purge]|restart|reset|status|logs [-f|N]   (instance dir: $INST)" >&2
    exit 2
    ;;
esac
