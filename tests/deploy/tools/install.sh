#!/usr/bin/env bash
# Builds the Go programs the deployment tests run into <repo>/.local/bin
# (or $CC_TOOLS_BIN): dashboard-linter (Grafana's dashboard linter, pinned in
# go.mod) and composecheck (compose-go, the loader behind `docker compose
# config`). Needs Go >= 1.26 and the Go module proxy; idempotent: a tool is
# rebuilt only when go.mod/go.sum or its source changed.
#
# The dashboard-linter module has no tagged release, so go.mod pins a
# pseudo-version; go.sum (committed) holds its checksums, which the public
# checksum database does not list: GONOSUMDB keeps `go` from asking it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
BIN=${CC_TOOLS_BIN:-$ROOT/.local/bin}
say() { echo "deploy-tools: $*"; }

command -v go >/dev/null 2>&1 || { echo "deploy-tools: error: go not found (Go >= 1.26 needed)" >&2; exit 1; }
mkdir -p "$BIN"
export GONOSUMDB=github.com/grafana/dashboard-linter
export GOFLAGS=-mod=readonly

stamp=$(cat "$HERE/go.mod" "$HERE/go.sum" "$HERE/composecheck/main.go" | sha256sum | cut -d' ' -f1)
if [[ -x "$BIN/dashboard-linter" && -x "$BIN/composecheck" && -f "$BIN/.deploy-tools-stamp" &&
      "$(<"$BIN/.deploy-tools-stamp")" == "$stamp" ]]; then
    say "up to date ($BIN)"
    exit 0
fi
cd "$HERE"
say "go build dashboard-linter"
go build -trimpath -o "$BIN/dashboard-linter" github.com/grafana/dashboard-linter
say "go build composecheck"
go build -trimpath -o "$BIN/composecheck" ./composecheck
echo "$stamp" >"$BIN/.deploy-tools-stamp"
say "done ($BIN)"
