#!/usr/bin/env bash
# Prints the pull-request preview figures:
#   1. PR opened → preview URL answering through the berth binary, with a webhook and with polling only (median and
#      p95 over the runs), and the forge requests of an idle poll (all of them, and those counted against the rate
#      limit): cmd/berth's BenchmarkPreview*.
#   2. Teardown time per runtime: the log line of each provider's TestConformance/preview (Engine.Destroy until the
#      runtime lists the preview no more).
#   hack/preview-figures.sh                 everything
#   hack/preview-figures.sh docker aws      the benchmarks and some runtimes
#   PREVIEW_BENCH_RUNS=5 (default 5)        runs per benchmark; PREVIEW_BENCH=0 skips them
# Needs what hack/test.sh needs (the Docker engine in swarm mode, the cached kube-apiserver); it starts them the
# same way.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh
ensure_docker
ensure_swarm
export BERTH_REQUIRE_DOCKER=1 BERTH_REQUIRE_SWARM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
KUBE_BIN_DIR=$(hack/kube.sh); export KUBE_BIN_DIR BERTH_REQUIRE_KUBE=1

provs=("$@"); [ ${#provs[@]} -gt 0 ] || provs=(docker swarm kubernetes nomad marathon aws gcp azure fake)
tmp=$(mktemp -d) # removed at the end (ensure_swarm owns the EXIT trap)

if [ "${PREVIEW_BENCH:-1}" != 0 ]; then
  echo "PR opened → preview URL answering (berth binary, Docker + ECS emulator, githubemu)"
  go test -count=1 -run '^$' -bench 'BenchmarkPreview' -benchtime "${PREVIEW_BENCH_RUNS:-5}x" -timeout 30m \
    ./cmd/berth/ >"$tmp/bench.log" 2>&1 || { tail -n 40 "$tmp/bench.log"; echo "(benchmarks failed)"; }
  # The figures are custom metrics (ns/op is not reported): ms-median, ms-p95, forge-req/idle-poll (every request of
  # an idle pass) and forge-quota/idle-poll (those counted against the rate limit).
  grep -E '^BenchmarkPreview' "$tmp/bench.log" | tr -s ' \t' ' ' || true
  echo
fi

echo "Preview teardown per runtime (TestConformance/preview: Destroy → gone on the runtime)"
printf '%-11s %-10s %s\n' PROVIDER TEARDOWN DETAIL
for p in "${provs[@]}"; do
  go test -count=1 -run 'TestConformance$/^preview$' -v "./providers/$p/" >"$tmp/$p.log" 2>&1 || true
  line=$(grep -oE 'preview teardown took .*' "$tmp/$p.log" | head -n1 || true)
  if [ -n "$line" ]; then
    took=$(sed -E 's/preview teardown took ([^ ]+).*/\1/' <<<"$line")
    printf '%-11s %-10s %s\n' "$p" "$took" "$(sed -E 's/^preview teardown took [^ ]+ ?//' <<<"$line")"
  elif grep -qE -- '--- SKIP: TestConformance' "$tmp/$p.log"; then
    printf '%-11s %-10s %s\n' "$p" "-" "skipped: $(grep -m1 -A1 -E -- '--- SKIP' "$tmp/$p.log" | tail -n1 | sed 's/^ *//')"
  else
    printf '%-11s %-10s %s\n' "$p" "-" "no timing: $(grep -m1 -E -- '--- FAIL|^FAIL|panic' "$tmp/$p.log" || echo 'see go test output')"
  fi
done
rm -rf "$tmp"
