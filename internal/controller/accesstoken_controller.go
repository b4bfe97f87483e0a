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
	"errors"
	"fmt"
	"slices"
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
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/csaupgrade"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// RevokeFinalizer is set on AccessTokens whose issuer can revoke, so the current
// token is revoked when the AccessToken is deleted.
const RevokeFinalizer = "tokens.tokenmint.dev/revoke"

// revokeOnDeleteTimeout bounds how long deletion waits for revocation: after it,
// the finalizer is removed whatever the provider says, so deletion never blocks for ever.
const revokeOnDeleteTimeout = 2 * time.Minute

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

	// attempts holds, by AccessToken namespace and name, when this process
	// last started a mint: kept after the AccessToken is deleted (the least
	// recently used go first), so that deleting and re-creating it does not
	// reset its MinMintInterval.
	attempts *lru.Cache
	// stateVersions holds, by AccessToken, its UID and the resourceVersion of the
	// state Secret this process wrote last: a cache that shows another is read
	// past (see gather), so that a revocation is never decided on stale state.
	stateVersions sync.Map
	// deletions holds, by AccessToken UID, when this process first tried to
	// finalize it: the bound on revocation at deletion counts from there.
	deletions sync.Map

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
	at := &tokensv1alpha1.AccessToken{}
	if err := r.Get(ctx, req.NamespacedName, at); err != nil {
		if apierrors.IsNotFound(err) {
			r.copies.Delete(req.NamespacedName)
			r.written.Delete(req.NamespacedName)
			r.stateVersions.Delete(req.NamespacedName)
			r.Calls.Forget(req.NamespacedName)
			if r.ReadOnly {
				return ctrl.Result{}, nil
			}
			return ctrl.Result{}, r.deleteOrphanState(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if r.Calls.Busy(req.NamespacedName) {
		// A call for it is waiting or running; its end queues it again.
		return ctrl.Result{}, nil
	}
	live := false
	if job, found := r.Calls.Take(req.NamespacedName); found {
		switch {
		case job.Err != nil || (!at.DeletionTimestamp.IsZero() && job.Result.RequeueAfter > 0):
			return job.Result, job.Err
		case !job.Asked && r.statusMayLag(at) && at.DeletionTimestamp.IsZero() &&
			at.Generation == job.Object.GetGeneration() &&
			at.Annotations[tokensv1alpha1.AnnotationRenew] == job.Object.GetAnnotations()[tokensv1alpha1.AnnotationRenew]:
			// The job wrote status and the cache shows nothing the job did
			// not act on (no deletion, spec change or renewal request): its
			// result stands, as a reconcile's own would, without deciding
			// again on a cache that has not caught up with that write.
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
	if d.action == actionIssue || d.action == actionRestore {
		// Minting cannot be undone: confirm the decision against the apiserver
		// wherever the cache may not show the truth.
		switch {
		case r.statusMayLag(at):
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
		r.Calls.Submit(at, in.issuerKey, func(jctx context.Context) (ctrl.Result, error) {
			cur := &tokensv1alpha1.AccessToken{}
			if err := r.Get(jctx, req.NamespacedName, cur); err != nil || cur.UID != at.UID ||
				cur.Generation != generation || !cur.DeletionTimestamp.IsZero() {
				// It changed while waiting its turn: decide again.
				return ctrl.Result{}, client.IgnoreNotFound(err)
			}
			if d.action == actionIssue {
				if wait := r.Writes.Wait(at.Namespace, r.Clock.Now()); wait > 0 {
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
	recheck := orig.Status.TokenFingerprint != at.Status.TokenFingerprint || orig.Status.ObservedGeneration != at.Generation
	if err := r.checkConsumers(ctx, at, recheck); err != nil {
		log.Error(err, "looking for consumers that will not see the new token")
	}

	setReady(at, in, r.Clock.Now())
	at.Status.ObservedGeneration = at.Generation
	if err := r.writeStatus(ctx, orig, at); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: nextWake(at, in, d, r.Clock.Now())}, nil
}

// throttled records that a due mint waits (see mintWait) and comes back when it may go.
func (r *AccessTokenReconciler) throttled(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, d decision, why string, wait time.Duration) (ctrl.Result, error) {
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

// issue calls the endpoint and, on success, writes the token; on failure it keeps
// the last good token and schedules a retry.
func (r *AccessTokenReconciler) issue(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, d decision, now time.Time) error {
	call, err := r.buildCall(ctx, in)
	if err == nil && r.Limiters != nil {
		err = r.Limiters.Wait(ctx, in.issuerKey, at.Namespace)
	}
	var tok *issuer.Token
	if err == nil {
		start := r.Clock.Now()
		tok, err = r.Tokens.Issue(ctx, call)
		observeCall(in.issuerKey, start, r.Clock.Now(), err)
		r.Health.Record(in.issuerKey, err, r.Clock.Now())
		if r.Limiters != nil {
			r.Limiters.Observe(in.issuerKey, at.Namespace, err, r.Clock.Now())
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: leave everything as it was.
			return ctx.Err()
		}
		r.recordFailure(at, in, err, now)
		return nil
	}
	err = r.store(ctx, at, in, d, tok, now)
	if ie := (*issuer.Error)(nil); errors.As(err, &ie) {
		// The token cannot be written as asked: a failure like any other,
		// backed off, never an immediate retry that would mint again.
		r.recordFailure(at, in, err, now)
		return nil
	}
	return err
}

// buildCall reads the credential Secrets (never cached) and assembles the call.
func (r *AccessTokenReconciler) buildCall(ctx context.Context, in *inputs) (issuer.Call, error) {
	if err := issuer.Validate(in.spec); err != nil {
		return issuer.Call{}, &issuer.Error{Class: issuer.ClassInvalidConfig, Message: err.Error()}
	}
	data, versions, err := r.readCredentials(ctx, in)
	if err != nil {
		return issuer.Call{}, err
	}
	// The token about to be issued comes from exactly these versions.
	in.inputsHash = hashInputs(in.at, in, versions)
	secrets := map[tokensv1alpha1.SecretKeySelector]string{}
	for _, ref := range issuer.SecretRefs(in.spec) {
		v, ok := data[ref.Name][ref.Key]
		if !ok {
			return issuer.Call{}, &issuer.Error{Class: issuer.ClassInvalidConfig,
				Message: fmt.Sprintf("credential Secret %s/%s has no key %q", in.secretsNamespace, ref.Name, ref.Key)}
		}
		secrets[ref] = string(v)
	}
	var clientCert [][]byte
	if c := in.spec.ClientCertificate; c != nil {
		cert := secrets[tokensv1alpha1.SecretKeySelector{Name: c.SecretName, Key: corev1.TLSCertKey}]
		key := secrets[tokensv1alpha1.SecretKeySelector{Name: c.SecretName, Key: corev1.TLSPrivateKeyKey}]
		clientCert = [][]byte{[]byte(cert), []byte(key)}
	}
	httpClient, err := r.Transports.Get(in.spec, in.guarded, r.Clock.Now(), clientCert...)
	if err != nil {
		return issuer.Call{}, &issuer.Error{Class: issuer.ClassInvalidConfig, Message: err.Error()}
	}
	var saTokens map[tokensv1alpha1.ServiceAccountTokenSource]string
	if sources := issuer.ServiceAccountTokenSources(in.spec); len(sources) > 0 {
		if saTokens, err = r.serviceAccountTokens(ctx, in, sources); err != nil {
			return issuer.Call{}, err
		}
	}
	call := issuer.Call{
		Spec:       in.spec,
		Parameters: in.at.Spec.Parameters,
		Secrets:    secrets,
		HTTPClient: httpClient,

		NamespaceLabels: in.namespaceLabels,

		ServiceAccountTokens: saTokens,
	}
	if in.state.RefreshToken != "" && (in.state.RefreshTokenExpiresAt == nil || r.Clock.Now().Before(*in.state.RefreshTokenExpiresAt)) {
		call.RefreshToken = in.state.RefreshToken
	}
	return call, nil
}

// MaxCredentialBytes is the largest credential value tokenmint reads: a
// 4096-bit RSA key in PEM is about 3.3 KiB, a JSON key file about 2.4 KiB.
const MaxCredentialBytes = 16 << 10

// maxCachedAudiences is the most audience verdicts kept.
const maxCachedAudiences = 1024

// readCredentials returns the values of every credential Secret key the issuer
// reads, by Secret name, and the Secrets' versions. Values are read once per
// Secret version and shared by every AccessToken (see credentialStore): a
// Secret is read from the apiserver only when the store holds no version as
// recent as the metadata cache shows, and readers of the same version share
// that read. Only the keys issuers read are kept, each at most
// MaxCredentialBytes.
func (r *AccessTokenReconciler) readCredentials(ctx context.Context, in *inputs) (map[string]map[string][]byte, []string, error) {
	data := map[string]map[string][]byte{}
	var versions []string
	wanted := map[string][]string{}
	for _, ref := range issuer.SecretRefs(in.spec) {
		wanted[ref.Name] = append(wanted[ref.Name], ref.Key)
	}
	for _, k := range credentialKeys(in.spec, in.secretsNamespace) {
		ns, name, _ := strings.Cut(k, "/")
		key := types.NamespacedName{Namespace: ns, Name: name}
		if err := r.credentialAllowed(key, nil); err != nil {
			return nil, nil, err
		}
		uid, rv, found, err := r.cachedSecretVersion(ctx, key)
		if err != nil {
			return nil, nil, fmt.Errorf("reading credential Secret metadata: %w", err)
		}
		if c, ok := r.credentials.get(k); ok && found && c.uid == uid && (c.resourceVersion == rv || newer(c.resourceVersion, rv)) &&
			hasKeys(c.data, wanted[name]) {
			data[name] = c.data
			versions = append(versions, c.version)
			continue
		}
		s, err := r.credentials.read(ctx, credentialVersion(k, uid, rv), func(ctx context.Context) (*corev1.Secret, error) {
			s := &corev1.Secret{}
			return s, r.APIReader.Get(ctx, key, s)
		})
		if err != nil {
			if apierrors.IsNotFound(err) {
				r.credentials.forget(k)
				return nil, nil, &issuer.Error{Class: issuer.ClassInvalidConfig, Message: fmt.Sprintf("credential Secret %s not found", key)}
			}
			return nil, nil, fmt.Errorf("reading credential Secret %s: %w", key, err)
		}
		if err := r.credentialAllowed(key, s); err != nil {
			return nil, nil, err
		}
		kept := map[string][]byte{}
		for _, dataKey := range wanted[name] {
			v, ok := s.Data[dataKey]
			if !ok {
				continue
			}
			if len(v) > MaxCredentialBytes {
				return nil, nil, &issuer.Error{Class: issuer.ClassInvalidConfig, Message: fmt.Sprintf(
					"credential Secret %s key %q holds %d bytes, more than the %d tokenmint reads", key, dataKey, len(v), MaxCredentialBytes)}
			}
			kept[dataKey] = v
		}
		c := r.credentials.add(k, credentialSecret{uid: s.UID, resourceVersion: s.ResourceVersion,
			version: credentialVersion(k, s.UID, s.ResourceVersion), data: kept})
		data[name] = c.data
		versions = append(versions, c.version)
	}
	return data, versions, nil
}

func hasKeys(data map[string][]byte, keys []string) bool {
	for _, k := range keys {
		if _, ok := data[k]; !ok {
			return false
		}
	}
	return true
}

// credentialAllowed refuses tokenmint's own Secrets as credentials: the
// fingerprint key and the state Secrets (which hold every AccessToken's refresh
// token) are never sent to an endpoint, whatever an issuer names. s, when
// known, is checked by its labels too.
func (r *AccessTokenReconciler) credentialAllowed(key types.NamespacedName, s *corev1.Secret) error {
	own := key.Namespace == r.OperatorNamespace &&
		(key.Name == r.FingerprintKeySecret || strings.HasPrefix(key.Name, secret.StatePrefix))
	if s != nil && s.Labels[tokensv1alpha1.LabelManagedBy] == tokensv1alpha1.ManagedByValue && s.Labels[secret.LabelComponent] == secret.ComponentState {
		own = true
	}
	if own {
		return &issuer.Error{Class: issuer.ClassInvalidConfig, Message: fmt.Sprintf(
			"Secret %s is tokenmint's own and can never be read as a credential", key)}
	}
	return nil
}

// store writes a freshly issued token: state first (so a crash never loses the
// refresh token), then the Secret pods mount, then status.
func (r *AccessTokenReconciler) store(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, d decision, tok *issuer.Token, now time.Time) error {
	out := secret.Output{Token: tok.Value, Fields: tok.Fields, IssuedAt: tok.IssuedAt.Truncate(time.Second), ExpiresAt: truncated(tok.ExpiresAt)}
	if at.Spec.Secret.PreviousKey != "" && in.secret != nil && in.secretMatches && !tokenExpired(at, now) {
		out.Previous, out.PreviousUntil = string(in.secret.Data[secret.Key(at)]), previousUntil(at, in, now)
	}
	data, err := secret.Data(at, out)
	if err != nil {
		// CheckOutputs passed before the call: only the size of what the
		// provider answered can be at fault.
		// Terminal: retrying would mint again and again a token that cannot be
		// written, so it waits for a change, with the long backoff.
		return &issuer.Error{Class: issuer.ClassInvalidConfig, Message: "the token cannot be written: " + err.Error()}
	}
	previous := at.Status.TokenFingerprint
	if in.keepsState() {
		st := in.state
		st.Issuer, st.IssuerUID = in.issuerKey, string(in.issuerUID)
		if st.Token != "" && in.spec.Revoke != nil {
			grace := 5 * time.Minute
			if in.spec.RevokeGracePeriod != nil {
				grace = in.spec.RevokeGracePeriod.Duration
			}
			st.Superseded = append(st.Superseded, secret.Superseded{Token: st.Token, ID: st.TokenID, RevokeAt: now.Add(grace)})
			capSuperseded(&st, now)
		}
		st.Token, st.Fields, st.TokenID = tok.Value, tok.Fields, tok.ID
		if tok.RefreshToken != "" {
			st.RefreshToken, st.RefreshTokenExpiresAt = tok.RefreshToken, tok.RefreshTokenExpiresAt
		}
		if err := r.applyState(ctx, at, st); err != nil {
			return err
		}
		in.state, in.stateDirty = st, false
	}
	rec := secret.Record{
		Fingerprint: r.Fingerprinter.Fingerprint([]byte(tok.Value)),
		IssuedAt:    out.IssuedAt,
		ExpiresAt:   out.ExpiresAt,
		InputsHash:  in.inputsHash,
	}
	if out.Previous != "" {
		rec.PreviousUntil = &out.PreviousUntil
	}
	written, err := r.writeSecret(ctx, at, in, data, rec)
	if err != nil {
		return err
	}
	r.copies.Store(client.ObjectKeyFromObject(at), tokenCopy{uid: at.UID, token: tok.Value, fields: tok.Fields, secretVersion: written})
	in.secret, in.unproven = &corev1.Secret{Data: data}, false
	in.secretMatches = true
	in.previous, in.previousUntil = out.Previous, out.PreviousUntil

	st := &at.Status
	first := st.IssuedAt == nil
	setIssued(at, rec, in.renewalFloor)
	st.LastRenewalRequest = at.Annotations[tokensv1alpha1.AnnotationRenew]

	reason, verb := tokensv1alpha1.ReasonRenewed, "renewed"
	if first {
		reason, verb = tokensv1alpha1.ReasonIssued, "issued"
	}
	msg := fmt.Sprintf("Token %s (%s)%s", verb, d.message, expiryPhrase(st))
	failing := meta.IsStatusConditionFalse(st.Conditions, tokensv1alpha1.ConditionRenewing)
	condReason, condMsg := reason, msg
	if shortLived(at, in.renewalFloor) {
		// Served, but renewed at the floor: the condition says so, and
		// an event marks the change.
		if prev := meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionRenewing); prev == nil || prev.Reason != tokensv1alpha1.ReasonShortLivedToken {
			r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, tokensv1alpha1.ReasonShortLivedToken, "Issue", "%s", shortLivedMessage(at, in.renewalFloor))
		}
		condReason, condMsg = tokensv1alpha1.ReasonShortLivedToken, msg+"; "+shortLivedMessage(at, in.renewalFloor)
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: tokensv1alpha1.ConditionRenewing, Status: metav1.ConditionTrue, Reason: condReason, Message: condMsg,
		ObservedGeneration: at.Generation,
	})
	switch {
	case failing:
		// Events mark transitions: a routine renewal is in status and metrics,
		// and costs no extra write; recovering from failures is news, and so is
		// the first token.
		r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, reason, "Issue", "%s after failing", msg)
	case first:
		r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, reason, "Issue", "%s", msg)
	}
	kind, ns, name := splitIssuerKey(in.issuerKey)
	tokensIssued.WithLabelValues(kind, ns, name).Inc()
	auditMint(ctx, in, d.reason, tok, st.TokenFingerprint, previous)
	if r.RenewalEvents && !first && !failing {
		r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, reason, "Issue", "%s", msg)
	}

	if previous != "" && previous != st.TokenFingerprint {
		r.restartTargets(ctx, at, now)
	}
	return nil
}

func expiryPhrase(st *tokensv1alpha1.AccessTokenStatus) string {
	s := ""
	if st.ExpiresAt != nil {
		s += "; expires " + st.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if st.RenewalTime != nil {
		s += "; next renewal " + st.RenewalTime.UTC().Format(time.RFC3339)
	}
	return s
}

// DefaultPreviousKeyFor is how long previousKey holds a replaced token when
// previousKeyFor is not set.
const DefaultPreviousKeyFor = 5 * time.Minute

// previousUntil is when the token a renewal at now replaces leaves
// previousKey: after previousKeyFor, when it expires, or when it is revoked,
// whichever comes first (whole seconds, as the Secret records it).
func previousUntil(at *tokensv1alpha1.AccessToken, in *inputs, now time.Time) time.Time {
	until := now.Add(DefaultPreviousKeyFor)
	if f := at.Spec.Secret.PreviousKeyFor; f != nil && f.Duration > 0 {
		until = now.Add(f.Duration)
	}
	if exp := at.Status.ExpiresAt; exp != nil && exp.Before(&metav1.Time{Time: until}) {
		until = exp.Time
	}
	if in.spec != nil && in.spec.Revoke != nil {
		grace := 5 * time.Minute
		if in.spec.RevokeGracePeriod != nil {
			grace = in.spec.RevokeGracePeriod.Duration
		}
		until = minTime(until, now.Add(grace))
	}
	return until.Truncate(time.Second)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// errSecretTaken is returned when a Secret of the wanted name appeared between
// the decision to mint and the write: the token minted is not written.
var errSecretTaken = errors.New("a Secret of that name was created by someone else meanwhile; the token obtained for it was discarded")

// writeSecret writes the AccessToken's Secret and returns the resourceVersion
// written. A Secret known not to exist (in.secret is nil, and the caches or a
// live read showed no other of that name) is created; one that exists is
// applied.
func (r *AccessTokenReconciler) writeSecret(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, data map[string][]byte, rec secret.Record) (string, error) {
	name := types.NamespacedName{Namespace: at.Namespace, Name: at.Spec.Secret.Name}
	rec.OwnerProof = r.Fingerprinter.OwnerProof(at.Namespace, at.Spec.Secret.Name, at.UID)
	if in.secret == nil {
		s := secret.New(at, data, rec)
		err := r.Create(ctx, s, client.FieldOwner(secret.FieldOwner))
		if err == nil {
			r.chargeWrite(at, data)
			return s.ResourceVersion, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("creating Secret %s: %w", name, err)
		}
		// Created meanwhile: by this process (a write no cache shows yet), or
		// by someone else.
		if err := r.gatherSecret(ctx, r.APIReader, at, in); err != nil {
			return "", err
		}
		if in.foreign {
			return "", fmt.Errorf("writing Secret %s: %w", name, errSecretTaken)
		}
	}
	if in.secret != nil && secret.CreatedByUpdate(in.secret) && secret.LeavesOut(in.secret, at, data, rec) {
		// The create's ownership would keep what this apply leaves out.
		if err := r.upgradeOwnership(ctx, name); err != nil {
			return "", err
		}
	}
	desired := secret.Desired(at, data, rec)
	if err := r.Apply(ctx, desired, client.FieldOwner(secret.FieldOwner), client.ForceOwnership); err != nil {
		return "", fmt.Errorf("writing Secret %s: %w", name, err)
	}
	r.chargeWrite(at, data)
	return ptr.Deref(desired.ResourceVersion, ""), nil
}

// upgradeOwnership hands the fields tokenmint's create owns to its apply, so
// that an apply can remove them.
func (r *AccessTokenReconciler) upgradeOwnership(ctx context.Context, name types.NamespacedName) error {
	// Metadata only: the managed fields are all it needs, not the token.
	live := secretMetadata()
	if err := r.APIReader.Get(ctx, name, live); err != nil {
		return client.IgnoreNotFound(err)
	}
	return upgradeToApply(ctx, r.Client, live)
}

// upgradeToApply converts the managed fields of live, a Secret tokenmint
// created, to apply ownership.
func upgradeToApply(ctx context.Context, c client.Client, live *metav1.PartialObjectMetadata) error {
	patch, err := csaupgrade.UpgradeManagedFieldsPatch(live, sets.New(secret.FieldOwner), secret.FieldOwner)
	if err != nil || patch == nil {
		return err
	}
	if err := c.Patch(ctx, live, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		return fmt.Errorf("handing Secret %s/%s's fields to server-side apply: %w", live.Namespace, live.Name, err)
	}
	return nil
}

// secretMayExist reports whether the metadata cache shows a Secret of the
// AccessToken's Secret name (true as well when it cannot tell). It is asked
// when the typed cache, which holds tokenmint's own Secrets, shows none: the
// metadata cache holds all others.
func (r *AccessTokenReconciler) secretMayExist(ctx context.Context, at *tokensv1alpha1.AccessToken) bool {
	m := secretMetadata()
	err := r.Metadata.Get(ctx, types.NamespacedName{Namespace: at.Namespace, Name: at.Spec.Secret.Name}, m)
	return !apierrors.IsNotFound(err)
}

// ownSecretWrite reports whether a Secret event is for the version this
// process wrote last: it changes nothing the reconcile that wrote it did not
// already know, so it is not worth another reconcile.
func (r *AccessTokenReconciler) ownSecretWrite(o client.Object) bool {
	ref := metav1.GetControllerOfNoCopy(o)
	if ref == nil || ref.Kind != "AccessToken" {
		return false
	}
	c, ok := r.copies.Load(types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name})
	return ok && c.(tokenCopy).uid == ref.UID && c.(tokenCopy).secretVersion != "" &&
		c.(tokenCopy).secretVersion == o.GetResourceVersion()
}

func (r *AccessTokenReconciler) applyState(ctx context.Context, at *tokensv1alpha1.AccessToken, st secret.State) error {
	ac, err := secret.DesiredState(at, r.OperatorNamespace, st)
	if err != nil {
		return err
	}
	if err := r.Apply(ctx, ac, client.FieldOwner(secret.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("writing state Secret: %w", err)
	}
	r.chargeWrite(at, ac.Data)
	r.stateVersions.Store(client.ObjectKeyFromObject(at), writtenStatus{at.UID, ptr.Deref(ac.ResourceVersion, "")})
	return nil
}

// restore rewrites the Secret without minting: from the Secret's own data when only
// its metadata drifted, or from the state Secret's copy when the data was lost.
func (r *AccessTokenReconciler) restore(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, d decision) error {
	out, _ := in.output(r.Clock.Now())
	data, err := secret.Data(at, out)
	if err != nil {
		return &issuer.Error{Class: issuer.ClassInvalidConfig, Message: "the Secret cannot be written: " + err.Error()}
	}
	rec := recordOf(at)
	if out.Previous != "" {
		rec.PreviousUntil = &out.PreviousUntil
	}
	if in.secret != nil && in.secret.Type != "" && in.secret.Type != secretTypeOf(at) {
		// The type of a Secret cannot change: delete it and write it again.
		if err := r.Delete(ctx, in.secret); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("replacing Secret of a different type: %w", err)
		}
	}
	written, err := r.writeSecret(ctx, at, in, data, rec)
	if err != nil {
		return err
	}
	if c, ok := r.copies.Load(client.ObjectKeyFromObject(at)); ok && c.(tokenCopy).uid == at.UID {
		c := c.(tokenCopy)
		c.secretVersion = written
		r.copies.Store(client.ObjectKeyFromObject(at), c)
	}
	if d.reason != reasonTemplateChanged && d.reason != reasonOwnerProof {
		r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, "SecretRestored", "Restore",
			"Secret %s restored without minting a new token", at.Spec.Secret.Name)
	}
	in.secret, in.unproven = &corev1.Secret{Data: data}, false
	in.secretMatches = true
	in.previous, in.previousUntil = out.Previous, out.PreviousUntil
	return nil
}

func secretTypeOf(at *tokensv1alpha1.AccessToken) corev1.SecretType {
	if at.Spec.Secret.Type == "" {
		return corev1.SecretTypeOpaque
	}
	return at.Spec.Secret.Type
}

// recordFailure keeps the last good token and schedules the next attempt.
func (r *AccessTokenReconciler) recordFailure(at *tokensv1alpha1.AccessToken, in *inputs, err error, now time.Time) {
	st := &at.Status
	st.FailedAttempts++
	st.LastFailureTime = &metav1.Time{Time: now}
	// A failed attempt still records the inputs it was made with, so that the same
	// inputs back off while a new change is tried at once.
	st.InputsHash = in.inputsHash
	st.LastRenewalRequest = at.Annotations[tokensv1alpha1.AnnotationRenew]
	next := now.Add(retryDelay(at, err, now))
	st.RenewalTime = &metav1.Time{Time: next}

	reason, msg := failureReason(err)
	msg = fmt.Sprintf("%s (attempt %d; next attempt %s)", msg, st.FailedAttempts, next.UTC().Format(time.RFC3339))
	if failingFor(at, reason) {
		r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, reason, "Issue", "%s", msg)
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: tokensv1alpha1.ConditionRenewing, Status: metav1.ConditionFalse, Reason: reason, Message: msg,
		ObservedGeneration: at.Generation,
	})
}

// finalize revokes the current token (and any superseded ones) of a deleted
// AccessToken, then lets it go. The revocation calls run outside the reconcile
// workers; failures, and failures to gather what revocation needs, are retried
// for a bounded time.
func (r *AccessTokenReconciler) finalize(ctx context.Context, at *tokensv1alpha1.AccessToken) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(at, RevokeFinalizer) {
		return ctrl.Result{}, nil
	}
	first, _ := r.deletions.LoadOrStore(at.UID, r.Clock.Now())
	giveUp := first.(time.Time).Add(revokeOnDeleteTimeout)
	in, err := r.gather(ctx, at, true)
	if err != nil {
		if r.Clock.Now().Before(giveUp) {
			return ctrl.Result{}, fmt.Errorf("gathering what revocation needs: %w", err)
		}
		r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, tokensv1alpha1.ReasonRevokeFailed, "Revoke",
			"Could not read what revoking the token needs within %s; letting the AccessToken go", revokeOnDeleteTimeout)
		return ctrl.Result{}, r.release(ctx, at)
	}
	var pending []secret.Superseded
	if in.spec != nil && in.spec.Revoke != nil && revokesOnDelete(at) {
		pending = append(pending, in.state.Superseded...)
		if in.state.Token != "" {
			pending = append(pending, secret.Superseded{Token: in.state.Token, ID: in.state.TokenID})
		}
	}
	if len(pending) == 0 {
		return ctrl.Result{}, r.release(ctx, at)
	}
	r.Calls.Submit(at, in.issuerKey, func(jctx context.Context) (ctrl.Result, error) {
		jctx, cancel := context.WithTimeout(context.WithoutCancel(jctx), actTimeout(in.spec)*time.Duration(min(len(pending), 4)))
		defer cancel()
		done := true
		for _, s := range pending {
			if err := r.revokeAudited(jctx, in, s, revokeDeletion); err != nil {
				logf.FromContext(jctx).Info("revoking token of deleted AccessToken failed", "error", err.Error())
				done = false
			}
		}
		if !done && r.Clock.Now().Before(giveUp) {
			return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
		}
		if !done {
			r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, tokensv1alpha1.ReasonRevokeFailed, "Revoke",
				"Could not revoke the token within %s; letting the AccessToken go", revokeOnDeleteTimeout)
		}
		return ctrl.Result{}, r.release(jctx, at)
	})
	return ctrl.Result{}, nil
}

// release deletes the state of a deleted AccessToken and removes its finalizer.
func (r *AccessTokenReconciler) release(ctx context.Context, at *tokensv1alpha1.AccessToken) error {
	if err := r.retainSecret(ctx, at); err != nil {
		return err
	}
	if err := r.deleteState(ctx, at); err != nil {
		return err
	}
	r.stateVersions.Delete(client.ObjectKeyFromObject(at))
	// The optimistic lock makes the patch fail, rather than drop another
	// controller's finalizer, if the list changed since it was read.
	patch := client.MergeFromWithOptions(at.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(at, RevokeFinalizer)
	if err := r.Patch(ctx, at, patch); err != nil {
		return client.IgnoreNotFound(err)
	}
	r.deletions.Delete(at.UID)
	return nil
}

// ensureFinalizer adds the revoke finalizer only when the issuer can revoke
// and deletion revokes, or the Secret is retained (see wantsFinalizer); it
// removes it when revocationPolicy None leaves it nothing to do.
func (r *AccessTokenReconciler) ensureFinalizer(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs) error {
	want := wantsFinalizer(at, in)
	has := controllerutil.ContainsFinalizer(at, RevokeFinalizer)
	if want == has || (!want && revokesOnDelete(at)) {
		return nil
	}
	patch := client.MergeFromWithOptions(at.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if !want {
		controllerutil.RemoveFinalizer(at, RevokeFinalizer)
		if err := r.Patch(ctx, at, patch); err != nil {
			return fmt.Errorf("removing finalizer: %w", err)
		}
		return nil
	}
	controllerutil.AddFinalizer(at, RevokeFinalizer)
	if err := r.Patch(ctx, at, patch); err != nil {
		return fmt.Errorf("adding finalizer: %w", err)
	}
	return nil
}

// maxSuperseded is the most replaced tokens kept waiting for revocation: when
// renewals outpace the grace period, the oldest are revoked at once.
const maxSuperseded = 8

// capSuperseded brings the oldest superseded tokens' revocation forward to now
// when more than maxSuperseded wait, and forgets those beyond twice that (whose
// revocation kept failing), oldest first.
func capSuperseded(st *secret.State, now time.Time) {
	capSupersededTo(st, now, maxSuperseded)
}

// capSupersededTo is capSuperseded with limit tokens left waiting. A token
// whose revocation failed keeps its own retry time.
func capSupersededTo(st *secret.State, now time.Time, limit int) {
	if n := len(st.Superseded) - 2*maxSuperseded; n > 0 {
		st.Superseded = slices.Clone(st.Superseded[n:])
	}
	for i := 0; i < len(st.Superseded)-limit; i++ {
		if st.Superseded[i].Attempts == 0 && st.Superseded[i].RevokeAt.After(now) {
			st.Superseded[i].RevokeAt = now
		}
	}
}

// revocationDue reports whether a superseded token's grace period is over.
func revocationDue(in *inputs, now time.Time) bool {
	if in.spec == nil || in.spec.Revoke == nil {
		return false
	}
	for _, s := range in.state.Superseded {
		if !now.Before(s.RevokeAt) {
			return true
		}
	}
	return false
}

// revokeSuperseded revokes replaced tokens whose grace period is over, and
// writes the state if anything in it changed and is not written yet.
func (r *AccessTokenReconciler) revokeSuperseded(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, now time.Time) error {
	err := r.revokeDue(ctx, at, in, now)
	if in.stateDirty {
		if werr := r.applyState(ctx, at, in.state); werr != nil {
			return werr
		}
		in.stateDirty = false
	}
	return err
}

// revokeDue revokes replaced tokens whose grace period is over and records
// the outcome in in.state, marking it dirty, without writing it: a mint that
// follows writes it once, with its new token.
func (r *AccessTokenReconciler) revokeDue(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, now time.Time) error {
	if in.spec == nil || in.spec.Revoke == nil || len(in.state.Superseded) == 0 {
		return nil
	}
	var keep []secret.Superseded
	changed := false
	var errs []error
	for _, s := range in.state.Superseded {
		if now.Before(s.RevokeAt) || (in.previous != "" && in.previous == s.Token) {
			// Not yet; or pods may still read it under previousKey, which is
			// emptied first (previousUntil is never after RevokeAt).
			keep = append(keep, s)
			continue
		}
		changed = true
		if err := r.revokeAudited(ctx, in, s, revokeSuperseded); err != nil {
			errs = append(errs, err)
			s.Attempts++
			if s.Attempts < maxRevokeAttempts {
				s.RevokeAt = now.Add(time.Duration(s.Attempts) * time.Minute)
				keep = append(keep, s)
			} else {
				r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, tokensv1alpha1.ReasonRevokeFailed, "Revoke",
					"Gave up revoking a superseded token after %d attempts", s.Attempts)
			}
			continue
		}
		r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, tokensv1alpha1.ReasonRevoked, "Revoke", "Superseded token revoked")
	}
	if !changed {
		return nil
	}
	in.state.Superseded = keep
	in.stateDirty = true
	return errors.Join(errs...)
}

const maxRevokeAttempts = 5

func (r *AccessTokenReconciler) revoke(ctx context.Context, in *inputs, s secret.Superseded) error {
	call, err := r.buildCall(ctx, in)
	if err != nil {
		return err
	}
	call.RefreshToken = ""
	return r.Tokens.Revoke(ctx, call, s.Token, s.ID)
}

// deleteState removes the state Secret of at, if any.
func (r *AccessTokenReconciler) deleteState(ctx context.Context, at *tokensv1alpha1.AccessToken) error {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secret.StateName(at), Namespace: r.OperatorNamespace}}
	return client.IgnoreNotFound(r.Delete(ctx, s))
}

// deleteOrphanState removes the state Secret of an AccessToken that is gone.
func (r *AccessTokenReconciler) deleteOrphanState(ctx context.Context, key types.NamespacedName) error {
	list := &corev1.SecretList{}
	if err := r.List(ctx, list, client.InNamespace(r.OperatorNamespace),
		client.MatchingLabels{secret.LabelComponent: secret.ComponentState}); err != nil {
		return err
	}
	for i := range list.Items {
		s := &list.Items[i]
		if s.Annotations[secret.AnnotationAccessToken] == key.String() {
			if err := r.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
	}
	return nil
}

// SetupWithManager registers the controller and the watches that requeue
// AccessTokens when their issuer, a credential Secret or their own Secret changes.
func (r *AccessTokenReconciler) SetupWithManager(mgr ctrl.Manager, credentialSecrets []SourceFactory, namespaces SourceFactory) error {
	if err := setupIndexes(mgr, r.CredentialsNamespace); err != nil {
		return err
	}
	if r.Transports == nil {
		r.Transports = NewTransports(nil)
	}
	if r.credentials == nil {
		r.credentials = newCredentialStore(r.CredentialCacheBytes)
	}
	if r.audiences == nil {
		r.audiences = lru.New(maxCachedAudiences)
	}
	if r.fanOut == nil {
		r.fanOut = newFanOut(DefaultFanOutRate, DefaultFanOutBurst)
	}
	if r.attempts == nil {
		r.attempts = lru.New(maxRememberedMints)
	}
	if r.Calls == nil {
		r.Calls = NewCalls(DefaultIssuerConcurrency, DefaultNamespaceConcurrency)
	}
	if err := mgr.Add(r.Calls); err != nil {
		return err
	}
	currentCalls.Store(r.Calls)
	b := ctrl.NewControllerManagedBy(mgr).
		For(&tokensv1alpha1.AccessToken{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Secret{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(e event.CreateEvent) bool { return !r.ownSecretWrite(e.Object) },
			UpdateFunc: func(e event.UpdateEvent) bool { return !r.ownSecretWrite(e.ObjectNew) },
		})).
		Watches(&tokensv1alpha1.TokenIssuer{}, r.fanOut.handler(r.forIssuer(tokensv1alpha1.TokenIssuerKind)),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&tokensv1alpha1.ClusterTokenIssuer{}, r.fanOut.handler(r.forIssuer(tokensv1alpha1.ClusterTokenIssuerKind)),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.MaxConcurrentReconciles)}).
		Named("accesstoken")
	b = b.WatchesRawSource(source.Channel(r.Calls.Events(), &handler.EnqueueRequestForObject{}))
	for _, src := range credentialSecrets {
		b = b.WatchesRawSource(src(r.fanOut.handler(r.forCredentialSecret)))
	}
	if namespaces != nil {
		b = b.WatchesRawSource(namespaces(handler.EnqueueRequestsFromMapFunc(r.forNamespace)))
	}
	return b.Complete(r)
}

// forIssuer maps an issuer to the AccessTokens that use it.
func (r *AccessTokenReconciler) forIssuer(kind tokensv1alpha1.IssuerKind) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.accessTokensOf(ctx, issuerKey(kind, o.GetNamespace(), o.GetName()))
	}
}

func (r *AccessTokenReconciler) accessTokensOf(ctx context.Context, key string) []reconcile.Request {
	list := &tokensv1alpha1.AccessTokenList{}
	if err := r.List(ctx, list, client.MatchingFields{indexIssuer: key}); err != nil {
		logf.FromContext(ctx).Error(err, "listing AccessTokens of issuer", "issuer", key)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// forCredentialSecret maps a credential Secret to the AccessTokens of the issuers that read it.
func (r *AccessTokenReconciler) forCredentialSecret(ctx context.Context, o client.Object) []reconcile.Request {
	key := client.ObjectKeyFromObject(o).String()
	var reqs []reconcile.Request
	tis := &tokensv1alpha1.TokenIssuerList{}
	if err := r.List(ctx, tis, client.MatchingFields{indexCredential: key}); err == nil {
		for i := range tis.Items {
			reqs = append(reqs, r.accessTokensOf(ctx, issuerKey(tokensv1alpha1.TokenIssuerKind, tis.Items[i].Namespace, tis.Items[i].Name))...)
		}
	}
	ctis := &tokensv1alpha1.ClusterTokenIssuerList{}
	if err := r.List(ctx, ctis, client.MatchingFields{indexCredential: key}); err == nil {
		for i := range ctis.Items {
			reqs = append(reqs, r.accessTokensOf(ctx, issuerKey(tokensv1alpha1.ClusterTokenIssuerKind, "", ctis.Items[i].Name))...)
		}
	}
	return reqs
}

// forNamespace requeues the AccessTokens of a namespace whose labels changed, as
// a ClusterTokenIssuer's namespace selector may now allow or refuse them.
func (r *AccessTokenReconciler) forNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	list := &tokensv1alpha1.AccessTokenList{}
	if err := r.List(ctx, list, client.InNamespace(o.GetName())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if list.Items[i].Spec.IssuerRef.Kind == tokensv1alpha1.ClusterTokenIssuerKind {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}
