#!/usr/bin/env bash
# The full crash campaign of the migration state machine: moves AWS → GCP on fake runtimes and a fake router, on a
# fake clock, with the engine killed at random points (and the new copy failing at random), checking at every
# point that clients are only sent to ready copies and that every move ends with one copy, served alone. CI runs
# the bounded mode (200 trials, `go test ./reconciler/`); this runs TRIALS of them (default 5000), with the race
# detector.
#
#   hack/migrate-campaign.sh [TRIALS]
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-5000}"
BERTH_MIGRATE_TRIALS="$trials" go test -race -count=1 -timeout 2h -run '^TestMigrationCrashCampaign$' -v ./reconciler/ |
	grep -v -e '^=== RUN' -e '^    --- PASS' -e '^--- PASS'
