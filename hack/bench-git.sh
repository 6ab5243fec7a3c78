#!/usr/bin/env bash
# Prints wall time and peak memory of berth's Git fetch (repos package, through hack/benchgit) against `git fetch`
# for the same update of a generated repository: the first clone, then an incremental fetch of N new commits.
#   hack/bench-git.sh [COMMITS [NEW [FILES]]]     default: 50000 10 2000
# The repository is made with `git fast-import` from a generated stream and served over file://, so both clients
# talk to the same local git-upload-pack.
set -euo pipefail
cd "$(dirname "$0")/.."
commits=${1:-50000} new=${2:-10} files=${3:-2000}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/benchgit" ./hack/benchgit
export HOME="$tmp/home" GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"

# stream FIRST COUNT [PARENT]: a fast-import stream of COUNT commits on main, each rewriting one of $files files.
stream() {
  awk -v first="$1" -v count="$2" -v parent="${3:-}" -v files="$files" 'BEGIN {
    for (i = first; i < first + count; i++) {
      msg = "commit " i
      body = "workload_" (i % files) ": { image: \"app:" i "\", replicas: " (i % 7 + 1) " }\n"
      printf "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n", i + 1, 1600000000 + i
      printf "data %d\n%s\n", length(msg), msg
      if (i == first && parent != "") printf "from %s\n", parent
      printf "M 100644 inline envs/prod/w%05d.cue\ndata %d\n%s\n", i % files, length(body), body
    }
  }'
}

git init -q --bare "$tmp/origin.git"
stream 0 "$commits" | git -C "$tmp/origin.git" fast-import --quiet
git -C "$tmp/origin.git" symbolic-ref HEAD refs/heads/main
url="file://$tmp/origin.git"
printf 'repository: %s commits, %s files, %s\n' "$(git -C "$tmp/origin.git" rev-list --count main)" "$files" \
  "$(du -sh "$tmp/origin.git" | cut -f1)"

# measure NAME CMD...: wall seconds and peak resident memory of one run.
measure() {
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$tmp/time" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }
  read -r secs kib <"$tmp/time"
  printf '%-34s %8.2f s %9.1f MiB\n' "$name" "$secs" "$(awk "BEGIN{print $kib/1024}")"
}

printf '%-34s %10s %13s\n' step time peak-rss
git init -q --bare "$tmp/clone.git"
git -C "$tmp/clone.git" remote add origin "$url"
measure "git fetch (first clone)" git -C "$tmp/clone.git" fetch -q --no-tags origin +refs/heads/main:refs/remotes/origin/main
measure "berth Fetch (first clone)" "$tmp/benchgit" -cache "$tmp/cache" "$url"

stream "$commits" "$new" "refs/heads/main^0" | git -C "$tmp/origin.git" fast-import --quiet
measure "git fetch (+$new commits)" git -C "$tmp/clone.git" fetch -q --no-tags origin +refs/heads/main:refs/remotes/origin/main
measure "berth Fetch (+$new commits)" "$tmp/benchgit" -cache "$tmp/cache" "$url"
measure "berth Fetch (unchanged)" "$tmp/benchgit" -cache "$tmp/cache" "$url"
want=$(git -C "$tmp/origin.git" rev-parse main)
got=$("$tmp/benchgit" -cache "$tmp/cache" "$url")
[ "$got" = "$want" ] || { echo "berth fetched $got, want $want" >&2; exit 1; }
