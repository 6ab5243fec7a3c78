#!/usr/bin/env bash
# The full chaos campaign of the preview controller: randomized open/push/label/close sequences with forge outages
# of every kind (5xx, HTML bodies, truncated and empty pages, timeouts, 401, secondary limits, 429) on a fake clock.
# CI runs the bounded mode (200 runs, `go test ./reconciler/preview/`); this runs RUNS of them (default 5000), with
# the race detector.
#
#   hack/chaos.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5000}"
BERTH_CHAOS_RUNS="$runs" go test -race -count=1 -timeout 2h -run '^TestChaos$' -v ./reconciler/preview/ |
	grep -v -e '^=== RUN' -e '^    --- PASS' -e '^--- PASS'
