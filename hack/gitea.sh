#!/usr/bin/env bash
# Builds Gitea's own server from its Go module (code.gitea.io/gitea) and caches it by version. Idempotent: when the
# binary exists it builds nothing. Prints the path of the `gitea` binary on stdout (logs go to stderr), so callers do
#   export BERTH_GITEA_BIN="$(hack/gitea.sh)"
# The binary is built without the bindata tag: it reads its templates/ and options/ from the directory it sits in,
# which is the module's source (tests set STATIC_ROOT_PATH to it). SQLite is the database (cgo, so gcc is needed).
# Environment:
#   BERTH_KUBE_CACHE     cache root, shared with hack/kube.sh (default $HOME/.cache/berth/kube)
#   BERTH_GITEA_VERSION  Gitea version (default v1.27.3)
# Cold: about 3.5 minutes on 2 cores (~420 MB of modules downloaded, ~1.3 GB of Go build cache, 1.5 GB peak RSS);
# warm: instant. The binary is ~117 MB, the cached source beside it ~55 MB (never commit them).
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }

version="${BERTH_GITEA_VERSION:-v1.27.3}"
root="${BERTH_KUBE_CACHE:-$HOME/.cache/berth/kube}/gitea-${version}"
src="$root/src"
bin="$src/gitea"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$root"
# One build at a time per version (several checkouts may share the cache); a waiter finds the binary made.
exec 9>"$root/lock"
flock 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

command -v gcc >/dev/null 2>&1 || {
  . "$(dirname "$0")/lib.sh"
  apt_install gcc libc6-dev
}

# Build inside the module's own source, as its main module: its go.mod replace lines and go.sum then apply, which
# they would not for a dependency (and `go install pkg@version` refuses a module with replace lines).
export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=1
if [ ! -f "$src/go.mod" ]; then
  log "downloading code.gitea.io/gitea@$version"
  tmp="$root/dl"
  mkdir -p "$tmp"
  printf 'module berth.local/giteadl\n\ngo 1.24\n' >"$tmp/go.mod"
  dir="$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "code.gitea.io/gitea@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
  [ -n "$dir" ] && [ -f "$dir/go.mod" ] || { log "cannot find the source of code.gitea.io/gitea@$version"; exit 1; }
  rm -rf "$src.tmp"
  cp -r "$dir" "$src.tmp"
  chmod -R u+w "$src.tmp"
  mv "$src.tmp" "$src"
  rm -rf "$tmp"
fi

# go build downloads only the modules the server needs (not those of Gitea's tests and tools).
log "building gitea $version (a few minutes cold)"
tags="sqlite sqlite_unlock_notify"
(cd "$src" && go build -tags "$tags" -ldflags "-s -w -X main.Version=${version#v} -X 'main.Tags=$tags'" -o "$bin.tmp" .)
mv "$bin.tmp" "$bin"
echo "$bin"
