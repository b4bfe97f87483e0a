#!/usr/bin/env bash
# Builds the kubectl-tokenmint archives of a release and the krew manifest that
# installs them:
#
#   hack/plugin/release.sh VERSION [RELEASE_URL]
#
# For each platform it builds cmd/kubectl-tokenmint with the version stamped
# (-X main.version=VERSION), packs it into
# kubectl-tokenmint_VERSION_OS_ARCH.tar.gz (reproducibly: sorted, owner 0,
# mtime 0) and prints its sha256. With RELEASE_URL (where the archives will be
# published, without the file name) it also writes the krew manifest, with
# plugins/tokenmint.yaml's REPLACE-WITH-... values filled in.
#
#   HOMEPAGE   the plugin's homepage in the manifest (left out when unset)
#   OUT_DIR    where archives and the manifest go (default bin/plugin)
#   PLATFORMS  os/arch pairs (default: linux/amd64 linux/arm64 darwin/amd64
#              darwin/arm64 windows/amd64 windows/arm64)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
version=${1:?usage: hack/plugin/release.sh VERSION [RELEASE_URL]}
release_url=${2:-}
OUT_DIR=${OUT_DIR:-$root/bin/plugin}
PLATFORMS=${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64}

mkdir -p "$OUT_DIR"
# The manifest without its leading comment, which is about the template.
manifest=$(grep -v '^#' "$root/plugins/tokenmint.yaml")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for platform in $PLATFORMS; do
	os=${platform%/*}
	arch=${platform#*/}
	bin=kubectl-tokenmint
	[ "$os" = windows ] && bin=kubectl-tokenmint.exe
	mkdir -p "$work/$os-$arch"
	(cd "$root" && CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath \
		-ldflags "-s -w -X main.version=$version" -o "$work/$os-$arch/$bin" ./cmd/kubectl-tokenmint)
	archive="kubectl-tokenmint_${version}_${os}_${arch}.tar.gz"
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/$os-$arch" -cf - "$bin" |
		gzip -n >"$OUT_DIR/$archive"
	sum=$(sha256sum "$OUT_DIR/$archive" | cut -d' ' -f1)
	echo "$sum  $archive"
	manifest=${manifest//REPLACE-WITH-SHA256-$os-$arch/$sum}
done

if [ -n "$release_url" ]; then
	manifest=${manifest//REPLACE-WITH-RELEASE-URL/${release_url%/}}
	manifest=${manifest//REPLACE-WITH-VERSION/$version}
	if [ -n "${HOMEPAGE:-}" ]; then
		manifest=${manifest//REPLACE-WITH-HOMEPAGE-URL/$HOMEPAGE}
	else
		manifest=$(printf '%s\n' "$manifest" | grep -v '^  homepage: REPLACE-WITH-HOMEPAGE-URL$')
	fi
	printf '%s\n' "$manifest" >"$OUT_DIR/tokenmint.yaml"
	echo "krew manifest: $OUT_DIR/tokenmint.yaml"
	if grep -q 'REPLACE-WITH-' "$OUT_DIR/tokenmint.yaml"; then
		echo "note: platforms not built here keep their REPLACE-WITH-... values:" >&2
		grep -n 'REPLACE-WITH-' "$OUT_DIR/tokenmint.yaml" >&2
	fi
fi
