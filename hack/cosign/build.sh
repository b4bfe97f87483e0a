#!/usr/bin/env bash
# Builds cosign, the standard verifier of the release's signatures, from its Go
# module (no download of release binaries is needed) and prints its path. The
# binary is cached outside the repository, keyed by version, so a fresh clone on
# the same machine reuses it.
#
# Usage: hack/cosign/build.sh
# Environment: TOKENMINT_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/tokenmint)
set -euo pipefail

COSIGN_VERSION=v2.6.5
cache=${TOKENMINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tokenmint}
dir="$cache/cosign-$COSIGN_VERSION"
mkdir -p "$dir"

log() { printf '[cosign] %s\n' "$*" >&2; }

# One build at a time: parallel test runs wait for the first to finish.
exec 9>"$cache/.cosign.lock"
flock 9

if [ ! -x "$dir/cosign" ]; then
	log "building cosign $COSIGN_VERSION from its Go module (first time only; several minutes on 2 cores) ..."
	start=$SECONDS
	tmp=$(mktemp -d "$dir/.build.XXXXXX")
	# go install of a versioned package builds it with the module's own go.mod,
	# outside any workspace or the repository's module.
	(cd "$tmp" && GOWORK=off GOFLAGS= CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath \
		-ldflags "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN_VERSION" \
		"github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION")
	mv "$tmp/cosign" "$dir/cosign"
	rm -rf "$tmp"
	log "built cosign in $((SECONDS - start))s -> $dir/cosign"
fi
echo "$dir/cosign"
