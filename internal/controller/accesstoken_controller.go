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

// Package controller holds the reconcilers of AccessTokens and issuers. Each
// reconcile gathers what it needs, decides in pure code, and only then acts.
package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/internal/sharding"
)

// TokenSource mints and revokes tokens; *issuer.Engine is the implementation.
type TokenSource interface {
	Issue(ctx context.Context, call issuer.Call) (*issuer.Token, error)
	Revoke(ctx context.Context, call issuer.Call, token, tokenID string) error
}

// AccessTokenReconciler keeps each AccessToken's Secret filled with a valid token.
type AccessTokenReconciler struct {
	client.Client
	// APIReader reads from the apiserver directly: credential Secrets (never cached)
	// and Secrets that the label-filtered cache cannot see.
	APIReader client.Reader
	// Metadata is a metadata-only cache of Secrets and Namespaces, used to notice
	// credential changes and evaluate namespace selectors without holding values.
	Metadata client.Reader
	Clock    clock.PassiveClock
	Recorder events.EventRecorder
	// Health, when set, is told the result of every call, for the issuers'
	// Ready conditions.
	Health *IssuerHealth
	// Clocks, when set, measures each issuer's clock and corrects for it.
	Clocks *ProviderClocks
	Tokens TokenSource
	// Transports hands out one HTTP client per distinct transport configuration.
	Transports *Transports
	// Limiters rate-limits calls per issuer; nil means no limit.
	Limiters      *IssuerLimiters
	Fingerprinter *secret.Fingerprinter
	// OperatorNamespace holds the operator's state Secrets.
	OperatorNamespace string
	// CredentialsNamespace holds the credential Secrets of ClusterTokenIssuers.
	CredentialsNamespace string
	// AllowPrivateDestinations lets TokenIssuers call loopback, link-local and
	// private addresses (ClusterTokenIssuers always may).
	AllowPrivateDestinations bool
	// MaxConcurrentReconciles is the number of AccessTokens reconciled at once.
	MaxConcurrentReconciles int
	// Consumers finds workloads that will not see a renewed token; nil disables it.
	Consumers *ConsumerScanner
	// Calls runs the calls to token endpoints outside the reconcile workers.
	Calls *Calls
	// MinMintInterval is the least time between two mints of one AccessToken,
	// whatever asks for them (renewal policy, annotation, input changes).
	MinMintInterval time.Duration
	// ForcedRenewals limits, per namespace, the mints that the renew annotation
	// and input changes ask for ahead of schedule; nil means no limit.
	ForcedRenewals *NamespaceLimiters
	// MinRenewalInterval is the least time from a token's issue to its
	// scheduled renewal, whatever lifetime the provider answers.
	MinRenewalInterval time.Duration
	// Mints limits, per namespace, every mint that is not a scheduled renewal
	// or a retry (see spendsMintBudget); nil means no limit.
	Mints *NamespaceLimiters
	// Writes limits, per namespace, the bytes written to Secrets for its
	// AccessTokens; nil means no limit.
	Writes *WriteBudgets
	// RenewalEvents raises a Normal event for every renewal, not only for the
	// first token and for recovering from failures.
	RenewalEvents bool
	// FingerprintKeySecret names the Secret of the fingerprint key in
	// OperatorNamespace: never readable as a credential.
	FingerprintKeySecret string
	// ReadOnly makes no calls to token endpoints and writes nothing but
	// AccessTokens' status (see held): for a passive cluster.
	ReadOnly bool
	// Shards, when set, is this replica's share of the namespaces: it
	// reconciles only the AccessTokens of the ranges it holds. Nil: all.
	Shards *sharding.Coordinator
	// ShardRetry is how long a reconcile turned away by a late renewal of
	// its range's Lease waits before it is tried again (the retry period).
	ShardRetry time.Duration
	// shardEvents queues the AccessTokens of a range when Shards takes it.
	shardEvents chan event.GenericEvent
	// CacheRanges, when set, is what the cache holds: the AccessTokens and
	// Secrets of the ranges held. Until a range taken is in it, and for
	// CacheSettle after, a missing AccessToken is confirmed live and a mint
	// confirmed against the apiserver.
	CacheRanges *sharding.CacheFilter
	CacheSettle time.Duration

	// attempts holds, by AccessToken namespace and name, when this process
	// last started a mint: kept after the AccessToken is deleted (the least
	// recently used go first), so that deleting and re-creating it does not
	// reset its MinMintInterval.
	attempts *lru.Cache
	// stateVersions holds, by AccessToken, its UID and the resourceVersion of the
	// state Secret this process wrote last: a cache that shows another is read
	// past (see gather), so that a revocation is never decided on stale state.
	stateVersions sync.Map
	// orphans holds, by AccessToken, when a state Secret was first seen
	// without its AccessToken (see deleteOrphanState).
	orphans sync.Map
	// mintSlots holds, by AccessToken, the time its namespace's budgets gave
	// a mint that had to wait for them (see reserveMint).
	mintSlots sync.Map
	// issuerCopies holds the one copy of each issuer's version the
	// AccessTokens share (see sharedIssuer).
	issuerCopies *lru.Cache
	// writeSlots holds, by AccessToken, its turn to write in its namespace's
	// write budget while the namespace is in debt (see writeWait).
	writeSlots sync.Map
	// deletions holds, by AccessToken UID, when this process first tried to
	// finalize it: the bound on revocation at deletion counts from there.
	deletions sync.Map
	// revokedOnDelete holds, by AccessToken UID and token, the latest tokens
	// this process revoked for deleted AccessTokens (revokedKey), so that a
	// finalize run again (its finalizer patch conflicted, or a second job was
	// queued meanwhile) does not revoke them twice.
	revokedOnDelete *lru.Cache

	// written holds, by AccessToken, the writtenStatus this process wrote last
	// (see statusMayLag).
	written sync.Map

	// audiences holds, by audience, whether the Kubernetes API accepts it
	// (audienceVerdict), for serviceAccountToken values.
	audiences *lru.Cache

	// credentials holds the values of credential Secrets, read once per
	// version and bounded in bytes (see credentialStore).
	credentials *credentialStore
	// CredentialCacheBytes bounds the bytes of credential values kept between
	// reads; 0 means DefaultCredentialCacheBytes.
	CredentialCacheBytes int
	// fanOut paces, per namespace, the reconciles a change of an issuer or of
	// a credential Secret queues.
	fanOut *fanOut

	// copies holds, by AccessToken, the last token this process wrote (tokenCopy):
	// memory the Secret cache already spends once more, in exchange for restoring
	// an edited Secret without minting and without an extra write per token.
	copies sync.Map
	// unwritten holds, by AccessToken, a token minted whose write failed
	// (unwrittenToken): the retry writes it rather than mint another.
	unwritten sync.Map
}

// +kubebuilder:rbac:groups=tokens.tokenmint.dev,resources=accesstokens,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=tokens.tokenmint.dev,resources=accesstokens/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=tokens.tokenmint.dev,resources=accesstokens/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;patch

// Reconcile gathers an AccessToken's inputs, decides whether a token is due, and
// acts: issue, restore the Secret, revoke superseded tokens, and write status once.
// Calls to token endpoints are handed to r.Calls and never made by the shared
// reconcile workers: the job queues the AccessToken again when it ends.
func (r *AccessTokenReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	if !r.Shards.Holds(req.Namespace) {
		// Another replica serves it, or none until its range is taken;
		// taking the range queues it again.
		r.Calls.Forget(req.NamespacedName)
		r.forgetSlots(req.NamespacedName)
		if r.Shards.Owns(req.Namespace) {
			// Its range is still this replica's, but the Lease's renewal
			// is late: served again once it lands, and nothing else
			// queues it then.
			log.V(1).Info("range not served until its lease is renewed; trying again", "retry", r.shardRetry())
			return ctrl.Result{RequeueAfter: r.shardRetry()}, nil
		}
		log.V(1).Info("range not served by this replica")
		return ctrl.Result{}, nil
	}
	at := &tokensv1alpha1.AccessToken{}
	if err := r.Get(ctx, req.NamespacedName, at); err != nil {
		if apierrors.IsNotFound(err) {
			if r.cacheMayLag(req.Namespace) {
				// Its range was taken moments ago: an AccessToken not in
				// the cache yet is not a deleted one. Its add event queues
				// it once it is.
				if exists, err := r.existsLive(ctx, req.NamespacedName); err != nil || exists {
					return ctrl.Result{}, err
				}
			}
			r.copies.Delete(req.NamespacedName)
			r.unwritten.Delete(req.NamespacedName)
			r.written.Delete(req.NamespacedName)
			r.stateVersions.Delete(req.NamespacedName)
			r.forgetSlots(req.NamespacedName)
			r.Calls.Forget(req.NamespacedName)
			if r.ReadOnly {
				return ctrl.Result{}, nil
			}
			wait, err := r.deleteOrphanState(ctx, req.NamespacedName)
			return ctrl.Result{RequeueAfter: wait}, err
		}
		return ctrl.Result{}, err
	}
	r.orphans.Delete(req.NamespacedName)
	if r.Calls.Busy(req.NamespacedName) {
		// A call for it is waiting or running; its end queues it again.
		return ctrl.Result{}, nil
	}
	live := false
	if job, found := r.Calls.Take(req.NamespacedName); found {
		switch {
		case job.Err != nil || (!at.DeletionTimestamp.IsZero() && job.Result.RequeueAfter > 0 &&
			job.Object != nil && job.Object.GetDeletionTimestamp() != nil):
			// A revocation at deletion that waits to be tried again. A
			// renewal or revocation job that ended after the deletion does
			// not delay the finalizer: it goes on below.
			return job.Result, job.Err
		case jobStands(at, job, r.statusMayLag(at), r.Clock.Now()) && r.sameInputs(ctx, at, job.Inputs):
			// The job wrote status and the cache shows nothing the job did
			// not act on (no deletion, spec change or renewal request, and
			// the issuer and credentials it was decided on): its result
			// stands, as a reconcile's own would, without deciding again on
			// a cache that has not caught up with that write.
			return job.Result, nil
		case r.statusMayLag(at) || !at.DeletionTimestamp.IsZero():
			// Something asked meanwhile: decide on what the apiserver
			// holds, not on a cache that lags behind the job's writes.
			live = true
		}
	}
	if !at.DeletionTimestamp.IsZero() {
		if r.ReadOnly {
			return r.releaseReadOnly(ctx, at)
		}
		return r.finalize(ctx, at)
	}

	var in *inputs
	var err error
	if live {
		if at, in, err = r.gatherLive(ctx, req); err != nil || at == nil {
			return ctrl.Result{}, err
		}
	} else if in, err = r.gather(ctx, at, false); err != nil {
		return ctrl.Result{}, err
	}
	now := r.Clock.Now()
	d := decide(in, now)
	if d.action == actionHold {
		return r.hold(ctx, at, in, d, now)
	}
	if d.action == actionAdopt && !live {
		if r.statusMayLag(at) {
			// The cache does not show this process's last status write
			// yet: a Secret ahead of that stale status is no lost write.
			// Decide on what the apiserver holds.
			if at, in, err = r.gatherLive(ctx, req); err != nil || at == nil {
				return ctrl.Result{}, err
			}
		} else {
			// Secrets and AccessTokens are cached from two watches: the
			// status a mint wrote can show before the Secret it wrote, whose
			// cached copy then holds the token before it. Status is rebuilt
			// only from the Secret the apiserver holds.
			in.secret, in.secretMatches, in.secretRecord = nil, false, nil
			if err := r.gatherSecret(ctx, r.APIReader, at, in); err != nil {
				return ctrl.Result{}, err
			}
		}
		d = decide(in, now)
		if d.action == actionHold {
			return r.hold(ctx, at, in, d, now)
		}
	}
	if d.action == actionIssue || d.action == actionRestore {
		// Minting cannot be undone: confirm the decision against the apiserver
		// wherever the cache may not show the truth.
		switch {
		case r.statusMayLag(at) || r.Shards.Recent(at.Namespace) || r.cacheMayLag(at.Namespace):
			// With sharding, a range taken moments ago may not show yet in
			// this cache what its previous holder wrote last, nor, until
			// its objects are listed, the objects themselves.
			if at, in, err = r.gatherLive(ctx, req); err != nil || at == nil {
				return ctrl.Result{}, err
			}
		case in.secret == nil:
			// The typed cache holds only tokenmint's Secrets; the metadata cache
			// knows the name of every other Secret. One it shows (someone
			// else's, or tokenmint's whose label was removed) is read live
			// before anything is minted. One neither shows is created, never
			// applied: the create fails if it appeared meanwhile (tokenmint's
			// own not yet in the typed cache, say), and is then read live.
			if r.secretMayExist(ctx, at) {
				if err := r.gatherSecret(ctx, r.APIReader, at, in); err != nil {
					return ctrl.Result{}, err
				}
			}
		}
		d = decide(in, now)
		if d.action == actionHold {
			return r.hold(ctx, at, in, d, now)
		}
	}
	if err := r.ensureFinalizer(ctx, at, in); err != nil {
		return ctrl.Result{}, err
	}
	log.V(1).Info("decided", "action", d.action, "reason", d.reason)
	if d.action != actionIssue {
		// The turns it was given in its namespace's budgets while a mint
		// was due are not kept for a mint that may come much later.
		r.forgetSlots(req.NamespacedName)
	}

	if d.action == actionIssue {
		if wait, why := r.mintWait(at, in, d, now); wait > 0 {
			return r.throttled(ctx, at, in, d, why, wait)
		}
	}
	if d.action == actionIssue || revocationDue(in, now) {
		// The call runs outside the reconcile workers, bounded per issuer and
		// per namespace.
		if d.action == actionIssue {
			r.attempts.Add(req.NamespacedName, mintAttempt{at: now, uid: at.UID})
		}
		generation := at.Generation
		r.configureRate(in)
		r.Calls.SubmitFor(at, in.issuerKey, in.inputsHash, func(jctx context.Context) (ctrl.Result, error) {
			if !r.Shards.Holds(req.Namespace) {
				// Its range went, or is being released, while it waited its
				// turn: the replica that takes the range decides again.
				logf.FromContext(jctx).V(1).Info("call dropped: the range is not served here now")
				return ctrl.Result{}, nil
			}
			cur := &tokensv1alpha1.AccessToken{}
			if err := r.Get(jctx, req.NamespacedName, cur); err != nil || cur.UID != at.UID ||
				cur.Generation != generation || !cur.DeletionTimestamp.IsZero() {
				// It changed while waiting its turn: decide again.
				return ctrl.Result{}, client.IgnoreNotFound(err)
			}
			if d.action == actionIssue {
				if wait := r.writeWait(at, r.Clock.Now()); wait > 0 {
					// The namespace's writes while this waited its turn
					// used its budget: decide again when it may write.
					return ctrl.Result{RequeueAfter: wait}, nil
				}
			}
			return r.act(jctx, at, in, d, r.Clock.Now())
		})
		return ctrl.Result{}, nil
	}
	return r.act(ctx, at, in, d, now)
}

// shardRetry is how long a reconcile turned away by a late Lease renewal
// waits: one retry period, the time the next renewal takes.
func (r *AccessTokenReconciler) shardRetry() time.Duration {
	if r.ShardRetry > 0 {
		return r.ShardRetry
	}
	return 2 * time.Second
}

// jobStands reports whether the result of a finished job may be returned
// as is for at, as the cache shows it: the job wrote status the cache may
// not show yet (mayLag), nothing asked for at while the job ran, at has not
// changed in a way the job did not act on (deleted, its spec changed, a
// renewal asked for), and the renewal (or retry) time of the status the job
// left has not come at now. The job's result is a wait counted from its end:
// a reconcile that takes it late (its end merged with another event, such as
// a metadata change that also makes the cache differ from the job's write)
// must not wait past a renewal that has come meanwhile. The issuer and
// credentials are checked apart (see sameInputs).
func jobStands(at *tokensv1alpha1.AccessToken, job Finished, mayLag bool, now time.Time) bool {
	if job.Asked || !mayLag || !at.DeletionTimestamp.IsZero() || job.Object == nil ||
		at.Generation != job.Object.GetGeneration() ||
		at.Annotations[tokensv1alpha1.AnnotationRenew] != job.Object.GetAnnotations()[tokensv1alpha1.AnnotationRenew] {
		return false
	}
	// A failed job's renewal time is its retry: a token expired during an
	// outage does not make every failed retry decide again on live reads.
	left, ok := job.Object.(*tokensv1alpha1.AccessToken)
	return !ok || left.Status.RenewalTime == nil || now.Before(left.Status.RenewalTime.Time)
}

// sameInputs reports whether at's inputs, as the caches show them now, are
// still those a job was decided on. A change of the issuer or of a
// credential after the job ended queues at again, and the work queue merges
// that with the job's own end: the result of a job decided on the old
// inputs must not stand for the new ones. A job submitted without inputs
// has nothing to compare.
func (r *AccessTokenReconciler) sameInputs(ctx context.Context, at *tokensv1alpha1.AccessToken, inputs string) bool {
	if inputs == "" {
		return true
	}
	in, err := r.gather(ctx, at, false)
	return err == nil && in.inputsHash == inputs
}

// act carries out decision d about at and writes its status.
func (r *AccessTokenReconciler) act(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, d decision, now time.Time) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	orig := at.DeepCopy()
	if at.Status.FailedAttempts == 0 {
		// Follows changes of the renewal policy without minting.
		at.Status.RenewalTime = renewalTime(at, in.renewalFloor)
	}
	if d.action == actionIssue || d.action == actionRestore {
		// From here on the reconcile writes what it minted: a shutdown must not
		// cut it between the call, the Secret and the status, so it is detached
		// from cancellation and bounded by its own timeout instead.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), actTimeout(in.spec))
		defer cancel()
	}
	if d.action == actionIssue {
		// Superseded tokens due for revocation are revoked before the mint,
		// and room is made for the token it replaces, so that the state is
		// written once, with the new token.
		if in.state.Token != "" {
			capSupersededTo(&in.state, now, maxSuperseded-1)
		}
		if err := r.revokeDue(ctx, at, in, now); err != nil {
			log.Error(err, "revoking superseded tokens")
		}
	}
	r.resume(at)
	var actErr error
	switch d.action {
	case actionIssue:
		actErr = r.issue(ctx, at, in, d, now)
	case actionRestore:
		actErr = r.restore(ctx, at, in, d)
	case actionAdopt:
		adopt(at, in)
		if in.reown {
			actErr = r.reownSecret(ctx, at, in)
		}
	case actionBlocked:
		if setBlocked(at, d) {
			r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, d.reason, "Issue", "%s", d.message)
		}
	}
	if actErr != nil {
		return ctrl.Result{}, actErr
	}
	if d.action == actionIssue {
		// The mint wrote the state, or failed: then what the revocations
		// changed is written now.
		if in.stateDirty {
			if err := r.applyState(ctx, at, in.state); err != nil {
				log.Error(err, "writing state after revoking superseded tokens")
			}
			in.stateDirty = false
		}
	} else if err := r.revokeSuperseded(ctx, at, in, now); err != nil {
		log.Error(err, "revoking superseded tokens")
	}
	if in.stateMoved != "" && !in.stateDirty {
		// Written under its name: the copy an earlier version kept under
		// the AccessToken's UID goes.
		old := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.OperatorNamespace, Name: in.stateMoved}}
		if err := r.Delete(ctx, old); client.IgnoreNotFound(err) != nil {
			log.Error(err, "removing the state Secret named by UID")
		}
		in.stateMoved = ""
	}
	recheck := orig.Status.TokenFingerprint != at.Status.TokenFingerprint || orig.Status.ObservedGeneration != at.Generation
	if err := r.checkConsumers(ctx, at, recheck); err != nil {
		log.Error(err, "looking for consumers that will not see the new token")
	}

	setReissueAfter(in, r.Clock.Now())
	setReady(at, in, r.Clock.Now())
	at.Status.ObservedGeneration = at.Generation
	if err := r.writeStatus(ctx, orig, at); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: nextWake(at, in, d, r.Clock.Now())}, nil
}

// reportedThrottle is the shortest wait of a due mint that status reports:
// a shorter one is not worth a write.
const reportedThrottle = time.Second

// throttled records that a due mint waits (see mintWait) and comes back when it may go.
func (r *AccessTokenReconciler) throttled(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, d decision, why string, wait time.Duration) (ctrl.Result, error) {
	logf.FromContext(ctx).V(1).Info("mint waits", "reason", d.reason, "wait", wait)
	if wait < reportedThrottle {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	orig := at.DeepCopy()
	status := metav1.ConditionTrue
	if prev := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionRenewing); prev != nil {
		status = prev.Status
	}
	meta.SetStatusCondition(&at.Status.Conditions, metav1.Condition{
		Type: tokensv1alpha1.ConditionRenewing, Status: status, Reason: tokensv1alpha1.ReasonThrottled,
		Message: fmt.Sprintf("%s waits: %s", d.message, why), ObservedGeneration: at.Generation,
	})
	setReady(at, in, r.Clock.Now())
	if err := r.writeStatus(ctx, orig, at); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: wait}, nil
}

// writtenStatus identifies a status write: the object's UID and the
// resourceVersion the write produced.
type writtenStatus struct {
	uid             types.UID
	resourceVersion string
}

// checkConsumers sets RotationVisible when recheck is set (a token was just
// issued, or the spec, its restart targets say, changed) or the condition was
// never set, and raises an event when it turns False.
func (r *AccessTokenReconciler) checkConsumers(ctx context.Context, at *tokensv1alpha1.AccessToken, recheck bool) error {
	prev := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionRotationVisible)
	if r.Consumers == nil || at.Status.IssuedAt == nil || (!recheck && prev != nil) {
		return nil
	}
	// Only the restart targets that agreed to be restarted follow a new token.
	var agreed []tokensv1alpha1.RestartTarget
	for _, t := range at.Spec.RestartTargets {
		if r.restartAllowed(ctx, at, t) {
			agreed = append(agreed, t)
		}
	}
	stale, err := r.Consumers.Stale(ctx, at.Namespace, at.Spec.Secret.Name, agreed)
	if err != nil {
		return err
	}
	c := metav1.Condition{Type: tokensv1alpha1.ConditionRotationVisible, ObservedGeneration: at.Generation,
		Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonConsumersFollow,
		Message: "no running workload reads the Secret through environment variables or subPath mounts, except restart targets"}
	if len(stale) > 0 {
		c.Status, c.Reason = metav1.ConditionFalse, tokensv1alpha1.ReasonConsumersStale
		c.Message = fmt.Sprintf("%s read Secret %q in a way that never shows them a new token (environment variables and subPath mounts are read once, at start): add them to spec.restartTargets, or mount the Secret as a volume without subPath",
			strings.Join(stale, ", "), at.Spec.Secret.Name)
	}
	if len(c.Message) > 1024 {
		c.Message = c.Message[:1021] + "..."
	}
	if c.Status == metav1.ConditionFalse && (prev == nil || prev.Message != c.Message) {
		r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, c.Reason, "Issue", "%s", c.Message)
	}
	meta.SetStatusCondition(&at.Status.Conditions, c)
	return nil
}

// actTimeout bounds a reconcile that mints: the endpoint's timeout plus time to
// write the result. The manager's graceful shutdown waits for it.
func actTimeout(spec *tokensv1alpha1.IssuerSpec) time.Duration {
	d := issuer.DefaultTimeout
	if spec != nil && spec.Timeout != nil && spec.Timeout.Duration > 0 {
		d = min(spec.Timeout.Duration, MaxTimeout)
	}
	return d + 20*time.Second
}

// statusMayLag reports whether the cache may not yet show the status this
// process wrote last. Informers are complete when the manager starts, and while
// it leads only this process writes status, so an AccessToken it has not
// written, or whose own last write the cache shows, is current.
func (r *AccessTokenReconciler) statusMayLag(at *tokensv1alpha1.AccessToken) bool {
	v, ok := r.written.Load(client.ObjectKeyFromObject(at))
	return ok && v.(writtenStatus) != writtenStatus{at.UID, at.ResourceVersion}
}

// gatherLive re-reads the AccessToken and its inputs from the apiserver.
func (r *AccessTokenReconciler) gatherLive(ctx context.Context, req ctrl.Request) (*tokensv1alpha1.AccessToken, *inputs, error) {
	at := &tokensv1alpha1.AccessToken{}
	if err := r.APIReader.Get(ctx, req.NamespacedName, at); err != nil {
		return nil, nil, client.IgnoreNotFound(err)
	}
	if !at.DeletionTimestamp.IsZero() {
		return nil, nil, nil
	}
	in, err := r.gather(ctx, at, true)
	return at, in, err
}

// writeStatus patches status when it changed: a no-op reconcile writes nothing.
// The patch holds only what changed in the status, and the apiserver answers
// with the AccessToken's metadata alone: the manager needs only the new
// resourceVersion, and the AccessToken itself arrives through the watch.
func (r *AccessTokenReconciler) writeStatus(ctx context.Context, orig, at *tokensv1alpha1.AccessToken) error {
	if equality.Semantic.DeepEqual(orig.Status, at.Status) {
		return nil
	}
	patch, err := statusMergePatch(&orig.Status, &at.Status)
	if err != nil {
		return fmt.Errorf("updating status: %w", err)
	}
	m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: at.Namespace, Name: at.Name}}
	m.SetGroupVersionKind(tokensv1alpha1.GroupVersion.WithKind("AccessToken"))
	if err := r.Status().Patch(ctx, m, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("updating status: %w", err)
	}
	at.ResourceVersion = m.ResourceVersion
	r.written.Store(client.ObjectKeyFromObject(at), writtenStatus{at.UID, at.ResourceVersion})
	return nil
}

// statusMergePatch is the JSON merge patch (RFC 7386) that turns status from
// into to: changed fields set, removed ones null, lists (conditions) whole.
func statusMergePatch(from, to *tokensv1alpha1.AccessTokenStatus) ([]byte, error) {
	type doc struct {
		Status *tokensv1alpha1.AccessTokenStatus `json:"status"`
	}
	a, err := json.Marshal(doc{from})
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(doc{to})
	if err != nil {
		return nil, err
	}
	return jsonpatch.CreateMergePatch(a, b)
}
