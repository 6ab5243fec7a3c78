#!/usr/bin/env bash
# Prints render and render+plan time and peak memory for generated repositories of 1,000 and 10,000 workloads,
# with `cue export` of the same files as the reference (the cue command from the cuelang.org/go module).
#   hack/bench-render.sh [N ...]      default: 1000 10000
# Plan observes the local Docker engine (nothing runs for the instance it uses, so every workload is a create).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/berth" ./cmd/berth
go build -o "$tmp/cue" cuelang.org/go/cmd/cue

# measure NAME CMD...: wall seconds and peak resident memory of one run (the best of three by time).
measure() {
  local name=$1; shift
  local best=""
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o "$tmp/time" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }
    read -r secs kib <"$tmp/time"
    if [ -z "$best" ] || awk "BEGIN{exit !($secs < ${best%% *})}"; then best="$secs $kib"; fi
  done
  read -r secs kib <<<"$best"
  printf '%-8s %-22s %8.2f s %9.1f MiB\n' "$n" "$name" "$secs" "$(awk "BEGIN{print $kib/1024}")"
}

printf '%-8s %-22s %10s %13s\n' workloads command time peak-rss
for n in "${sizes[@]}"; do
  go run ./hack/genrepo -n "$n" -o "$tmp/repo$n"
  measure "cue export" "$tmp/cue" export "$tmp"/repo"$n"/*.cue
  measure "berth render -o json" "$tmp/berth" render "$tmp/repo$n" -o json
  measure "berth plan -o json" "$tmp/berth" plan "$tmp/repo$n" -o json --instance berth-bench --max-replicas 1000
done
