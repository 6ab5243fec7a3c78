#!/usr/bin/env bash
# Prints the drift figures of every provider: which managed fields and side objects the conformance suite changed
# behind berth's back (through the runtime's own API) and whether the plan saw each one and one apply repaired it,
# then the cost of a List pass (runtime requests and time per pass) from each provider's BenchmarkList.
#   hack/drift-figures.sh              every provider
#   hack/drift-figures.sh aws gcp      some of them
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

printf '%-11s %-8s %-6s %s\n' PROVIDER TAMPERED SEEN FIELDS
total=0; seen=0
for p in "${provs[@]}"; do
  go test -count=1 -run 'TestConformance$/^fielddrift$' -v "./providers/$p/" >"$tmp/$p.log" 2>&1 || true
  n=$(grep -cE -- '--- (PASS|FAIL): TestConformance/fielddrift/' "$tmp/$p.log" || true)
  ok=$(grep -cE -- '--- PASS: TestConformance/fielddrift/' "$tmp/$p.log" || true)
  fields=$(grep -oE -- '--- (PASS|FAIL): TestConformance/fielddrift/[^ ]+' "$tmp/$p.log" |
    sed -E 's#--- PASS: TestConformance/fielddrift/##; s#--- FAIL: TestConformance/fielddrift/(.*)#\1(FAILED)#' | paste -sd' ' -)
  printf '%-11s %-8s %-6s %s\n' "$p" "$n" "$ok" "${fields:-(no fielddrift case ran: see go test output)}"
  total=$((total + n)); seen=$((seen + ok))
done
printf '%-11s %-8s %-6s\n' all "$total" "$seen"

echo
echo "List pass cost (BenchmarkList: runtime requests and time per List pass)"
for p in "${provs[@]}"; do
  # A server's log line can split a result line: keep the name lines and the figures, whatever came between.
  go test -count=1 -run '^$' -bench 'List' -benchtime 20x "./providers/$p/" 2>/dev/null |
    grep -oE '^Benchmark[^ 	]*|[0-9.]+ ns/op.*' | paste -sd' ' - | sed -E "s#(Benchmark)#\n$p: \1#g" | sed '/^$/d' || true
done
rm -rf "$tmp"
