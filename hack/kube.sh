#!/usr/bin/env bash
# Builds kube-apiserver and etcd from Go modules and caches them by version. Idempotent: when both binaries exist it
# builds nothing. Prints the directory holding `kube-apiserver` and `etcd` on stdout (logs go to stderr), so callers do
#   export KUBE_BIN_DIR="$(hack/kube.sh)"
# Environment:
#   BERTH_KUBE_CACHE    cache root (default $HOME/.cache/berth/kube)
#   BERTH_KUBE_VERSION  Kubernetes version (default v1.34.2; staging modules use v0.<minor>.<patch>)
#   BERTH_ETCD_VERSION  etcd server version (default v3.6.16)
# Cold build: about 3.5 minutes on 2 cores; the apiserver binary is ~170 MB (never commit it).
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }

version="${BERTH_KUBE_VERSION:-v1.34.2}"
etcd_version="${BERTH_ETCD_VERSION:-v3.6.16}"
root="${BERTH_KUBE_CACHE:-$HOME/.cache/berth/kube}/${version}"
bin="$root/bin"
src="$root/src"
staging_version="v0.${version#v1.}"

if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/etcd" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$bin" "$src"
# One build at a time: concurrent callers (parallel test runs) wait here, then find the binaries built.
exec 9>"$root/lock"
flock 9
if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/etcd" ]; then
  echo "$bin"
  exit 0
fi
# The scratch module must not inherit a workspace or vendor mode of the caller.
export GOWORK=off GOFLAGS=-mod=mod

if [ ! -x "$bin/kube-apiserver" ]; then
  log "downloading k8s.io/kubernetes@$version"
  gomod="$(cd "$src" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
  [ -n "$gomod" ] && [ -f "$gomod" ] || { log "cannot find go.mod of k8s.io/kubernetes@$version"; exit 1; }
  # Staging modules are the k8s.io/* requirements that k8s.io/kubernetes replaces with ./staging/src/k8s.io/*.
  staging="$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$gomod" | sort -u)"
  [ -n "$staging" ] || { log "no staging modules found in $gomod"; exit 1; }
  {
    echo "module berth.local/kubebuild"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $staging_version"; done
    echo ")"
  } >"$src/go.mod"
  log "building kube-apiserver (a few minutes cold)"
  # -mod=mod (GOFLAGS above) lets go build add the requirements and go.sum lines it needs.
  minor="${version#v1.}"; minor="${minor%%.*}"
  ldflags="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1"
  ldflags="$ldflags -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  (cd "$src" && go build -ldflags "$ldflags" -o "$bin/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$bin/kube-apiserver.tmp" "$bin/kube-apiserver"
fi

if [ ! -x "$bin/etcd" ]; then
  esrc="$root/etcd-src"
  mkdir -p "$esrc"
  cat >"$esrc/go.mod" <<EOF
module berth.local/etcdbuild

go 1.24

require go.etcd.io/etcd/server/v3 $etcd_version
EOF
  log "building etcd $etcd_version"
  (cd "$esrc" && go build -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$bin/etcd.tmp" "$bin/etcd"
fi

echo "$bin"
