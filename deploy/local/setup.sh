#!/usr/bin/env bash
# Idempotent local set-up on a Debian 12 machine (developer box or CI), from a
# fresh clone: system packages, Kafka jars, project virtualenv.
#
# Needs: Python 3.11, Java 17+, Maven (only while the Kafka jar cache is empty),
# Go >= 1.26 and the Go module proxy (only while the deployment-test tools in
# .local/bin are missing or stale), and root (or sudo) only when
# redis-server/prometheus are missing.
#
# Environment: CC_PYTHON (interpreter for a new .venv, default python3.11 or
# python3), CC_SETUP_FORCE=1 (re-run pip install even if pyproject is unchanged).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

die() { echo "setup.sh: error: $*" >&2; exit 1; }
say() { echo "setup.sh: $*"; }

# --- system packages -----------------------------------------------------------

# Root is only needed to install packages; a non-root developer with
# everything present never gets here asking for sudo.
SUDO=()
CAN_ROOT=1
if [[ $EUID -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else CAN_ROOT=0; fi
fi

# Services we install but must not run: we start our own on loopback ports.
SERVICES=(redis-server prometheus)

# Stop (and keep stopped) the Debian services if something started them,
# touching only what the init system itself manages.
stop_system_services() {
    local svc
    [[ $CAN_ROOT -eq 1 ]] || return 0
    for svc in "${SERVICES[@]}"; do
        if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
            if systemctl is-enabled --quiet "$svc" 2>/dev/null || systemctl is-active --quiet "$svc" 2>/dev/null; then
                say "disabling system service $svc (we run our own on loopback)"
                "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
            fi
        elif [[ -x "/etc/init.d/$svc" ]]; then
            # No systemd (containers): the sysv script's status/stop go by its own pidfile.
            if "${SUDO[@]}" "/etc/init.d/$svc" status >/dev/null 2>&1; then
                say "stopping system service $svc (we run our own on loopback)"
                "${SUDO[@]}" "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
            fi
            if command -v update-rc.d >/dev/null 2>&1; then
                "${SUDO[@]}" update-rc.d "$svc" disable >/dev/null 2>&1 || true
            fi
        fi
    done
}

apt_install() {
    local pkgs=("$@") policy_added=0
    [[ $CAN_ROOT -eq 1 ]] || die "missing ${pkgs[*]}; not root and no sudo: as root run apt-get install -y ${pkgs[*]}"
    # policy-rc.d exit 101 = "don't start services from maintainer scripts";
    # without it, installing redis-server would start one on 6379 (possibly
    # clashing with a developer's own). Only add it if the machine has none.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# temporary, from cc-kpi deploy/local/setup.sh\nexit 101\n' |
            "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${SUDO[@]}" chmod 755 /usr/sbin/policy-rc.d
        policy_added=1
    fi
    if [[ $policy_added -eq 1 ]]; then
        # shellcheck disable=SC2064 # expand now: remove exactly what we added
        trap "${SUDO[*]} rm -f /usr/sbin/policy-rc.d" EXIT
    fi

    export DEBIAN_FRONTEND=noninteractive
    local apt=("${SUDO[@]}" apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    # Update the package lists once, only if they can't offer the packages;
    # a stale list (404 on download) gets one update and one retry.
    local need_update=0 p policy
    for p in "${pkgs[@]}"; do
        # Not piped into grep -q: with pipefail its early exit would SIGPIPE apt-cache.
        policy=$(apt-cache policy "$p" 2>/dev/null || true)
        [[ "$policy" =~ Candidate:\ [^\(] ]] || need_update=1
    done
    if [[ $need_update -eq 1 ]]; then
        say "apt-get update"
        "${apt[@]}" update
    fi
    say "apt-get install ${pkgs[*]}"
    if ! "${apt[@]}" install --no-install-recommends "${pkgs[@]}"; then
        [[ $need_update -eq 0 ]] || die "apt-get install ${pkgs[*]} failed"
        say "install failed with the cached package lists; apt-get update and retry"
        "${apt[@]}" update
        "${apt[@]}" install --no-install-recommends "${pkgs[@]}" || die "apt-get install ${pkgs[*]} failed"
    fi
    if [[ $policy_added -eq 1 ]]; then
        "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
}

PY=${CC_PYTHON:-}
if [[ -z "$PY" ]]; then
    PY=$(command -v python3.11 || command -v python3 || true)
fi
[[ -n "$PY" ]] || die "python3.11 not found (the project needs Python 3.11)"
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    die "$PY is Python $("$PY" -c 'import sys; print(*sys.version_info[:3], sep=".")'), the project needs 3.11 (set CC_PYTHON)"

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# tests/security generate their CA and certificates with it.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# promtool and prometheus (tests/deploy: rule unit tests, a live Prometheus).
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    missing+=(prometheus)
fi
# The worker's allocator, found as streams/allocator.py finds it.
"$PY" -c 'import ctypes.util, sys; sys.exit(ctypes.util.find_library("jemalloc") is None)' ||
    missing+=(libjemalloc2)
# bench/compiled.py compiles with mypyc: a C compiler and Python's headers.
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
"$PY" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' ||
    missing+=(python3.11-dev)
# Debian's own python3.11 can't create venvs without its venv package.
if [[ ! -x "$ROOT/.venv/bin/python" ]] && ! "$PY" -c 'import ensurepip' 2>/dev/null; then
    missing+=(python3.11-venv)
fi
if ((${#missing[@]})); then
    apt_install "${missing[@]}"
else
    say "system packages present (redis-server, prometheus, promtool, libjemalloc2, gcc)"
fi
stop_system_services

# --- Java / Kafka jars -------------------------------------------------------

command -v java >/dev/null 2>&1 || die "java not found: install a JDK 17 (Debian: apt-get install openjdk-17-jre-headless)"
"$SCRIPT_DIR/kafka.sh" fetch

# --- Python virtualenv -------------------------------------------------------

VENV="$ROOT/.venv"
if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating $VENV with $PY"
    "$PY" -m venv "$VENV"
fi
# Reinstall only when pyproject.toml changed since the last successful install
# (pip's resolver alone takes several seconds even when all is satisfied).
STAMP="$VENV/.cc-kpi-setup-stamp"
want=$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)
if [[ "${CC_SETUP_FORCE:-0}" == 1 || ! -f "$STAMP" || "$(<"$STAMP")" != "$want" ]]; then
    say "pip install -e '.[test]'"
    (cd "$ROOT" && "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e '.[test]')
    echo "$want" >"$STAMP"
else
    say "venv up to date ($VENV)"
fi

# --- Go tools of the deployment tests -------------------------------------------

# dashboard-linter and composecheck into .local/bin; install.sh rebuilds only
# when tests/deploy/tools/ changed (about 2 minutes with an empty Go cache).
if command -v go >/dev/null 2>&1; then
    bash "$ROOT/tests/deploy/tools/install.sh"
elif [[ "${CI:-}" == true ]]; then
    die "go not found: CI needs Go >= 1.26 for tests/deploy/tools/install.sh"
else
    say "go not found: dashboard-linter and composecheck not built (their tests skip; install Go >= 1.26)"
fi
say "done"
