//go:build tools

// Package tools pins the Go programs the deployment tests run. Build them with
// install.sh (next to this file); the tests never build or download anything.
package tools

import _ "github.com/grafana/dashboard-linter"
