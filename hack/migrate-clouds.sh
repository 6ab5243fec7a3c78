#!/usr/bin/env bash
# Runs cmd/berth TestCloudMigrationBehindDNS RUNS times: a workload behind one stable name moves AWS → GCP → Azure,
# then toward GCP again with the new copy failing its health check at half the traffic, once per DNS router
# (route53, clouddns, azuredns), against the cloud and DNS emulators on loopback (no Docker, no network), while a
# looker resolves the name and checks every answer against the clouds. It prints the figures each run logs (looks
# and distinct answers per move, the phases' durations, the time from a member's last answer to its copy's
# deletion) and fails on the first failed run.
#
#   hack/migrate-clouds.sh [RUNS]          default 3, without the race detector (the figures are timings)
#   BERTH_RACE=1 hack/migrate-clouds.sh    with it
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
case "$runs" in
  '' | *[!0-9]*) echo "usage: hack/migrate-clouds.sh [RUNS]" >&2; exit 2 ;;
esac
race=()
[ "${BERTH_RACE:-}" = 1 ] && race=(-race)
go test "${race[@]}" -count="$runs" -timeout 30m -run '^TestCloudMigrationBehindDNS$' -v ./cmd/berth/ |
	grep -v -e '^            time=' -e 'TLS handshake error' -e '^=== RUN'
