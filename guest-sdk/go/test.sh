#!/usr/bin/env bash
# Runs a Go weir plugin's tests natively with `go test`:  test.sh PROJECT
set -euo pipefail
cd "$1"
go test ./...
