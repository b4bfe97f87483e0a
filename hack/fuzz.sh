#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given budget each: a duration
# (10s, 5m) or a number of executions (20000x). `make test` runs a count-based
# smoke; `make fuzz FUZZTIME=5m` runs it for minutes. A crasher is written by
# `go test` under the package's testdata/fuzz and then stays as a regression
# case of the ordinary test run.
#
# With a duration, Go 1.26's fuzz coordinator can end a clean run with a bare
# "context deadline exceeded" when a worker is still busy as the time runs out
# (go.dev/issue/75804, fixed in Go 1.27). Such a run wrote no crasher; it is
# reported as a warning after the target's corpus is replayed, and any other
# failure fails the script.
set -euo pipefail
budget=${1:-10s}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

corpus_files() { find "$1/testdata/fuzz/$2" -type f 2>/dev/null | sort || true; }

targets=$(grep -rlE '^func Fuzz[A-Za-z0-9_]+\(' --include='*_test.go' internal test 2>/dev/null | xargs -r -n1 dirname | sort -u)
for dir in $targets; do
	for target in $(grep -hoE '^func Fuzz[A-Za-z0-9_]+' "$dir"/*_test.go | sed 's/^func //'); do
		echo "[fuzz] $target in ./$dir for $budget"
		before=$(corpus_files "$dir" "$target")
		if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$budget" "./$dir" 2>&1 | tee "$log"; then
			continue
		fi
		after=$(corpus_files "$dir" "$target")
		if [[ "$before" == "$after" ]] && grep -q '^    context deadline exceeded$' "$log" &&
			[[ $(grep -c '^--- FAIL' "$log") == 1 ]]; then
			echo "[fuzz] $target: the fuzz coordinator stopped with a deadline error and wrote no crasher (go.dev/issue/75804); replaying its corpus"
			go test -run "^${target}\$" "./$dir"
			continue
		fi
		echo "[fuzz] $target failed" >&2
		exit 1
	done
done
