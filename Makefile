# The chart's appVersion, which is also the tag the chart runs by default.
APP_VERSION := $(shell sed -n 's/^appVersion: *"*\([^"]*\)"*$$/\1/p' dist/chart/Chart.yaml)
# The manager's image: `make image` builds it, `make image-push` pushes it. The
# default is the image the chart runs when image.* is left alone.
IMAGE_REPOSITORY ?= ghcr.io/tokenmint/tokenmint
IMG ?= $(IMAGE_REPOSITORY):$(APP_VERSION)
# Version stamped into the binary by `make build`.
VERSION ?= dev

# Get the currently used golang install path (in GOPATH/bin, unless GOBIN is set)
ifeq (,$(shell go env GOBIN))
GOBIN=$(shell go env GOPATH)/bin
else
GOBIN=$(shell go env GOBIN)
endif

# envtest waits 20 s for kube-apiserver by default; on a busy 2-CPU machine it can take longer.
export KUBEBUILDER_CONTROLPLANE_START_TIMEOUT ?= 2m

# Setting SHELL to bash allows bash commands to be executed by recipes.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from the markers in api/ and internal/.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd:allowDangerousTypes=false webhook paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods (zz_generated.deepcopy.go).
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet ./...

.PHONY: controlplane
controlplane: ## Build (once, cached outside the repo) kube-apiserver, etcd and kubectl for tests and the demo.
	@hack/controlplane/build.sh kube-apiserver etcd kubectl >/dev/null

# The directory of the locally built control plane binaries (built on first use).
KUBEBUILDER_ASSETS_DIR = $(shell hack/controlplane/build.sh kube-apiserver etcd kubectl)

# go test's limit per package: the controllers' and the real-node suites take minutes, more on a busy machine.
TEST_TIMEOUT ?= 45m

.PHONY: test
test: manifests generate fmt vet controlplane helm ## Run every test: unit, envtest, end-to-end (helm, kubectl, the manager binary), the race detector on the concurrent packages, and fuzz smoke tests.
	KUBEBUILDER_ASSETS="$(KUBEBUILDER_ASSETS_DIR)" go test ./... -timeout $(TEST_TIMEOUT) -coverprofile cover.out
	go test $(RACE_PACKAGES) -race
	hack/fuzz.sh $(FUZZ_SMOKE_TIME)

# Packages whose goroutines share state with client-go's informers, also tested under the race detector.
RACE_PACKAGES ?= ./internal/sharding/

FUZZ_SMOKE_TIME ?= 20000x
FUZZTIME ?= 5m

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME (default 5m) each.
	hack/fuzz.sh $(FUZZTIME)

DEMO_ARGS ?=

.PHONY: demo
demo: manifests ## Run tokenmint end to end on a local control plane with fake providers (Ctrl-C stops). DEMO_ARGS=-use-kubeconfig uses the cluster of KUBECONFIG.
	go run ./test/demo $(DEMO_ARGS)

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when generated files are not committed in sync with their markers.
	@git diff --exit-code -- config api || { echo "generated files are stale: run 'make manifests generate' and commit"; exit 1; }

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary.
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/manager cmd/main.go

.PHONY: plugin
plugin: fmt vet ## Build the kubectl plugin bin/kubectl-tokenmint (put it on the PATH to run kubectl tokenmint).
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/kubectl-tokenmint ./cmd/kubectl-tokenmint

RELEASE_URL ?=

.PHONY: plugin-release
plugin-release: ## Build the plugin's release archives and, with RELEASE_URL, the krew manifest, into bin/plugin.
	hack/plugin/release.sh $(VERSION) $(RELEASE_URL)

.PHONY: run
run: manifests generate fmt vet ## Run the manager from your host against the cluster in ~/.kube/config.
	go run ./cmd/main.go

##@ Image

# Version stamped into the image's manager; empty means the tag of IMG.
IMAGE_VERSION ?=
# GOARCH of the image, empty for this machine's; several, comma-separated
# (IMAGE_ARCH=amd64,arm64), make an image index of one image each.
IMAGE_ARCH ?=
IMAGE_ARGS = -img "$(IMG)" -version "$(IMAGE_VERSION)" -arch "$(IMAGE_ARCH)" -layout "$(LOCALBIN)/image" -archive "$(LOCALBIN)/image.tar"

.PHONY: image
image: ## Build the manager's OCI image IMG without a container engine: bin/image (OCI layout) and bin/image.tar (for ctr -n k8s.io images import).
	go run ./hack/image $(IMAGE_ARGS)

.PHONY: image-push
image-push: ## Build the image IMG and push it to its registry (credentials of docker login / $$DOCKER_CONFIG).
	go run ./hack/image $(IMAGE_ARGS) -push

.PHONY: image-name
image-name: ## Print IMG, the image `make image` builds.
	@echo "$(IMG)"

##@ Deployment

.PHONY: install
install: manifests kustomize ## Install CRDs into the cluster in ~/.kube/config.
	"$(KUSTOMIZE)" build config/crd | kubectl apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Uninstall CRDs from the cluster in ~/.kube/config.
	"$(KUSTOMIZE)" build config/crd | kubectl delete --ignore-not-found -f -

##@ Dependencies

## Location to install dependencies to
LOCALBIN ?= $(shell pwd)/bin
$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

## Tool Binaries
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
KUSTOMIZE ?= $(LOCALBIN)/kustomize
HELM ?= $(LOCALBIN)/helm

## Tool Versions
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.1
HELM_VERSION ?= v3.22.0

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Download controller-gen locally if necessary.
$(CONTROLLER_GEN): $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Download kustomize locally if necessary.
$(KUSTOMIZE): $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: helm
helm: $(HELM) ## Download helm locally if necessary.
$(HELM): $(LOCALBIN)
	$(call go-install-tool,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VERSION))

# go-install-tool will 'go install' any package with custom target and name of binary, if it doesn't exist
# $1 - target path with name of binary
# $2 - package url which can be installed
# $3 - specific version of package
define go-install-tool
@[ -f "$(1)-$(3)" ] && [ "$$(readlink -- "$(1)" 2>/dev/null)" = "$(1)-$(3)" ] || { \
set -e; \
package=$(2)@$(3) ;\
echo "Downloading $${package}" ;\
rm -f "$(1)" ;\
GOBIN="$(LOCALBIN)" go install $${package} ;\
mv "$(LOCALBIN)/$$(basename "$(1)")" "$(1)-$(3)" ;\
} ;\
ln -sf "$$(realpath "$(1)-$(3)")" "$(1)"
endef

##@ Helm chart

.PHONY: chart-sync
chart-sync: manifests ## Generate the chart's CRD templates, manager ClusterRole and README from the generated manifests and values.yaml.
	hack/chart/sync.sh

# The Kubernetes version helm lints and renders the chart for (a helm built with go install assumes 1.20).
HELM_KUBE_VERSION ?= $(shell sed -n 's/^KUBE_VERSION=.*:-\(v[0-9.]*\)}$$/\1/p' hack/controlplane/build.sh)

.PHONY: chart-verify
chart-verify: chart-sync helm ## Fail when the chart is stale, or does not lint and render cleanly.
	@git diff --exit-code -- dist/chart && [ -z "$$(git status --porcelain -- dist/chart)" ] || { \
		git status --short -- dist/chart; echo "dist/chart is stale: run 'make chart-sync' and commit"; exit 1; }
	"$(HELM)" lint --strict dist/chart --kube-version "$(HELM_KUBE_VERSION)"
	"$(HELM)" lint --strict dist/chart --values dist/chart/ci/everything-values.yaml --kube-version "$(HELM_KUBE_VERSION)"
	@for values in dist/chart/values.yaml dist/chart/ci/everything-values.yaml; do \
		echo "helm template dist/chart --values $$values"; \
		out=$$("$(HELM)" template tokenmint dist/chart --namespace tokenmint-system --values "$$values" --kube-version "$(HELM_KUBE_VERSION)" 2>&1 >/dev/null) || { echo "$$out"; exit 1; }; \
		[ -z "$$out" ] || { echo "$$out"; echo "helm template is not clean"; exit 1; }; \
	done

##@ Benchmark

N ?= 1000
BENCH_ARGS ?=

.PHONY: bench
bench: manifests ## Measure N (default 1000) AccessTokens against the floor on a local control plane; writes bin/bench-$(N).md. BENCH_ARGS='-manager-args "--kube-api-qps=500"' passes more.
	go run ./test/bench -n $(N) $(BENCH_ARGS)

MIXED_ARGS ?=

.PHONY: bench-mixed
bench-mixed: manifests ## Measure tenant isolation: 1,000 honest AccessTokens (90 s tokens) renewed for 10 min beside a hostile tenant and its cost attacks (credential-annotate storm, big parameters and a restart, short-lived flood, metrics flood, delete-and-recreate) on a local control plane; writes bin/bench-mixed.md. MIXED_ARGS='-mixed-smoke' is the smoke size (about 4 min on 2 CPUs); -mixed-<attack>-... flags size or turn off each attack (go run ./test/bench -help).
	go run ./test/bench -mixed $(MIXED_ARGS)

.PHONY: bench-memory
bench-memory: manifests ## Measure the manager's memory under a tenant's largest writes (200 AccessTokens with 900,000-character parameters, 200 Secrets with a forged owner reference), before and after a restart, on a local control plane; writes bin/bench-memory-attack.md.
	go run ./test/bench -memory-attack

NAMESPACES ?= 100

.PHONY: bench-rotation
bench-rotation: manifests ## Measure a credential rotation behind a ClusterTokenIssuer with N (default 1000) AccessTokens on a local control plane: the endpoint's most calls a second against the issuer's rateLimit, the time until every token is re-issued against its reissueWindow, and expired tokens (must be 0); writes bin/bench-rotation-$(N).md. ROTATION_ARGS='-rotation-window 0s' re-issues at once.
	go run ./test/bench -rotation $(N) $(ROTATION_ARGS)

.PHONY: bench-cluster
bench-cluster: manifests ## Measure one ClusterAccessToken written to NAMESPACES (default 100) namespaces on a local control plane: calls, Secret writes and time, on first issue, renewal and a late namespace; writes bin/bench-cluster-NAMESPACES.md.
	go run ./test/bench -cluster $(NAMESPACES)

REPLICAS ?= 4
SHARDS_ARGS ?=

.PHONY: bench-shards
bench-shards: manifests ## Run N (default 1000) AccessTokens over up to REPLICAS (default 4) replicas sharing them (--shard-ranges=16 --leader-elect) on a local control plane: scale 1 → REPLICAS → 2, a SIGKILL, a rolling restart, 2 min tokens renewed throughout; checks every mint reached its Secret, no Secret held an expired token, failover within the lease duration + 30 s, ranges balanced, calls in flight per issuer; writes bin/bench-shards-$(N).md. SHARDS_ARGS='-shards-lifetime 5m' passes more (go run ./test/bench -help).
	go run ./test/bench -shards $(N) -shards-replicas $(REPLICAS) $(SHARDS_ARGS)

##@ Release

# The release's registry and path: the image goes to $(REGISTRY)/tokenmint, the chart to $(REGISTRY)/charts/tokenmint.
REGISTRY ?=
# A cosign private key to sign with (its password in COSIGN_PASSWORD); empty signs keyless (Sigstore OIDC, as in CI).
COSIGN_KEY ?=
# Where the release's files go.
RELEASE_OUT ?= $(LOCALBIN)/release
RELEASE_ARGS ?=

# The oldest supported Kubernetes version: make test-compat runs the envtest suites on its API server.
COMPAT_KUBE_VERSION ?= v1.34.4

.PHONY: test-compat
test-compat: manifests generate helm ## Run the envtest suites (controllers, CRD CEL rules, manager and plugin end to end) on the oldest supported API server, COMPAT_KUBE_VERSION (built once, cached outside the repo).
	KUBEBUILDER_ASSETS="$$(TOKENMINT_KUBE_VERSION=$(COMPAT_KUBE_VERSION) hack/controlplane/build.sh kube-apiserver etcd kubectl)" \
		go test ./internal/... ./test/e2e/ ./test/e2eplugin/ -count=1 -timeout $(TEST_TIMEOUT)

.PHONY: cosign
cosign: ## Build (once, cached outside the repo) cosign, which signs releases and verifies them in tests.
	@hack/cosign/build.sh >/dev/null

.PHONY: release
release: cosign helm ## Publish release VERSION (x.y.z) to REGISTRY: signed multi-arch image, SBOM, OCI chart, plugin archives, krew manifest, release notes in bin/release. COSIGN_KEY=cosign.key signs with a key.
	@[ -n "$(REGISTRY)" ] || { echo "REGISTRY is required: make release VERSION=x.y.z REGISTRY=host[:port]/path"; exit 1; }
	go run ./hack/release -version "$(VERSION)" -registry "$(REGISTRY)" -out "$(RELEASE_OUT)" -cosign "$$(hack/cosign/build.sh)" -helm "$(HELM)" -key "$(COSIGN_KEY)" $(RELEASE_ARGS)

# The release spec (hack/release) runs in make test: build cosign, and compile the release's cross builds into
# the Go build cache (compiled once; later runs find them there), before go test's timeout starts.
.PHONY: release-deps
release-deps: cosign
	@GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go list -trimpath -export -f '' ./cmd >/dev/null
	@for p in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do \
		GOOS=$${p%/*} GOARCH=$${p#*/} CGO_ENABLED=0 go list -trimpath -export -f '' ./cmd/kubectl-tokenmint >/dev/null; \
	done

test: release-deps

##@ Real node

.PHONY: node-binaries
node-binaries: ## Build (once, cached outside the repo) kubelet, kube-controller-manager and kube-scheduler for the real node.
	@hack/controlplane/build.sh kubelet kube-controller-manager kube-scheduler >/dev/null

.PHONY: previous-release
previous-release: ## Build (once, cached outside the repo) the previous release's tree and manager, which the real-node suite upgrades from.
	@go run ./hack/release/previous

# The real-node suite (test/e2enode) runs in make test: build its binaries before go test's timeout starts.
test: node-binaries previous-release

.PHONY: test-node
test-node: manifests controlplane node-binaries helm cosign previous-release ## Run only the real-node end-to-end suite (needs root): the release installed from a registry on 127.0.0.1, upgraded from the previous one, pods reading tokens through a real kubelet.
	KUBEBUILDER_ASSETS="$(KUBEBUILDER_ASSETS_DIR)" go test ./test/e2enode/ -v -count=1 -timeout $(TEST_TIMEOUT)
