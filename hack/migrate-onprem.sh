#!/usr/bin/env bash
# Runs the on-prem migration campaign (cmd/berth TestOnPremMigrationZeroFailures): a `berth edge` serves a
# workload's stable name while a `berth serve` controller moves it Docker → Swarm → Docker, then moves it back and
# forth again with the controller SIGKILLed at a random point of each move; a client counts the requests through
# the stable name that failed (the test fails on any). It installs and starts what the run needs when it is
# missing, as hack/test.sh does, and prints the figures (requests sent and failed per move, the phases' durations,
# with and without a crash) at the end:
#   hack/migrate-onprem.sh          20 kill trials
#   hack/migrate-onprem.sh 50       50 kill trials
# BERTH_MIGRATE_SEED fixes the kill delays (the run logs the seed it used); BERTH_MIGRATE_KILL_AT=add|shift|drain
# kills each trial once the edge's route shows the move there instead of after a random delay. The race detector is
# off: the figures are timings.
set -euo pipefail
cd "$(dirname "$0")/.."

kills=${1:-20}
case "$kills" in
  '' | *[!0-9]*) echo "usage: hack/migrate-onprem.sh [kill trials]" >&2; exit 2 ;;
esac

. hack/lib.sh
ensure_git
ensure_docker
ensure_swarm

export BERTH_REQUIRE_DOCKER=1 BERTH_REQUIRE_SWARM=1 BERTH_MIGRATE_KILLS="$kills"
gitconfig=$(mktemp -t berth-gitconfig.XXXXXX)
on_exit "rm -f '$gitconfig'"
export GIT_CONFIG_GLOBAL="$gitconfig" GIT_CONFIG_NOSYSTEM=1
out=$(mktemp -t berth-migrate-onprem.XXXXXX)
on_exit "rm -f '$out'"

# About a minute per move on a loaded 2-core machine, at most; two clean moves, then one per trial.
timeout=$((10 + 2 * kills))m
log "running TestOnPremMigrationZeroFailures with $kills kill trials (timeout $timeout)"
status=0
go test -count=1 -timeout "$timeout" -run '^TestOnPremMigrationZeroFailures$' -v ./cmd/berth 2>&1 | tee "$out" ||
  status=$?

echo
echo "Figures (hack/migrate-onprem.sh $kills):"
grep -o 'migrate-onprem: .*' "$out" | sed 's/^migrate-onprem: /  /' || echo "  none: the test did not get to a move"
exit "$status"
