#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time each (default 10s).
# `make test` runs it briefly; `make fuzz FUZZTIME=5m` runs it for minutes. A
# crasher is written by `go test` under the package's testdata/fuzz and then
# stays as a regression case of the ordinary test run.
set -euo pipefail
fuzztime=${1:-10s}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
grep -rlE '^func Fuzz[A-Za-z0-9_]+\(' --include='*_test.go' internal test 2>/dev/null | xargs -r -n1 dirname | sort -u |
while read -r dir; do
	for target in $(grep -hoE '^func Fuzz[A-Za-z0-9_]+' "$dir"/*_test.go | sed 's/^func //'); do
		echo "[fuzz] $target in ./$dir for $fuzztime"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "./$dir"
	done
done
