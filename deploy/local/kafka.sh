#!/usr/bin/env bash
# Single-node Apache Kafka 4.x (KRaft, combined broker+controller) on loopback,
# for development and tests. No Docker, no system service: a plain JVM started
# from jars that Maven fetches once into a cache (deploy/kafka/pom.xml).
#
# Usage: deploy/local/kafka.sh start|stop [--purge]|restart|reset|status|logs [-f]|fetch
#
# Environment:
#   CC_KAFKA_PORT             client listener port (default 9092)
#   CC_KAFKA_CONTROLLER_PORT  KRaft controller port (default CC_KAFKA_PORT+1)
#   CC_LOCAL_DIR              state root; relative paths are taken from the project
#                             root (default <project>/.local); this instance lives in
#                             $CC_LOCAL_DIR/kafka-<port>/ (data/, kafka.log, kafka.pid)
#   CC_CACHE_DIR              jar cache (default ~/.cache/cc-kpi); jars go to
#                             $CC_CACHE_DIR/kafka-<version>/libs
#   CC_KAFKA_HEAP             JVM heap flags (default "-Xms256m -Xmx512m")
#   CC_KAFKA_START_TIMEOUT    seconds to wait for the broker to serve requests and
#                             coordinate consumer groups (default 90)
#   JAVA                      java binary (default: java on PATH; needs 17+)
#
# Optional SASL_SSL listener (off unless CC_KAFKA_SASL_SSL_PORT is set; the
# PLAINTEXT listener stays, for the broker itself and the readiness probe):
#   CC_KAFKA_SASL_SSL_PORT          port of a SASL_SSL listener (SCRAM-SHA-512 over TLS)
#   CC_KAFKA_SSL_KEYSTORE           PKCS12 keystore with the server key and certificate
#   CC_KAFKA_SSL_KEYSTORE_PASSWORD  its password
#   CC_KAFKA_SCRAM_USERS            SCRAM-SHA-512 users, "name=password" separated by
#                                   spaces; created when the storage is formatted (the
#                                   first start, or after `reset`)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
POM="$ROOT/deploy/kafka/pom.xml"

die() { echo "kafka.sh: error: $*" >&2; exit 1; }
say() { echo "kafka.sh: $*"; }

# The pom is the single source of truth for the version (names the cache dir).
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\([^<]*\)</kafka.version>.*:\1:p' "$POM" | head -n1)
[[ -n "$KAFKA_VERSION" ]] || die "cannot read <kafka.version> from $POM"

CACHE_DIR=${CC_CACHE_DIR:-$HOME/.cache/cc-kpi}
LIBS_DIR="$CACHE_DIR/kafka-$KAFKA_VERSION/libs"

PORT=${CC_KAFKA_PORT:-9092}
[[ "$PORT" =~ ^[0-9]+$ ]] || die "CC_KAFKA_PORT must be a number, got '$PORT'"
CPORT=${CC_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
[[ "$CPORT" =~ ^[0-9]+$ ]] || die "CC_KAFKA_CONTROLLER_PORT must be a number, got '$CPORT'"
[[ "$CPORT" != "$PORT" ]] || die "controller port must differ from the listener port ($PORT)"

LOCAL_DIR=${CC_LOCAL_DIR:-.local}
[[ "$LOCAL_DIR" = /* ]] || LOCAL_DIR="$ROOT/$LOCAL_DIR"
INST="$LOCAL_DIR/kafka-$PORT"
DATA="$INST/data"
LOG="$INST/kafka.log"
PIDFILE="$INST/kafka.pid"
CONF="$INST/server.properties"
LOG4J="$INST/log4j2.properties"

SPORT=${CC_KAFKA_SASL_SSL_PORT:-}
if [[ -n "$SPORT" ]]; then
    [[ "$SPORT" =~ ^[0-9]+$ ]] || die "CC_KAFKA_SASL_SSL_PORT must be a number, got '$SPORT'"
    [[ "$SPORT" != "$PORT" && "$SPORT" != "$CPORT" ]] || die "the SASL_SSL port must differ from the other ports"
    KEYSTORE=${CC_KAFKA_SSL_KEYSTORE:-}
    [[ -f "$KEYSTORE" ]] || die "CC_KAFKA_SASL_SSL_PORT needs CC_KAFKA_SSL_KEYSTORE, a PKCS12 file (got '$KEYSTORE')"
    [[ -n "${CC_KAFKA_SSL_KEYSTORE_PASSWORD:-}" ]] || die "CC_KAFKA_SSL_KEYSTORE needs CC_KAFKA_SSL_KEYSTORE_PASSWORD"
fi
SCRAM_USERS=${CC_KAFKA_SCRAM_USERS:-}

HEAP=${CC_KAFKA_HEAP:--Xms256m -Xmx512m}
TIMEOUT=${CC_KAFKA_START_TIMEOUT:-90}
JAVA=${JAVA:-java}

# --- helpers -----------------------------------------------------------------

# kill -0 also succeeds for a zombie; a stopped daemon is reparented to PID 1,
# which here may reap it late, so a zombie counts as gone.
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null || true)
    [[ "$state" != Z ]]
}

# Running = pidfile names a live process that is *our* broker (guards against
# a stale pidfile whose pid was reused by something else).
broker_pid() {
    local pid
    [[ -f "$PIDFILE" ]] || return 1
    pid=$(<"$PIDFILE")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmdline" == *"kafka.Kafka $CONF"* ]] || return 1
    echo "$pid"
}

port_busy() {
    # bash's /dev/tcp: a successful connect means something already listens.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Serialise start/stop of one instance (fd 9) and filling the shared jar
# cache (fd 8), so parallel callers (make + pytest fixtures) don't race.
lock_instance() {
    mkdir -p "$INST"
    exec 9>"$INST/.lock"
    flock -w 300 9 || die "timed out waiting for lock $INST/.lock"
}
lock_cache() {
    mkdir -p "$CACHE_DIR/kafka-$KAFKA_VERSION"
    exec 8>"$CACHE_DIR/kafka-$KAFKA_VERSION/.lock"
    flock -w 600 8 || die "timed out waiting for lock on the jar cache"
}

classpath() { echo "$LIBS_DIR/*"; }

java_check() {
    command -v "$JAVA" >/dev/null 2>&1 || die "java not found (need a JDK/JRE 17+; Debian: apt-get install openjdk-17-jre-headless)"
    local major
    major=$("$JAVA" -XshowSettings:properties -version 2>&1 |
        sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')
    [[ -n "$major" && "$major" -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17+, '$JAVA' is version '${major:-unknown}'"
}

# --- fetch -------------------------------------------------------------------

# The cache is complete if its marker records the pom it was fetched with, so
# editing the pom (say a log4j bump) refetches, while the path stays per version.
pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }
libs_present() {
    [[ -f "$LIBS_DIR/.complete" && -f "$LIBS_DIR/kafka_2.13-$KAFKA_VERSION.jar" &&
        "$(<"$LIBS_DIR/.complete")" == "$(pom_hash)" ]]
}

cmd_fetch() {
    if libs_present; then
        return 0 # cached: no Maven call at all
    fi
    lock_cache
    libs_present && return 0 # another process fetched while we waited
    command -v mvn >/dev/null 2>&1 || die "mvn not found; needed once to fetch Kafka $KAFKA_VERSION jars (Debian: apt-get install maven)"
    say "fetching Kafka $KAFKA_VERSION jars with Maven into $LIBS_DIR ..."
    local tmp started
    started=$(date +%s)
    # Download into a temp dir and rename, so an interrupted fetch never
    # leaves a half-filled cache that would later be trusted.
    tmp=$(mktemp -d "$CACHE_DIR/kafka-$KAFKA_VERSION/libs.tmp.XXXXXX")
    if ! mvn -q -B -f "$POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.mvn.log" 2>&1; then
        cat "$tmp.mvn.log" >&2
        rm -rf "$tmp" "$tmp.mvn.log"
        die "Maven could not fetch the Kafka jars (see output above)"
    fi
    rm -f "$tmp.mvn.log"
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "Maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing in $tmp"
    pom_hash >"$tmp/.complete"
    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
    say "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars in $(($(date +%s) - started))s"
}

# --- config ------------------------------------------------------------------

# The listener lines of server.properties: PLAINTEXT (+ SASL_SSL when asked for).
listener_config() {
    if [[ -z "$SPORT" ]]; then
        cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
EOF
        return
    fi
    cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT,SASL_SSL://127.0.0.1:$SPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_SSL://127.0.0.1:$SPORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$KEYSTORE
listener.name.sasl_ssl.ssl.keystore.password=$CC_KAFKA_SSL_KEYSTORE_PASSWORD
EOF
}

write_config() {
    mkdir -p "$DATA"
    # It may hold the keystore password.
    : >"$CONF"
    chmod 600 "$CONF"
    cat >"$CONF" <<EOF
# Generated by deploy/local/kafka.sh on every start; edit the script, not this file.
# Single node: broker and KRaft controller in one JVM, everything on loopback.
process.roles=broker,controller
node.id=1
# Static quorum of one voter: survives a change of the controller port, and
# needs no --standalone bootstrap at format time.
controller.quorum.voters=1@127.0.0.1:$CPORT
$(listener_config)
log.dirs=$DATA

# Topics are created explicitly (by the app or the tests), never by a typo.
auto.create.topics.enable=false
num.partitions=4
default.replication.factor=1
min.insync.replicas=1

# Internal topics must fit one broker, or groups/transactions never come up.
# Fewer partitions than the default 50 keep first group join / first
# transaction fast on a small machine.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Tests join groups constantly: no 3 s wait for more members.
group.initial.rebalance.delay.ms=0

# Small machine (2 cores): fewer threads than the defaults.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4

# Index files are created sparse at their full size and mapped; the first
# entry written to one faults in a read-ahead window of zeros (8 MiB on our
# disks). At 10 MiB a file, a pipeline's first writes to ~100 partitions had
# the broker zero-fill gigabytes for 1.5 s (docs/benchmarks.md, "The start
# hold"). 1 MiB still indexes 350 MiB or more of log per segment.
log.index.size.max.bytes=1048576
EOF
    # Kafka 4 logs through log4j2 (log4j 1 is gone); everything goes to
    # stdout, which start redirects into kafka.log. log4j2's own shutdown hook
    # would close logging before Kafka's hook has logged its shutdown.
    cat >"$LOG4J" <<'EOF'
status = warn
shutdownHook = disable
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
}

java_opts() {
    # shellcheck disable=SC2206 # heap flags are meant to word-split
    local heap=($HEAP)
    printf '%s\n' "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
        -Djava.awt.headless=true -Dlog4j2.configurationFile="$LOG4J"
}

format_storage() {
    local cid
    # Kafka cluster ids are 16 random bytes, base64url without padding; avoid a
    # leading '-' that the CLI would read as an option.
    cid=$(python3 -c 'import base64, secrets
while True:
    c = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
    if not c.startswith("-"):
        print(c)
        break')
    say "formatting $DATA (cluster id $cid)"
    local opts users scram=() user
    mapfile -t opts < <(java_opts)
    read -ra users <<<"$SCRAM_USERS"
    for user in "${users[@]}"; do
        [[ "$user" =~ ^[A-Za-z0-9._-]+=[^\",]+$ ]] || die "CC_KAFKA_SCRAM_USERS: expected name=password entries (no quotes or commas in passwords)"
        scram+=(--add-scram "SCRAM-SHA-512=[name=${user%%=*},password=\"${user#*=}\"]")
    done
    if ! "$JAVA" "${opts[@]}" -cp "$(classpath)" kafka.tools.StorageTool format \
        -t "$cid" -c "$CONF" "${scram[@]}" >>"$LOG" 2>&1; then
        show_failure
        # A half-formatted dir would be skipped (meta.properties) next time.
        rm -rf "$DATA"
        die "storage format failed; full log: $LOG"
    fi
}

# Ready = the broker answers a Metadata request and lists itself (it has caught
# up with the controller, opened request processing and been unfenced), and
# finds a consumer group's coordinator. The first FindCoordinator on a new
# broker creates __consumer_offsets and answers COORDINATOR_NOT_AVAILABLE
# until it exists: asked here, so a worker started next does not log an ERROR.
# Plain stdlib python so it also works before the project venv exists.
probe() {
    python3 - "$PORT" <<'EOF'
import socket
import struct
import sys

port = int(sys.argv[1])
client = b"cc-kpi-probe"


def call(s: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> bytes:
    """One request (header v1), its response body (header v0 checked)."""
    req = struct.pack(">hhih", api_key, version, corr, len(client)) + client + body
    s.sendall(struct.pack(">i", len(req)) + req)
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack_from(">i", buf)[0]:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(1)
        buf += chunk
    if struct.unpack_from(">i", buf, 4)[0] != corr:
        sys.exit(1)
    return buf[8:]


try:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.settimeout(3)
        # Metadata v4: topics=null, allow_auto_topic_creation=false.
        meta = call(s, 3, 4, 7, struct.pack(">i?", -1, False))
        # FindCoordinator v2: key, key_type 0 (a consumer group).
        coord = call(s, 10, 2, 8, struct.pack(">h", len(client)) + client + struct.pack(">b", 0))
except OSError:
    sys.exit(1)
# Metadata: throttle_time_ms, brokers array length. FindCoordinator:
# throttle_time_ms, error_code.
n_brokers = struct.unpack_from(">ii", meta)[1]
error = struct.unpack_from(">ih", coord)[1]
sys.exit(0 if n_brokers > 0 and error == 0 else 1)
EOF
}

# On failure show what matters: the errors of this run (the log is appended
# across runs, a '====' line marks each start) and its last lines.
show_failure() {
    # This run's lines start at its "====" header (the log is appended across
    # runs, and a broker replaying a long metadata log writes tens of MB).
    local from
    from=$(grep -n '^==== ' "$LOG" 2>/dev/null | tail -n 1 | cut -d: -f1 || true)
    echo "---- errors in this run of $LOG:" >&2
    tail -n +"${from:-1}" "$LOG" 2>/dev/null |
        grep -E '^\[[^]]*\] (ERROR|FATAL) |^[A-Za-z0-9_.$]+(Exception|Error)(:|$)|^Error|^Exception' |
        tail -n 10 >&2 || echo "(none)" >&2
    echo "---- last lines:" >&2
    tail -n +"${from:-1}" "$LOG" 2>/dev/null | tail -n 15 >&2
}

# --- commands ----------------------------------------------------------------

cmd_start() {
    lock_instance
    local pid
    if pid=$(broker_pid); then
        say "already running (pid $pid) on 127.0.0.1:$PORT"
        return 0
    fi
    rm -f "$PIDFILE"
    port_busy "$PORT" && die "port $PORT is already in use by another process (not this script's broker in $INST); pick another with CC_KAFKA_PORT"
    port_busy "$CPORT" && die "controller port $CPORT is already in use; pick another with CC_KAFKA_CONTROLLER_PORT"
    java_check
    cmd_fetch
    write_config
    # The log is appended across runs (each dumps ~300 KB of config): keep one
    # previous generation once it passes 50 MB.
    if [[ -f "$LOG" ]] && (($(stat -c %s "$LOG") > 50 * 1024 * 1024)); then
        mv -f "$LOG" "$LOG.1"
    fi
    echo "==== $(date '+%F %T') start Kafka $KAFKA_VERSION on 127.0.0.1:$PORT (controller $CPORT)" >>"$LOG"
    [[ -f "$DATA/meta.properties" ]] || format_storage

    local opts started
    mapfile -t opts < <(java_opts)
    started=$(date +%s)
    # setsid: own session, so a Ctrl-C in the terminal that ran `make test`
    # does not kill the broker mid-write (the caller's cleanup stops it).
    # The inner shell writes its own pid and execs java, so the pidfile is
    # the JVM's pid whether or not setsid forks (written atomically, so a
    # reader never sees it empty). Our lock fds are closed so
    # the broker does not hold them for its lifetime.
    (
        cd "$INST"
        # shellcheck disable=SC2016 # $$ is meant for the inner shell
        exec setsid bash -c 'echo $$ >"$1.tmp" && mv -f "$1.tmp" "$1"; shift; exec "$@"' _ "$PIDFILE" \
            "$JAVA" "${opts[@]}" -cp "$(classpath)" kafka.Kafka "$CONF" \
            </dev/null >>"$LOG" 2>&1 8>&- 9>&-
    ) &
    local deadline=$((started + TIMEOUT))
    while :; do
        sleep 0.5
        if ! pid=$(broker_pid); then
            # The pidfile may not be written yet in the first instants.
            if [[ ! -f "$PIDFILE" ]] && (($(date +%s) < started + 5)); then continue; fi
            show_failure
            die "Kafka exited during start-up; full log: $LOG"
        fi
        if probe; then
            say "started Kafka $KAFKA_VERSION (pid $pid) on 127.0.0.1:$PORT in $(($(date +%s) - started))s; log: $LOG"
            return 0
        fi
        if (($(date +%s) >= deadline)); then
            show_failure
            kill -TERM "$pid" 2>/dev/null || true
            die "Kafka did not accept requests on 127.0.0.1:$PORT within ${TIMEOUT}s (pid $pid sent SIGTERM); full log: $LOG"
        fi
    done
}

cmd_stop() {
    local purge=${1:-}
    [[ -z "$purge" || "$purge" == --purge ]] || die "unknown option for stop: $purge"
    lock_instance
    local pid
    if pid=$(broker_pid); then
        say "stopping Kafka (pid $pid) on 127.0.0.1:$PORT"
        kill -TERM "$pid" 2>/dev/null || true
        # Controlled shutdown of a single node is a few seconds; don't hang forever.
        local i
        for ((i = 0; i < 60; i++)); do
            alive "$pid" || break
            sleep 0.5
        done
        if alive "$pid"; then
            say "still alive after 30s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 20; i++)); do
                alive "$pid" || break
                sleep 0.25
            done
        fi
        say "stopped"
    else
        say "not running on 127.0.0.1:$PORT"
    fi
    rm -f "$PIDFILE"
    if [[ "$purge" == --purge ]]; then
        # Remove everything but the lock we hold; the data dir is rebuilt on start.
        rm -rf "$DATA" "$LOG" "$CONF" "$LOG4J"
        say "purged $INST"
    fi
}

cmd_status() {
    local pid
    if pid=$(broker_pid); then
        if probe; then
            say "running (pid $pid) on 127.0.0.1:$PORT, controller 127.0.0.1:$CPORT, Kafka $KAFKA_VERSION"
        else
            say "process running (pid $pid) but not answering on 127.0.0.1:$PORT yet; log: $LOG"
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

usage() {
    cat >&2 <<EOF
usage: $0 start|stop [--purge]|restart|reset|status|logs [-f|N]|fetch
  instance dir: $INST   jars: $LIBS_DIR
EOF
    exit 2
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop "${2:-}" ;;
restart)
    cmd_stop
    exec 9>&- # release the lock before start takes it again
    cmd_start
    ;;
reset) cmd_stop --purge ;;
status) cmd_status ;;
logs) cmd_logs "${2:-}" ;;
fetch)
    cmd_fetch
    say "Kafka $KAFKA_VERSION jars in $LIBS_DIR"
    ;;
*) usage ;;
esac
