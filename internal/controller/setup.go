/*
Copyright 2026 The tokenmint Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controller

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/internal/sharding"
)

// Config is the operator's configuration, set from flags.
type Config struct {
	// OperatorNamespace holds the fingerprint key and state Secrets.
	OperatorNamespace string
	// CredentialsNamespace holds ClusterTokenIssuers' credential Secrets.
	CredentialsNamespace string
	// WatchNamespaces limits AccessTokens, TokenIssuers and token Secrets to these
	// namespaces; empty means all.
	WatchNamespaces []string
	// AllowPrivateDestinations lets TokenIssuers call private addresses.
	AllowPrivateDestinations bool
	// ReadOnly makes no calls to token endpoints and writes nothing but
	// AccessTokens' and ClusterAccessTokens' status: for a passive
	// (disaster-recovery) cluster.
	ReadOnly bool
	// MaxConcurrentReconciles is the number of AccessTokens reconciled at once.
	MaxConcurrentReconciles int
	// KubeAPIQPS and KubeAPIBurst limit the manager's requests to the apiserver,
	// all resources together (see RESTConfigs).
	KubeAPIQPS   float64
	KubeAPIBurst int
	// EventQPS and EventBurst limit the events the manager sends, apart
	// from KubeAPIQPS (see DefaultEventQPS); 0 sends them within KubeAPIQPS.
	EventQPS   float64
	EventBurst int
	// IssuerRate and IssuerBurst limit calls per issuer (token bucket); 0 disables.
	IssuerRate  float64
	IssuerBurst int
	// FingerprintKeySecret names the Secret holding the fingerprint HMAC key.
	FingerprintKeySecret string
	// IssuerConcurrency and NamespaceConcurrency bound the calls in flight to
	// one issuer, and for one namespace's AccessTokens over all issuers.
	IssuerConcurrency    int
	NamespaceConcurrency int
	// MinMintInterval is the least time between two mints of one AccessToken.
	MinMintInterval time.Duration
	// ForcedRenewalRate and ForcedRenewalBurst limit, per namespace, mints
	// asked for ahead of schedule (renew annotation, input changes); a
	// negative rate disables the limit. In this and the three fields above,
	// zero means the default.
	ForcedRenewalRate  float64
	ForcedRenewalBurst int
	// MinRenewalInterval is the least time from a token's issue to its
	// scheduled renewal; zero means the default, negative none.
	MinRenewalInterval time.Duration
	// NamespaceMintRate and NamespaceMintBurst limit, per namespace, every
	// mint other than scheduled renewals and retries (first issues,
	// re-creations, re-issues after a lost Secret, forced renewals); zero
	// means the default, a negative rate no limit.
	NamespaceMintRate  float64
	NamespaceMintBurst int
	// NamespaceWriteBytesPerMinute and NamespaceWriteBurstBytes limit, per
	// namespace, the bytes written to Secrets and state Secrets for its
	// AccessTokens; zero means the default, a negative rate no limit.
	NamespaceWriteBytesPerMinute int64
	NamespaceWriteBurstBytes     int64

	// RenewalEvents raises a Normal event for every renewal.
	RenewalEvents bool
	// ProviderClockCorrection reads the times an issuer's endpoint reports,
	// and writes the times signed for it, on that endpoint's clock as its Date
	// header tells it (--provider-clock-correction); false measures only.
	ProviderClockCorrection bool

	// ShardRanges, when above zero, shares the AccessTokens among replicas by
	// hash ranges of namespaces, each held with a Lease (see
	// internal/sharding); zero keeps every AccessToken under the one leader.
	ShardRanges int
	// ShardIdentity names this replica among the sharing ones; empty means
	// ShardIdentity().
	ShardIdentity string
	// LeaseDuration, RenewDeadline and RetryPeriod time the range Leases as
	// the leader election flags time the leader's.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// ShardClock times the range Leases; nil means Clock. A seam for tests.
	ShardClock clock.WithTicker
	// ShardHandoverTimeout, when above zero, makes handovers warm: a range
	// that moves to another replica is served by its holder until that
	// replica has it cached, or for this long at most (see
	// sharding.Options.HandoverTimeout). Zero: released at once.
	ShardHandoverTimeout time.Duration
	// ShardLeaveTimeout bounds how long a stopping replica hands its ranges
	// over warm before the manager stops (see HandOverShards).
	ShardLeaveTimeout time.Duration

	// Clock and Transport are seams for tests; nil means the real ones.
	Clock     clock.Clock
	Transport *issuer.TransportConfig
	// Tokens replaces the token engine in tests; nil means the real one.
	Tokens TokenSource

	// proofs holds the installation's Fingerprinter once Setup has read the
	// key, for the Secret cache's transform (see trimSecret). A pointer, so
	// that the copy of Config that Setup receives shares it with the one
	// CacheOptions was called on.
	proofs *atomic.Pointer[secret.Fingerprinter]
	// cacheRanges narrows the cache to the ranges held, with sharding on:
	// set by CacheOptions, shared with the copy Setup receives.
	cacheRanges *sharding.CacheFilter
	// shards holds the Coordinator once Setup has made it, for
	// HandOverShards; set by CacheOptions, shared like cacheRanges.
	shards *atomic.Pointer[sharding.Coordinator]
}

// BindFlags registers the configuration's flags.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "tokenmint-system"
	}
	fs.StringVar(&c.OperatorNamespace, "operator-namespace", ns,
		"Namespace of the operator's own Secrets (fingerprint key, refresh tokens). Defaults to $POD_NAMESPACE.")
	fs.StringVar(&c.CredentialsNamespace, "credentials-namespace", DefaultCredentialsNamespace,
		"Namespace ClusterTokenIssuers read credential Secrets from. It must not be the operator namespace, which holds every AccessToken's state (refresh tokens) and the fingerprint key.")
	fs.Func("watch-namespaces", "Comma-separated namespaces to serve AccessTokens and TokenIssuers in (default: all).", func(v string) error {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				c.WatchNamespaces = append(c.WatchNamespaces, n)
			}
		}
		return nil
	})
	fs.BoolVar(&c.AllowPrivateDestinations, "allow-private-destinations", false,
		"Let TokenIssuers call loopback, link-local and private addresses (ClusterTokenIssuers always may).")
	fs.IntVar(&c.MaxConcurrentReconciles, "max-concurrent-reconciles", 10, "AccessTokens reconciled at once.")
	fs.BoolVar(&c.ReadOnly, "read-only", false,
		"Make no calls to token endpoints and write no Secrets, only AccessTokens' and ClusterAccessTokens' status: for a passive cluster that receives its objects from an active one.")
	// The defaults are cert-manager's (--kube-api-qps=20, --kube-api-burst=50):
	// a manager that shares the apiserver with every other controller of the
	// cluster. An issued token costs two writes, so 20 requests a second issue
	// about ten tokens a second; raise them to issue thousands at once (the
	// figures in docs/performance.md were measured with 500 and 1000).
	fs.Float64Var(&c.KubeAPIQPS, "kube-api-qps", DefaultKubeAPIQPS, "Requests per second to the Kubernetes API, all resources together (leader election has its own).")
	fs.IntVar(&c.KubeAPIBurst, "kube-api-burst", DefaultKubeAPIBurst, "Burst of requests to the Kubernetes API, all resources together.")
	fs.Float64Var(&c.EventQPS, "event-qps", DefaultEventQPS,
		"Events per second the manager sends, apart from --kube-api-qps, so that events never delay the writes of tokens; when they come faster, up to a thousand wait and the newest are dropped (0: within --kube-api-qps).")
	fs.IntVar(&c.EventBurst, "event-burst", DefaultEventBurst, "Burst of events, with --event-qps.")
	fs.Float64Var(&c.IssuerRate, "issuer-rate-limit", DefaultIssuerRate,
		"Calls per second to one issuer's endpoint, shared by all its AccessTokens, for issuers whose spec.rateLimit is not set; also the most a TokenIssuer's spec.rateLimit may ask for (0: unlimited). A 429 pauses the namespace that got it for its Retry-After.")
	fs.IntVar(&c.IssuerBurst, "issuer-burst", DefaultIssuerBurst, "Burst of calls to one issuer's endpoint, with --issuer-rate-limit.")
	fs.IntVar(&c.IssuerConcurrency, "issuer-concurrency", DefaultIssuerConcurrency,
		"Calls in flight to one issuer's endpoint; the calls never hold the reconcile workers, so a slow endpoint delays its own AccessTokens only.")
	fs.IntVar(&c.NamespaceConcurrency, "namespace-concurrency", DefaultNamespaceConcurrency,
		"Calls in flight for one namespace's AccessTokens, over all issuers (each ClusterTokenIssuer also serves waiting namespaces in turn).")
	fs.DurationVar(&c.MinMintInterval, "min-mint-interval", DefaultMinMintInterval,
		"Least time between two mints of one AccessToken, whatever asks for them.")
	fs.Float64Var(&c.ForcedRenewalRate, "forced-renewal-rate", DefaultForcedRenewalRate,
		"Mints per second one namespace may ask for ahead of schedule (renew annotation, input changes) or cause by re-creating AccessTokens; negative: unlimited.")
	fs.IntVar(&c.ForcedRenewalBurst, "forced-renewal-burst", DefaultForcedRenewalBurst, "Burst of such mints per namespace.")
	fs.DurationVar(&c.MinRenewalInterval, "min-renewal-interval", DefaultMinRenewalInterval,
		"Least time from a token's issue to its scheduled renewal, whatever lifetime the provider answers: shorter-lived tokens are served, renewed at this interval, and marked ShortLivedToken; negative: none.")
	fs.Float64Var(&c.NamespaceMintRate, "namespace-mint-rate", DefaultNamespaceMintRate,
		"Mints per second one namespace may cause beyond scheduled renewals and retries (first issues, re-created AccessTokens, re-issues after a lost Secret, forced renewals); negative: unlimited.")
	fs.IntVar(&c.NamespaceMintBurst, "namespace-mint-burst", DefaultNamespaceMintBurst, "Burst of such mints per namespace.")
	fs.Int64Var(&c.NamespaceWriteBytesPerMinute, "namespace-write-bytes-per-minute", DefaultNamespaceWriteBytesPerMinute,
		"Bytes a minute the manager writes to Secrets (the AccessTokens' own and their state Secrets) for one namespace; a namespace over it waits to mint; negative: unlimited.")
	fs.Int64Var(&c.NamespaceWriteBurstBytes, "namespace-write-burst-bytes", DefaultNamespaceWriteBurstBytes, "Burst of such bytes per namespace.")
	fs.BoolVar(&c.RenewalEvents, "renewal-events", false,
		"Raise a Normal event on the AccessToken for every renewal (by default only the first token and recovering from failures raise one; every mint and revocation is in the audit log either way).")
	fs.BoolVar(&c.ProviderClockCorrection, "provider-clock-correction", true,
		"Measure each issuer's clock from the Date header of its endpoint's answers and read the expiries and Retry-After dates it reports, and sign JWTs for it, on that clock; false only measures it (metric tokenmint_issuer_clock_offset_seconds, issuer condition ClockSkew).")
	fs.IntVar(&c.ShardRanges, "shard-ranges", 0,
		"Share AccessTokens among the replicas by this many hash ranges of namespaces, each held with a Lease timed by the --leader-election-* flags; ClusterAccessTokens and issuers' status stay with the leader. 0 (the default): the leader serves everything.")
	fs.DurationVar(&c.ShardHandoverTimeout, "shard-handover-timeout", DefaultShardHandoverTimeout,
		"With --shard-ranges, how long a replica that is to give a range to another keeps serving it while that replica lists its objects, before releasing it anyway; the range then waits for that list unserved. 0: release at once.")
	fs.DurationVar(&c.ShardLeaveTimeout, "shard-leave-timeout", DefaultShardLeaveTimeout,
		"With --shard-ranges, how long a stopping replica keeps serving while the others list its ranges, before it stops and releases what is left; on top of --graceful-shutdown-timeout, within the pod's terminationGracePeriodSeconds.")
	fs.StringVar(&c.FingerprintKeySecret, "fingerprint-key-secret", "tokenmint-fingerprint-key",
		"Secret in the operator namespace holding the key that fingerprints tokens (created when missing).")
}

// DefaultShardHandoverTimeout and DefaultShardLeaveTimeout are the defaults
// of --shard-handover-timeout and --shard-leave-timeout.
const (
	DefaultShardHandoverTimeout = 5 * time.Minute
	DefaultShardLeaveTimeout    = 15 * time.Second
)

// DefaultCredentialsNamespace is where ClusterTokenIssuers read credential
// Secrets unless told otherwise.
const DefaultCredentialsNamespace = "tokenmint-credentials"

func (c *Config) credentialsNamespace() string {
	if c.CredentialsNamespace != "" {
		return c.CredentialsNamespace
	}
	return DefaultCredentialsNamespace
}

// defaults fills the limits left at zero.
func (c *Config) defaults() {
	if c.IssuerConcurrency <= 0 {
		c.IssuerConcurrency = DefaultIssuerConcurrency
	}
	if c.NamespaceConcurrency <= 0 {
		c.NamespaceConcurrency = DefaultNamespaceConcurrency
	}
	if c.MinMintInterval == 0 {
		c.MinMintInterval = DefaultMinMintInterval
	}
	if c.ForcedRenewalRate == 0 {
		c.ForcedRenewalRate, c.ForcedRenewalBurst = DefaultForcedRenewalRate, DefaultForcedRenewalBurst
	}
	if c.MinRenewalInterval == 0 {
		c.MinRenewalInterval = DefaultMinRenewalInterval
	}
	if c.NamespaceMintRate == 0 {
		c.NamespaceMintRate = DefaultNamespaceMintRate
	}
	if c.NamespaceMintBurst <= 0 {
		c.NamespaceMintBurst = DefaultNamespaceMintBurst
	}
	if c.NamespaceWriteBytesPerMinute == 0 {
		c.NamespaceWriteBytesPerMinute = DefaultNamespaceWriteBytesPerMinute
	}
	if c.NamespaceWriteBurstBytes <= 0 {
		c.NamespaceWriteBurstBytes = DefaultNamespaceWriteBurstBytes
	}
	if c.LeaseDuration <= 0 || c.RenewDeadline <= 0 || c.RetryPeriod <= 0 {
		c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
	}
}

// Validate refuses a configuration that would let an issuer reach tokenmint's
// own Secrets.
func (c *Config) Validate() error {
	if c.credentialsNamespace() == c.OperatorNamespace {
		return fmt.Errorf("--credentials-namespace must differ from the operator namespace %q: it holds every AccessToken's state and the fingerprint key, which no ClusterTokenIssuer may read", c.OperatorNamespace)
	}
	return nil
}

// RESTConfigs derives from base the manager's client configuration and the
// leader election's. The manager's clients share one token bucket of KubeAPIQPS
// and KubeAPIBurst: without it, client-go gives every REST client its own, and
// controller-runtime makes one client per resource type (and one for
// metadata), so the limit would apply to each resource separately. Events have
// their own (EventQPS, see Setup). Leader
// election keeps its own connection and client-go's default limit, so that
// renewing the lease never waits behind the controllers' requests.
func (c *Config) RESTConfigs(base *rest.Config) (manager, leaderElection *rest.Config) {
	leaderElection = rest.CopyConfig(base)
	manager = rest.CopyConfig(base)
	manager.QPS, manager.Burst = float32(c.KubeAPIQPS), c.KubeAPIBurst
	manager.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(manager.QPS, manager.Burst)
	return manager, leaderElection
}

// CacheOptions caches only what the controllers need: managed fields are
// stripped, of all Secrets only tokenmint's own are cached, and strings that
// many objects share are stored once (see transform.go).
func (c *Config) CacheOptions() cache.Options {
	if c.proofs == nil {
		c.proofs = &atomic.Pointer[secret.Fingerprinter]{}
	}
	if c.shards == nil {
		c.shards = &atomic.Pointer[sharding.Coordinator]{}
	}
	secrets := cache.ByObject{
		Label:     labels.SelectorFromSet(labels.Set{tokensv1alpha1.LabelManagedBy: tokensv1alpha1.ManagedByValue}),
		Transform: c.trimSecret,
	}
	opts := cache.Options{DefaultTransform: compactObject}
	if len(c.WatchNamespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range append([]string{c.OperatorNamespace}, c.WatchNamespaces...) {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
		// Credential Secrets are looked up in the typed cache too (one of
		// tokenmint's own can be a credential): it serves the credentials
		// namespace as well, for Secrets only.
		secrets.Namespaces = c.secretNamespaces()
	}
	opts.ByObject = map[client.Object]cache.ByObject{&corev1.Secret{}: secrets}
	c.filterCache(&opts)
	return opts
}

// secretNamespaces are the namespaces whose Secrets the caches list and
// watch: with --watch-namespaces, those, the operator's and the credentials
// namespace, so that the manager needs no cluster-wide permission on Secrets;
// nil (every namespace) without. Namespaces themselves are cluster-scoped
// and listed cluster-wide either way.
func (c *Config) secretNamespaces() map[string]cache.Config {
	if len(c.WatchNamespaces) == 0 {
		return nil
	}
	namespaces := map[string]cache.Config{c.OperatorNamespace: {}, c.credentialsNamespace(): {}}
	for _, ns := range c.WatchNamespaces {
		namespaces[ns] = cache.Config{}
	}
	return namespaces
}

// metadataCacheOptions configure the metadata-only cache of Secrets (all but
// tokenmint's own) and Namespaces, in the namespaces secretNamespaces lists.
func (c *Config) metadataCacheOptions() (cache.Options, error) {
	notManaged, err := labels.NewRequirement(tokensv1alpha1.LabelManagedBy, selection.NotEquals, []string{tokensv1alpha1.ManagedByValue})
	if err != nil {
		return cache.Options{}, err
	}
	return cache.Options{
		DefaultTransform:  stripSecretMetadata,
		DefaultNamespaces: c.secretNamespaces(),
		ByObject: map[client.Object]cache.ByObject{
			secretMetadata(): {Label: labels.NewSelector().Add(*notManaged)},
		},
	}, nil
}

// maxCachedSecretBytes is the most data of one token Secret the cache holds:
// all a token Secret may hold (see secret.Data).
const maxCachedSecretBytes = secret.MaxDataBytes

// trimSecret is the typed Secret cache's transform. The cache selects Secrets
// by a label anyone who writes Secrets can set, and anyone can also write an
// owner reference naming an AccessToken, so neither decides what is kept. It
// keeps the data (up to maxCachedSecretBytes), labels and annotations only of
// Secrets whose owner proof verifies (written by tokenmint for the
// AccessToken or ClusterAccessToken that controls them, see
// secret.AnnotationOwnerProof), and the data of the operator namespace's state
// Secrets up to secret.MaxStateBytes. Of every other Secret it holds the
// identity, the controller reference and tokenmint's own labels: a few hundred
// bytes, whatever it carries.
func (c *Config) trimSecret(in any) (any, error) {
	out, err := secret.TrimManagedFields(in)
	s, ok := out.(*corev1.Secret)
	if err != nil || !ok {
		return out, err
	}
	if s.Namespace == c.OperatorNamespace && s.Labels[secret.LabelComponent] == secret.ComponentState {
		if dataSize(s) > secret.MaxStateBytes {
			s.Data = nil // read from the apiserver when needed, and rewritten smaller
		}
		s.StringData = nil
		return s, nil
	}
	var f *secret.Fingerprinter
	if c.proofs != nil {
		f = c.proofs.Load()
	}
	if f.VerifyOwnerProof(s) {
		if dataSize(s) > maxCachedSecretBytes {
			s.Data = nil
		}
		s.StringData = nil
		delete(s.Annotations, lastApplied) // kubectl's copy of the Secret, data included
		return s, nil
	}
	s.Data, s.StringData, s.Annotations = nil, nil, nil
	if ref := metav1.GetControllerOfNoCopy(s); ref != nil {
		s.OwnerReferences = []metav1.OwnerReference{*ref}
	} else {
		s.OwnerReferences = nil
	}
	for k := range s.Labels {
		if !keptSecretLabels[k] {
			delete(s.Labels, k)
		}
	}
	return s, nil
}

// keptSecretLabels are the labels of a Secret the cache keeps when it keeps
// nothing else of it.
var keptSecretLabels = map[string]bool{
	tokensv1alpha1.LabelManagedBy: true, tokensv1alpha1.LabelAccessToken: true,
	tokensv1alpha1.LabelClusterAccessToken: true, secret.LabelComponent: true, secret.LabelAccessTokenUID: true,
}

func dataSize(s *corev1.Secret) int {
	size := 0
	for k, v := range s.Data {
		size += len(k) + len(v)
	}
	return size
}

// stripSecretMetadata keeps only the identity and version of a Secret's metadata
// (its annotations may hold a last-applied copy of its data, which must not be
// cached) and drops managed fields everywhere. Namespaces keep their labels.
func stripSecretMetadata(in any) (any, error) {
	m, ok := in.(*metav1.PartialObjectMetadata)
	if !ok {
		return in, nil
	}
	m.ManagedFields = nil
	m.Namespace = secret.Intern(m.Namespace)
	if m.Namespace != "" {
		m.Annotations, m.Labels, m.OwnerReferences = nil, nil, nil
	}
	return in, nil
}

// Setup wires the controllers into mgr.
func Setup(ctx context.Context, mgr ctrl.Manager, cfg Config) error {
	clk := cfg.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	key, err := ensureFingerprintKey(ctx, mgr, cfg)
	if err != nil {
		return err
	}
	fingerprinter := secret.NewFingerprinter(key)
	if cfg.proofs != nil {
		cfg.proofs.Store(fingerprinter)
	}

	// A second, metadata-only cache notices credential Secrets and namespace
	// labels without holding any Secret's value. tokenmint's own Secrets are in
	// the typed cache already: the metadata cache leaves them out, so that each
	// write of one reaches the manager once (see cachedSecretVersion).
	metaOpts, err := cfg.metadataCacheOptions()
	if err != nil {
		return err
	}
	metaOpts.Scheme, metaOpts.Mapper = mgr.GetScheme(), mgr.GetRESTMapper()
	metaCache, err := cache.New(mgr.GetConfig(), metaOpts)
	if err != nil {
		return fmt.Errorf("creating metadata cache: %w", err)
	}
	if err := mgr.Add(cfg.onEveryShard(metaCache)); err != nil {
		return err
	}
	// Credential Secrets are watched in both caches: one of tokenmint's own can
	// be another issuer's credential.
	secretsSources := []SourceFactory{MetadataSource(metaCache, corev1.SchemeGroupVersion.WithKind("Secret")),
		func(h handler.EventHandler) source.Source {
			return source.Kind[client.Object](mgr.GetCache(), &corev1.Secret{}, h)
		}}
	namespacesSource := MetadataSource(metaCache, corev1.SchemeGroupVersion.WithKind("Namespace"))

	tokens := cfg.Tokens
	if tokens == nil {
		tokens = &issuer.Engine{Clock: clk}
	}
	limiters := NewIssuerLimiters(cfg.IssuerRate, cfg.IssuerBurst, clk)
	calls := NewCalls(cfg.IssuerConcurrency, cfg.NamespaceConcurrency)
	if timers, ok := clk.(clock.WithDelayedExecution); ok {
		calls.Gate, calls.Clock = limiters, timers
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.defaults()
	shards, shardEvents, err := cfg.setupSharding(ctx, mgr, calls, limiters, clk)
	if err != nil {
		return err
	}
	var forced *NamespaceLimiters
	if cfg.ForcedRenewalRate > 0 {
		forced = NewNamespaceLimiters(cfg.ForcedRenewalRate, cfg.ForcedRenewalBurst)
	}
	var mints *NamespaceLimiters
	if cfg.NamespaceMintRate > 0 {
		mints = NewNamespaceLimiters(cfg.NamespaceMintRate, cfg.NamespaceMintBurst)
	}
	var writes *WriteBudgets
	if cfg.NamespaceWriteBytesPerMinute > 0 {
		writes = NewWriteBudgets(cfg.NamespaceWriteBytesPerMinute, cfg.NamespaceWriteBurstBytes)
	}
	health := NewIssuerHealth()
	clocks := &ProviderClocks{Correct: cfg.ProviderClockCorrection, Notify: health.Notify}
	recorder := mgr.GetEventRecorder("tokenmint")
	if cfg.EventQPS > 0 {
		events, err := newEventBroadcaster(mgr.GetConfig(), cfg.EventQPS, cfg.EventBurst)
		if err != nil {
			return err
		}
		if err := mgr.Add(events); err != nil {
			return err
		}
		if recorder, err = events.recorder(mgr.GetScheme(), "tokenmint"); err != nil {
			return err
		}
	}
	at := &AccessTokenReconciler{
		Client:                   mgr.GetClient(),
		APIReader:                mgr.GetAPIReader(),
		Metadata:                 metaCache,
		Clock:                    clk,
		Recorder:                 recorder,
		Tokens:                   tokens,
		Transports:               NewTransports(cfg.Transport),
		Limiters:                 limiters,
		Fingerprinter:            fingerprinter,
		OperatorNamespace:        cfg.OperatorNamespace,
		CredentialsNamespace:     cfg.credentialsNamespace(),
		AllowPrivateDestinations: cfg.AllowPrivateDestinations,
		ReadOnly:                 cfg.ReadOnly,
		MaxConcurrentReconciles:  cfg.MaxConcurrentReconciles,
		Consumers:                &ConsumerScanner{Reader: mgr.GetAPIReader(), Clock: clk},
		Calls:                    calls,
		MinMintInterval:          cfg.MinMintInterval,
		ForcedRenewals:           forced,
		MinRenewalInterval:       max(0, cfg.MinRenewalInterval),
		Mints:                    mints,
		Writes:                   writes,
		FingerprintKeySecret:     cfg.FingerprintKeySecret,
		RenewalEvents:            cfg.RenewalEvents,
		Health:                   health,
		Clocks:                   clocks,
		Shards:                   shards,
		ShardRetry:               cfg.RetryPeriod,
		shardEvents:              shardEvents,
		CacheRanges:              cfg.cacheRanges,
		CacheSettle:              cfg.LeaseDuration,
	}
	reader := client.Reader(mgr.GetCache())
	currentCache.Store(&reader)
	accessTokens.use(mgr.GetCache(), mgr.Elected())
	if shards != nil {
		// Each replica reports the AccessTokens of its own ranges.
		accessTokens.use(mgr.GetCache(), closedChannel())
		accessTokens.only(shards.Holds)
	}
	if err := at.SetupWithManager(mgr, secretsSources, namespacesSource); err != nil {
		return fmt.Errorf("setting up AccessToken controller: %w", err)
	}
	cat := &ClusterAccessTokenReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Metadata: metaCache,
		Recorder: recorder, OperatorNamespace: cfg.OperatorNamespace, WatchNamespaces: cfg.WatchNamespaces,
		Fingerprinter: fingerprinter, ReadOnly: cfg.ReadOnly}
	if err := cat.SetupWithManager(mgr, namespacesSource); err != nil {
		return fmt.Errorf("setting up ClusterAccessToken controller: %w", err)
	}
	for _, kind := range []tokensv1alpha1.IssuerKind{tokensv1alpha1.TokenIssuerKind, tokensv1alpha1.ClusterTokenIssuerKind} {
		ir := &IssuerReconciler{Client: cfg.cacheReaderFor(mgr.GetClient(), mgr.GetAPIReader()), APIReader: mgr.GetAPIReader(), Metadata: metaCache, Kind: kind,
			CredentialsNamespace: cfg.credentialsNamespace(), Health: health, Clocks: clocks, Recorder: recorder}
		if err := ir.SetupWithManager(mgr, secretsSources); err != nil {
			return fmt.Errorf("setting up %s controller: %w", kind, err)
		}
	}
	return nil
}

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create

// ensureFingerprintKey reads the installation's fingerprint key, creating it on
// first start. Every replica reads the same key, so fingerprints survive restarts.
func ensureFingerprintKey(ctx context.Context, mgr ctrl.Manager, cfg Config) ([]byte, error) {
	const dataKey = "key"
	name := types.NamespacedName{Namespace: cfg.OperatorNamespace, Name: cfg.FingerprintKeySecret}
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return nil, err
	}
	for range 3 {
		s := &corev1.Secret{}
		err := direct.Get(ctx, name, s)
		if err == nil {
			if k := s.Data[dataKey]; len(k) >= 32 {
				return k, nil
			}
			return nil, fmt.Errorf("Secret %s has no usable %q key", name, dataKey)
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading fingerprint key: %w", err)
		}
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace,
				Labels: map[string]string{tokensv1alpha1.LabelManagedBy: tokensv1alpha1.ManagedByValue}},
			Data: map[string][]byte{dataKey: k},
		}
		err = direct.Create(ctx, s)
		if err == nil {
			return k, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating fingerprint key: %w", err)
		}
		// Another replica created it first: read theirs.
	}
	return nil, fmt.Errorf("could not read or create fingerprint key Secret %s", name)
}
