#!/usr/bin/env bash
# Runs every test of the project, integration tests against the real Docker engine included.
# It installs and starts what the tests need when it is missing, so it works on a fresh machine:
#   hack/test.sh            all tests, with the race detector
#   hack/test.sh -run X     extra arguments go to go test
set -euo pipefail
cd "$(dirname "$0")/.."

. hack/lib.sh
ensure_git
ensure_sshd
ensure_docker
ensure_swarm
ensure_registry

export BERTH_REQUIRE_DOCKER=1 BERTH_REQUIRE_SSHD=1 BERTH_REQUIRE_GPG=1 BERTH_REQUIRE_SWARM=1 BERTH_REQUIRE_REGISTRY=1
# A real kube-apiserver and etcd, built from Go modules once and cached by version (minutes cold, seconds after).
if [ -x hack/kube.sh ]; then
  KUBE_BIN_DIR=$(hack/kube.sh)
  export KUBE_BIN_DIR BERTH_REQUIRE_KUBE=1
fi
# Gitea's own server, built from its Go module once and cached by version (about 3.5 minutes cold, instant after).
if [ -x hack/gitea.sh ]; then
  BERTH_GITEA_BIN=$(hack/gitea.sh)
  export BERTH_GITEA_BIN BERTH_REQUIRE_GITEA=1
fi
# Hermetic: never read the developer's git configuration. An empty file of our own, not /dev/null: a program that
# runs `git config --global` (Gitea does) would replace /dev/null with a plain file, as root.
gitconfig=$(mktemp -t berth-gitconfig.XXXXXX)
on_exit 'rm -f "$gitconfig"'
export GIT_CONFIG_GLOBAL="$gitconfig" GIT_CONFIG_NOSYSTEM=1

go vet ./...
go test -race -count=1 -timeout 60m "$@" ./...
