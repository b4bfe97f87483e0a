#!/usr/bin/env bash
# Builds the local control plane binaries from Go modules (no download of release
# binaries is needed) and prints the directory that holds them, suitable for
# KUBEBUILDER_ASSETS. Binaries are cached outside the repository, keyed by version,
# so a fresh clone on the same machine reuses them.
#
# Usage: hack/controlplane/build.sh [binary ...]
#   binaries: kube-apiserver etcd kubectl kubelet kube-controller-manager kube-scheduler
#   default:  kube-apiserver etcd kubectl
# Environment: TOKENMINT_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/tokenmint)
#   TOKENMINT_KUBE_VERSION: the Kubernetes version to build (default the one every
#   test runs); another version builds from the wrapper module kube-<major.minor>
#   beside this script (make test-compat: the oldest supported minor).
set -euo pipefail

KUBE_VERSION=${TOKENMINT_KUBE_VERSION:-v1.36.3}
ETCD_VERSION=v3.6.16
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kube_module="$here/kube"
if ! grep -q "^require k8s.io/kubernetes $KUBE_VERSION\$" "$kube_module/go.mod"; then
	kube_module="$here/kube-$(echo "$KUBE_VERSION" | tr -d v | cut -d. -f1,2)"
	grep -q "^require k8s.io/kubernetes $KUBE_VERSION\$" "$kube_module/go.mod" 2>/dev/null || {
		printf '[controlplane] no wrapper module requires k8s.io/kubernetes %s (want %s/go.mod)\n' "$KUBE_VERSION" "$kube_module" >&2
		exit 2
	}
fi
cache=${TOKENMINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tokenmint}
assets="$cache/assets/kube-$KUBE_VERSION-etcd-$ETCD_VERSION"
mkdir -p "$assets"

log() { printf '[controlplane] %s\n' "$*" >&2; }

# One build at a time per version: parallel test runs wait for the first to finish.
lock="$cache/.build.lock"
[ "$kube_module" = "$here/kube" ] || lock="$cache/.build-$KUBE_VERSION.lock"
exec 9>"$lock"
flock 9

kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
-X k8s.io/component-base/version.gitMajor=$(echo "$KUBE_VERSION" | cut -d. -f1 | tr -d v) \
-X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) \
-X k8s.io/component-base/version.gitTreeState=clean"

build() { # name module-dir package ldflags versioned-dir
	local name=$1 moddir=$2 pkg=$3 ldflags=$4 dir=$5
	if [ -x "$dir/$name" ]; then
		ln -sf "$dir/$name" "$assets/$name"
		return
	fi
	mkdir -p "$dir"
	log "building $name from $pkg (first time only; several minutes on 2 cores) ..."
	local start=$SECONDS tmp
	tmp=$(mktemp "$dir/.$name.XXXXXX")
	(cd "$moddir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg")
	mv "$tmp" "$dir/$name"
	ln -sf "$dir/$name" "$assets/$name"
	log "built $name in $((SECONDS - start))s -> $dir/$name"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(kube-apiserver etcd kubectl)
for b in "${want[@]}"; do
	case "$b" in
	etcd) build etcd "$here/etcd" go.etcd.io/etcd/server/v3 "-s -w" "$cache/etcd-$ETCD_VERSION" ;;
	kube-apiserver | kubectl | kubelet | kube-controller-manager | kube-scheduler)
		build "$b" "$kube_module" "k8s.io/kubernetes/cmd/$b" "$kube_ldflags" "$cache/kube-$KUBE_VERSION" ;;
	*) log "unknown binary $b"; exit 2 ;;
	esac
done
echo "$assets"
