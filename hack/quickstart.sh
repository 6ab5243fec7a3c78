#!/usr/bin/env bash
# Runs the controller on the bundled example against the local Docker engine:
# builds the example image from Go source (no registry needed), then serves examples/quickstart.
# The web workload answers on http://127.0.0.1:8080/ once it is up; status on http://127.0.0.1:7070/api/v1/status.
# Edit examples/quickstart/berth.cue while it runs and the change is applied.
set -euo pipefail
cd "$(dirname "$0")/.."

. hack/lib.sh
ensure_docker

go run ./hack/buildimage -pkg ./examples/quickstart/app -tag berth-example/app:v1
exec go run ./cmd/berth serve --repo ./examples/quickstart --branch main --interval 10s "$@"
