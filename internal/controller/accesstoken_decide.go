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
	"bytes"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/rotation"
	"github.com/tokenmint/tokenmint/internal/secret"
)

type action string

const (
	actionNone    action = "None"
	actionIssue   action = "Issue"
	actionRestore action = "Restore"
	actionAdopt   action = "Adopt"
	actionBlocked action = "Blocked"
)

// Decision reasons that change how a failure is counted.
const (
	reasonInputsChanged    = "InputsChanged"
	reasonRenewalRequested = "RenewalRequested"
	reasonNotIssued        = "NotIssued"
	reasonSecretLost       = "SecretLost"
	reasonRenewalDue       = "RenewalDue"
)

// decision is what to do about one AccessToken, and why.
type decision struct {
	action  action
	reason  string
	message string
}

// check detects one state that calls for action. Checks run in order; the first
// that fires decides.
type check func(in *inputs, now time.Time) (decision, bool)

var checks = []check{
	held,
	issuerUnusable,
	secretNotOwned,
	secretAhead,
	inputsChanged,
	refreshRefused,
	renewalRequested,
	notIssued,
	secretLost,
	retryDue,
	renewalDue,
	secretDrifted,
	outputChanged,
	templateChanged,
}

// decide runs the checks. It is pure: it reads in and now and nothing else.
func decide(in *inputs, now time.Time) decision {
	for _, c := range checks {
		if d, ok := c(in, now); ok {
			return d
		}
	}
	return decision{action: actionNone, reason: tokensv1alpha1.ReasonTokenValid}
}

func issuerUnusable(in *inputs, _ time.Time) (decision, bool) {
	if in.problem == nil {
		return decision{}, false
	}
	return decision{actionBlocked, in.problem.reason, in.problem.message}, true
}

func secretNotOwned(in *inputs, _ time.Time) (decision, bool) {
	if !in.foreign {
		return decision{}, false
	}
	return decision{actionBlocked, tokensv1alpha1.ReasonSecretNotOwned, fmt.Sprintf(
		"Secret %q exists and is not owned by this AccessToken; tokenmint will not take it over. Delete it or choose another spec.secret.name",
		in.at.Spec.Secret.Name)}, true
}

// secretAhead fires when the Secret holds a token tokenmint wrote (its record
// matches its data) that status does not know: the status write after a mint was
// lost, say to a crash. Status is rebuilt from the Secret; nothing is minted.
func secretAhead(in *inputs, _ time.Time) (decision, bool) {
	if in.secret == nil || in.secretMatches || in.secretRecord == nil ||
		in.secretRecord.Fingerprint == in.at.Status.TokenFingerprint {
		return decision{}, false
	}
	if in.reown && in.cachesBehind {
		return decision{actionNone, tokensv1alpha1.ReasonPending,
			"a restored Secret is taken back once the manager's caches show the restored issuer and credential Secrets"}, true
	}
	return decision{actionAdopt, "SecretAhead", "status rebuilt from the token the Secret holds"}, true
}

// inputsChanged fires at once, whatever the backoff: new inputs deserve a try
// (the failure count is kept, and mintWait bounds how often this can happen).
// A change of the issuer or its credentials that the issuer's reissueWindow
// spreads waits for the AccessToken's time in it (see reissueAt).
func inputsChanged(in *inputs, now time.Time) (decision, bool) {
	st := in.at.Status
	if st.InputsHash == "" || st.InputsHash == in.inputsHash {
		return decision{}, false
	}
	if t, spread := reissueAt(in, now); spread && now.Before(t) {
		return decision{}, false
	}
	if in.movingFrom != "" {
		return decision{actionIssue, reasonIssuerChanged, fmt.Sprintf(
			"spec.issuerRef moved from %s to %s; the Secret keeps the current token until the new issuer has issued one",
			in.movingFrom, describeIssuer(in.at.Spec.IssuerRef))}, true
	}
	return decision{actionIssue, reasonInputsChanged, "the AccessToken, its issuer or a credential Secret changed"}, true
}

// refreshRefused holds an AccessToken whose refresh the endpoint refused
// under onRejected: Fail. Any call now would re-send a credential the
// provider may take for a replayed one (GitLab revokes every token rotated
// from a rotated token sent again), so none is made, not even for a renew
// annotation or a lost Secret, until inputsChanged (checked before) sees a
// new AccessToken, issuer or credential.
func refreshRefused(in *inputs, _ time.Time) (decision, bool) {
	st := in.at.Status
	c := meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionRenewing)
	if st.FailedAttempts == 0 || c == nil || c.Status != metav1.ConditionFalse || c.Reason != tokensv1alpha1.ReasonRefreshRejected {
		return decision{}, false
	}
	return decision{actionBlocked, tokensv1alpha1.ReasonRefreshRejected, c.Message}, true
}

// renewalRequested fires once per new value of the renew annotation, but not
// while a failure's backoff runs: the request is then served by the retry.
func renewalRequested(in *inputs, now time.Time) (decision, bool) {
	v := in.at.Annotations[tokensv1alpha1.AnnotationRenew]
	if v == "" || v == in.at.Status.LastRenewalRequest || backingOff(in, now) {
		return decision{}, false
	}
	return decision{actionIssue, reasonRenewalRequested, "renewal requested by annotation " + tokensv1alpha1.AnnotationRenew}, true
}

// backingOff is true while a failed attempt's retry time has not come.
func backingOff(in *inputs, now time.Time) bool {
	st := in.at.Status
	return st.FailedAttempts > 0 && st.RenewalTime != nil && now.Before(st.RenewalTime.Time)
}

func notIssued(in *inputs, now time.Time) (decision, bool) {
	if in.at.Status.IssuedAt != nil {
		return decision{}, false
	}
	if backingOff(in, now) {
		return decision{actionNone, tokensv1alpha1.ReasonPending, "waiting to retry"}, true
	}
	return decision{actionIssue, reasonNotIssued, "first token"}, true
}

// secretLost fires when the Secret no longer holds the current token: restored
// from the state copy when there is one, otherwise re-issued.
func secretLost(in *inputs, now time.Time) (decision, bool) {
	if in.secretMatches {
		return decision{}, false
	}
	what := "Secret missing"
	if in.secret != nil {
		what = "Secret changed"
	}
	if in.stateMatches && !tokenExpired(in.at, now) {
		return decision{actionRestore, "SecretRestored", what}, true
	}
	if backingOff(in, now) {
		return decision{actionNone, tokensv1alpha1.ReasonRetrying, "waiting to retry"}, true
	}
	return decision{actionIssue, reasonSecretLost, what}, true
}

func retryDue(in *inputs, now time.Time) (decision, bool) {
	if in.at.Status.FailedAttempts == 0 {
		return decision{}, false
	}
	if backingOff(in, now) {
		return decision{actionNone, tokensv1alpha1.ReasonRetrying, "waiting to retry"}, true
	}
	return decision{actionIssue, tokensv1alpha1.ReasonRetrying, "retrying after a failure"}, true
}

func renewalDue(in *inputs, now time.Time) (decision, bool) {
	rt := in.at.Status.RenewalTime
	if in.at.Status.FailedAttempts == 0 {
		rt = renewalTime(in.at, in.renewalFloor) // the policy may have changed since issue
	}
	if rt == nil || now.Before(rt.Time) {
		return decision{}, false
	}
	return decision{actionIssue, reasonRenewalDue, "renewal time reached"}, true
}

func secretDrifted(in *inputs, _ time.Time) (decision, bool) {
	if in.secret != nil && in.unproven && in.secretMatches {
		return decision{actionRestore, reasonOwnerProof, "the Secret has no valid owner proof"}, true
	}
	if in.secret == nil || !secret.Drifted(in.secret, in.at) {
		return decision{}, false
	}
	return decision{actionRestore, "SecretRestored", "Secret metadata changed"}, true
}

// reasonOwnerProof rewrites, without an event, a Secret written before
// Secrets carried their owner proof (see secret.AnnotationOwnerProof).
const reasonOwnerProof = "SecretOwnerProof"

// reasonOutputChanged rewrites the Secret when a key built from the token no
// longer holds what it should: edited, or the previous token's window ended.
const reasonOutputChanged = "SecretOutputChanged"

// outputChanged fires when the Secret holds the current token but another key
// tokenmint builds from it differs from what it should hold now (an edited
// derived key, a previous token whose window is over): the Secret is written
// again without minting.
func outputChanged(in *inputs, now time.Time) (decision, bool) {
	if in.secret == nil || !in.secretMatches || in.spec == nil || !buildsKeys(&in.at.Spec.Secret) {
		return decision{}, false
	}
	out, _ := in.output(now)
	want, err := secret.Data(in.at, out)
	if err != nil {
		return decision{}, false
	}
	for k, v := range want {
		if !bytes.Equal(in.secret.Data[k], v) {
			return decision{actionRestore, reasonOutputChanged, "key " + k + " of the Secret changed"}, true
		}
	}
	if pk := in.at.Spec.Secret.PreviousKey; pk != "" && out.Previous == "" && in.secret.Data[pk] != nil {
		return decision{actionRestore, reasonOutputChanged, "the previous token's window is over"}, true
	}
	return decision{}, false
}

// buildsKeys reports whether the Secret has keys tokenmint builds from the
// token beyond the token and its copied fields: only those can drift while the
// token stays, so only those are rendered on every reconcile.
func buildsKeys(t *tokensv1alpha1.SecretTemplate) bool {
	return len(t.Keys) > 0 || t.PreviousKey != "" || t.DockerConfigJSON != nil || t.BasicAuth != nil
}

// reasonTemplateChanged rewrites the Secret after its template changed.
const reasonTemplateChanged = "SecretTemplateChanged"

// templateChanged fires after a spec change when the Secret has a label, an
// annotation or a key the AccessToken no longer asks for: the Secret is written
// again, without minting, so that what tokenmint set and no longer wants goes.
func templateChanged(in *inputs, _ time.Time) (decision, bool) {
	st := in.at.Status
	if in.secret == nil || !in.secretMatches || st.ObservedGeneration == 0 || st.ObservedGeneration == in.at.Generation ||
		!secret.LeavesOut(in.secret, in.at, in.secret.Data, recordOf(in.at)) {
		return decision{}, false
	}
	return decision{actionRestore, reasonTemplateChanged, "spec.secret changed"}, true
}

func tokenExpired(at *tokensv1alpha1.AccessToken, now time.Time) bool {
	return at.Status.ExpiresAt != nil && !now.Before(at.Status.ExpiresAt.Time)
}

// renewalTime computes the next renewal of the current token under the
// AccessToken's policy, or nil when it needs none. It is never sooner than
// floor after the token's issue: a provider that answers with tokens that
// live a second gets them renewed every floor, not every second (see
// shortLived).
func renewalTime(at *tokensv1alpha1.AccessToken, floor time.Duration) *metav1.Time {
	st := at.Status
	if st.IssuedAt == nil {
		return nil
	}
	p := rotation.Policy{RenewBeforePercentage: at.Spec.RenewBeforePercentage}
	if at.Spec.RenewBefore != nil {
		p.RenewBefore = &at.Spec.RenewBefore.Duration
	}
	if at.Spec.MaxAge != nil {
		p.MaxAge = &at.Spec.MaxAge.Duration
	}
	var exp *time.Time
	if st.ExpiresAt != nil {
		exp = &st.ExpiresAt.Time
	}
	t := rotation.RenewalTime(st.IssuedAt.Time, exp, p, string(at.UID))
	if t == nil {
		return nil
	}
	if least := st.IssuedAt.Add(floor); t.Before(least) {
		t = &least
	}
	return &metav1.Time{Time: *t}
}

// shortLived reports whether the current token's renewal waits for the floor
// rather than the policy: the policy would renew it sooner than floor after
// its issue. Such a token is still served; Ready turns False when it expires
// and True again at the next renewal.
func shortLived(at *tokensv1alpha1.AccessToken, floor time.Duration) bool {
	st := at.Status
	if st.IssuedAt == nil || floor <= 0 {
		return false
	}
	t := renewalTime(at, 0)
	return t != nil && t.Before(&metav1.Time{Time: st.IssuedAt.Add(floor)})
}

// shortLivedMessage says why a token is renewed later than its policy asks.
func shortLivedMessage(at *tokensv1alpha1.AccessToken, floor time.Duration) string {
	st := at.Status
	msg := fmt.Sprintf("the renewal policy would renew this token sooner than the manager's renewal floor of %s after its issue (--min-renewal-interval): it is renewed %s after issue", floor, floor)
	if st.ExpiresAt != nil && st.IssuedAt != nil && st.ExpiresAt.Sub(st.IssuedAt.Time) < floor {
		msg = fmt.Sprintf("the provider's token lives %s, less than the manager's renewal floor of %s (--min-renewal-interval): it is renewed %s after issue, and Ready is False between its expiry and the next renewal",
			st.ExpiresAt.Sub(st.IssuedAt.Time), floor, floor)
	}
	return msg
}

// retryDelay is the wait after a failed attempt.
func retryDelay(at *tokensv1alpha1.AccessToken, err error, now time.Time) time.Duration {
	f := rotation.Failure{Attempts: at.Status.FailedAttempts}
	var ie *issuer.Error
	if errors.As(err, &ie) {
		if ie.Class == issuer.ClassPermanent {
			return max(permanentRecheck, ie.RetryAfter)
		}
		f.Terminal = ie.Class.Terminal()
		f.RetryAfter = ie.RetryAfter
	}
	if at.Status.ExpiresAt != nil {
		remaining := at.Status.ExpiresAt.Sub(now)
		f.Remaining = &remaining
	}
	return rotation.Backoff(f)
}

// failureReason maps an error to a condition reason and a message that is safe
// to show: the engine's errors never carry a credential.
func failureReason(err error) (string, string) {
	var ie *issuer.Error
	if !errors.As(err, &ie) {
		return tokensv1alpha1.ReasonEndpointError, err.Error()
	}
	switch ie.Class {
	case issuer.ClassUnauthorized:
		return tokensv1alpha1.ReasonUnauthorized, ie.Error()
	case issuer.ClassBadRequest:
		return tokensv1alpha1.ReasonBadRequest, ie.Error()
	case issuer.ClassRateLimited:
		return tokensv1alpha1.ReasonRateLimited, ie.Error()
	case issuer.ClassPermanent:
		return tokensv1alpha1.ReasonPermanentFailure, ie.Error() + "; no call until the AccessToken, its issuer or a credential changes, save an hourly re-check"
	case issuer.ClassRefreshRejected:
		return tokensv1alpha1.ReasonRefreshRejected, "the refresh request was refused (" + ie.Error() +
			"); the issuer's response.refreshToken.onRejected is Fail: the Secret keeps the current token, and no call is made until the AccessToken, its issuer or a credential Secret changes"
	case issuer.ClassInvalidResponse:
		return tokensv1alpha1.ReasonInvalidResponse, ie.Error()
	case issuer.ClassInvalidParameters:
		return tokensv1alpha1.ReasonInvalidParameters, ie.Error()
	case issuer.ClassInvalidConfig:
		return tokensv1alpha1.ReasonInvalidConfig, ie.Error()
	default:
		return tokensv1alpha1.ReasonEndpointError, ie.Error()
	}
}

// setBlocked records why the AccessToken cannot be served, and reports whether
// that is news (so an event is raised on the transition only).
func setBlocked(at *tokensv1alpha1.AccessToken, d decision) bool {
	news := failingFor(at, d.reason)
	meta.SetStatusCondition(&at.Status.Conditions, metav1.Condition{
		Type: tokensv1alpha1.ConditionRenewing, Status: metav1.ConditionFalse, Reason: d.reason, Message: d.message,
		ObservedGeneration: at.Generation,
	})
	return news
}

// failingFor reports whether Renewing turning False for reason would be a
// transition (and so worth an event). Call it before changing the condition.
func failingFor(at *tokensv1alpha1.AccessToken, reason string) bool {
	prev := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionRenewing)
	return prev == nil || prev.Status != metav1.ConditionFalse || prev.Reason != reason
}

// setReady sets the Ready summary: True while the Secret holds an unexpired token.
func setReady(at *tokensv1alpha1.AccessToken, in *inputs, now time.Time) {
	c := metav1.Condition{Type: tokensv1alpha1.ConditionReady, ObservedGeneration: at.Generation, Status: metav1.ConditionFalse}
	st := at.Status
	renewing := meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionRenewing)
	switch {
	case in.foreign:
		c.Reason, c.Message = tokensv1alpha1.ReasonSecretNotOwned, "the Secret is not owned by this AccessToken"
	case st.IssuedAt == nil:
		c.Reason, c.Message = tokensv1alpha1.ReasonPending, "no token has been issued yet"
		if renewing != nil && renewing.Status == metav1.ConditionFalse {
			c.Message += ": " + renewing.Message
		}
	case renewing != nil && renewing.Status == metav1.ConditionFalse && renewing.Reason == tokensv1alpha1.ReasonRefreshRejected &&
		in.secretMatches && !tokenExpired(at, now):
		// The Secret still serves its token, but nothing will renew it.
		c.Reason, c.Message = tokensv1alpha1.ReasonRefreshRejected, "the Secret keeps the current token"
		if st.ExpiresAt != nil {
			c.Message += " (valid until " + st.ExpiresAt.UTC().Format(time.RFC3339) + ")"
		}
		c.Message += ", which will not be renewed: " + renewing.Message
	case tokenExpired(at, now):
		c.Reason, c.Message = tokensv1alpha1.ReasonExpired, "the token expired at "+st.ExpiresAt.UTC().Format(time.RFC3339)
		if renewing != nil && renewing.Reason == tokensv1alpha1.ReasonShortLivedToken {
			c.Message += "; " + renewing.Message
		}
	case !in.secretMatches:
		c.Reason, c.Message = "SecretMissing", fmt.Sprintf("Secret %q does not hold the current token", at.Spec.Secret.Name)
	default:
		c.Status, c.Reason = metav1.ConditionTrue, tokensv1alpha1.ReasonTokenValid
		c.Message = "the Secret holds a valid token"
		if in.movingFrom != "" {
			c.Message += " of " + in.movingFrom
		}
		if st.ExpiresAt != nil {
			c.Message += " until " + st.ExpiresAt.UTC().Format(time.RFC3339)
		}
		if in.movingFrom != "" {
			c.Message += fmt.Sprintf("; %s, which spec.issuerRef names, has not issued one yet (see Renewing)", describeIssuer(at.Spec.IssuerRef))
		}
	}
	meta.SetStatusCondition(&at.Status.Conditions, c)
	setExpiryUnknown(at)
}

// nextWake is how long to wait before the AccessToken needs attention again: its
// renewal or retry time, its expiry (to turn Ready False), or a pending revocation.
//
// A blocked AccessToken waits for the change that unblocks it (its issuer,
// credentials, namespace or itself, all watched), not for a renewal time that
// has passed: it is looked at again only when its token expires, or hourly.
func nextWake(at *tokensv1alpha1.AccessToken, in *inputs, d decision, now time.Time) time.Duration {
	var next time.Time
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if d.action == actionBlocked {
		consider(now.Add(time.Hour))
	} else if at.Status.RenewalTime != nil {
		consider(at.Status.RenewalTime.Time)
	}
	if at.Status.ExpiresAt != nil && now.Before(at.Status.ExpiresAt.Time) {
		consider(at.Status.ExpiresAt.Time)
	}
	if at.Status.ReissueAfter != nil {
		consider(at.Status.ReissueAfter.Time)
	}
	if d.action != actionBlocked {
		for _, s := range in.state.Superseded {
			if revocable(in, s) && !in.secretHolds(s.Token) {
				consider(s.RevokeAt)
			}
		}
	}
	if in.previous != "" && now.Before(in.previousUntil) {
		consider(in.previousUntil)
	}
	if in.foreign {
		// Foreign Secrets are not watched: look again now and then.
		consider(now.Add(time.Minute))
	}
	if in.cachesBehind {
		consider(now.Add(time.Second))
	}
	if d.action == actionAdopt {
		// Status rebuilt from the Secret can leave a mint due at once: the
		// issuer or a credential changed after that token was minted, and
		// the change's own reconcile found status behind the Secret and
		// adopted instead. Nothing else queues the AccessToken again.
		if again := decide(in, now); again.action == actionIssue || again.action == actionRestore {
			consider(now)
		}
	}
	if next.IsZero() {
		return 0
	}
	return max(next.Sub(now), time.Second)
}

// setIssued records in status the token a Secret now holds.
func setIssued(at *tokensv1alpha1.AccessToken, rec secret.Record, floor time.Duration) {
	st := &at.Status
	st.IssuedAt = &metav1.Time{Time: rec.IssuedAt}
	st.ExpiresAt = nil
	if rec.ExpiresAt != nil {
		st.ExpiresAt = &metav1.Time{Time: *rec.ExpiresAt}
	}
	st.TokenFingerprint = rec.Fingerprint
	st.InputsHash = rec.InputsHash
	st.FailedAttempts = 0
	st.LastFailureTime = nil
	st.RenewalTime = renewalTime(at, floor)
}

// recordOf is the record of the token status knows.
func recordOf(at *tokensv1alpha1.AccessToken) secret.Record {
	st := at.Status
	rec := secret.Record{Fingerprint: st.TokenFingerprint, InputsHash: st.InputsHash}
	if st.IssuedAt != nil {
		rec.IssuedAt = st.IssuedAt.Time
	}
	if st.ExpiresAt != nil {
		exp := st.ExpiresAt.Time
		rec.ExpiresAt = &exp
	}
	return rec
}

// adopt rebuilds status from the Secret's record (see secretAhead). A Secret
// restored from backup (see inputs.reown) records the inputs hash of the
// objects before the restore, whose UIDs and versions it changed: when it
// records the identity of the current inputs, it was issued from them and
// takes their hash; otherwise the inputs changed, and it is renewed.
func adopt(at *tokensv1alpha1.AccessToken, in *inputs) {
	replaced := at.Status.TokenFingerprint
	rec := *in.secretRecord
	if hash, ok := restoredInputsHash(in); ok {
		rec.InputsHash = hash
	}
	setIssued(at, rec, in.renewalFloor)
	if request := at.Annotations[tokensv1alpha1.AnnotationRenew]; at.Status.LastRenewalRequest == "" &&
		rec.RenewalRequest != "" && rec.RenewalRequest == secret.RenewalRequestHash(request) {
		// The renew annotation (restored from backup with the AccessToken,
		// its status not) asked for the token the Secret holds.
		at.Status.LastRenewalRequest = request
	}
	// The token was minted for this spec, so by the issuer it names.
	recordHistory(at, rec, issuerRefOf(at), replaced, rec.IssuedAt)
	in.movingFrom = ""
	meta.SetStatusCondition(&at.Status.Conditions, metav1.Condition{
		Type: tokensv1alpha1.ConditionRenewing, Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonRenewed,
		Message: "status rebuilt from the token the Secret holds", ObservedGeneration: at.Generation,
	})
	in.secretMatches = true
}

func truncated(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Truncate(time.Second)
	return &v
}
