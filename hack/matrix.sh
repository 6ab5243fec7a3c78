#!/usr/bin/env bash
# Runs the portability matrix (cmd/berth TestPortabilityMatrix: the quickstart's web workload on a target of each
# type, real Docker, Swarm and kube-apiserver, emulators for the clouds, Nomad and Marathon) and regenerates its table
# in docs/providers.md (the block between the portability-matrix markers). It installs and starts what the run needs
# when it is missing, as hack/test.sh does:
#   hack/matrix.sh            run and rewrite the table
#   hack/matrix.sh -check     run and fail when the table is out of date (what hack/test.sh does)
set -euo pipefail
cd "$(dirname "$0")/.."

. hack/lib.sh
ensure_git
ensure_docker
ensure_swarm

export BERTH_REQUIRE_DOCKER=1 BERTH_REQUIRE_SWARM=1
KUBE_BIN_DIR=$(hack/kube.sh)
export KUBE_BIN_DIR BERTH_REQUIRE_KUBE=1
gitconfig=$(mktemp -t berth-gitconfig.XXXXXX)
on_exit "rm -f '$gitconfig'"
export GIT_CONFIG_GLOBAL="$gitconfig" GIT_CONFIG_NOSYSTEM=1

if [ "${1:-}" = "-check" ]; then
  shift
else
  export BERTH_UPDATE_MATRIX=1
fi
go test -race -count=1 -timeout 10m -run '^TestPortabilityMatrix(Doc)?$' -v "$@" ./cmd/berth
