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
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// issue calls the endpoint and, on success, writes the token; on failure it keeps
// the last good token and schedules a retry.
func (r *AccessTokenReconciler) issue(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, d decision, now time.Time) error {
	if tok := r.takeUnwritten(at, in, r.Clock.Now()); tok != nil {
		// Minted by an earlier attempt whose write failed: written now, so
		// that a failed write never costs a second token.
		return r.storeOrKeep(ctx, at, in, d, tok, now)
	}
	call, err := r.buildCall(ctx, in)
	if err == nil && r.Limiters != nil {
		err = r.Limiters.Wait(ctx, in.issuerKey, at.Namespace)
	}
	var tok *issuer.Token
	if err == nil {
		start := r.Clock.Now()
		tok, err = r.Tokens.Issue(ctx, call)
		r.Clocks.Observed(in.issuerKey)
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
		dropRejectedRefreshToken(in, err, nil)
		r.recordFailure(at, in, err, now)
		return nil
	}
	dropRejectedRefreshToken(in, nil, tok)
	return r.storeOrKeep(ctx, at, in, d, tok, now)
}

// storeOrKeep writes tok; when the write fails for a reason a retry can get
// past (the API server's answer, a conflict, a timeout), tok is kept for the
// retry, which writes it instead of minting again.
func (r *AccessTokenReconciler) storeOrKeep(ctx context.Context, at *tokensv1alpha1.AccessToken, in *inputs, d decision, tok *issuer.Token, now time.Time) error {
	err := r.store(ctx, at, in, d, tok, now)
	if ie := (*issuer.Error)(nil); errors.As(err, &ie) {
		// The token cannot be written as asked: a failure like any other,
		// backed off, never an immediate retry that would mint again.
		r.recordFailure(at, in, err, now)
		return nil
	}
	if err != nil && !errors.Is(err, errSecretTaken) {
		r.unwritten.Store(client.ObjectKeyFromObject(at), unwrittenToken{uid: at.UID, inputs: in.inputsHash, token: tok})
	}
	return err
}

// unwrittenToken is a token minted for an AccessToken (uid) with the inputs
// of inputsHash, not written yet.
type unwrittenToken struct {
	uid    types.UID
	inputs string
	token  *issuer.Token
}

// unwrittenFor is how long a token whose provider gave no expiry is taken as
// fresh enough to be written by a retry.
const unwrittenFor = 5 * time.Minute

// takeUnwritten returns, and forgets, the token an earlier attempt minted for
// at but could not write, when usableUnwritten would return it.
func (r *AccessTokenReconciler) takeUnwritten(at *tokensv1alpha1.AccessToken, in *inputs, now time.Time) *issuer.Token {
	tok := r.usableUnwritten(at, in, now)
	r.unwritten.Delete(client.ObjectKeyFromObject(at))
	return tok
}

// usableUnwritten returns the token an earlier attempt minted for at but could
// not write, when it was minted for the same AccessToken and inputs and has at
// least half of its lifetime left.
func (r *AccessTokenReconciler) usableUnwritten(at *tokensv1alpha1.AccessToken, in *inputs, now time.Time) *issuer.Token {
	v, ok := r.unwritten.Load(client.ObjectKeyFromObject(at))
	if !ok {
		return nil
	}
	u := v.(unwrittenToken)
	if u.uid != at.UID || u.inputs != in.inputsHash {
		return nil
	}
	fresh := u.token.IssuedAt.Add(unwrittenFor)
	if u.token.ExpiresAt != nil {
		fresh = u.token.IssuedAt.Add(u.token.ExpiresAt.Sub(u.token.IssuedAt) / 2)
	}
	if !now.Before(fresh) {
		return nil
	}
	return u.token
}

// configureRate sets the pace of calls to in's issuer from its spec, before a
// call to it is queued.
func (r *AccessTokenReconciler) configureRate(in *inputs) {
	if r.Limiters == nil {
		return
	}
	var limit *tokensv1alpha1.RateLimit
	if in.spec != nil {
		limit = in.spec.RateLimit
	}
	r.Limiters.Configure(in.issuerKey, in.at.Spec.IssuerRef.Kind, limit)
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
		ProviderClock:        r.Clocks.For(in.issuerKey, in.issuerUID),
		// Step results are shared only within one issuer object and the
		// namespace whose ServiceAccount tokens the steps send.
		StepScope: in.issuerKey + "/" + string(in.issuerUID) + "|" + in.at.Namespace,
	}
	if in.state.RefreshToken != "" && !in.moved && in.state.Issuer == in.issuerKey && in.state.IssuerUID == string(in.issuerUID) &&
		(in.state.RefreshTokenExpiresAt == nil || r.Clock.Now().Before(*in.state.RefreshTokenExpiresAt)) {
		call.RefreshToken = in.state.RefreshToken
	}
	return call, nil
}

// MaxCredentialBytes is the largest credential value tokenmint reads: a
// 4096-bit RSA key in PEM is about 3.3 KiB, a JSON key file about 2.4 KiB.
const MaxCredentialBytes = 16 << 10

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
	if in.movingFrom != "" {
		msg = fmt.Sprintf("moving from %s to %s, which has not issued a token yet (the Secret keeps the token of %s, not renewed): %s",
			in.movingFrom, describeIssuer(at.Spec.IssuerRef), in.movingFrom, msg)
	}
	if failingFor(at, reason) {
		r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, reason, "Issue", "%s", msg)
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: tokensv1alpha1.ConditionRenewing, Status: metav1.ConditionFalse, Reason: reason, Message: msg,
		ObservedGeneration: at.Generation,
	})
}
