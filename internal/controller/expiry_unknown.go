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
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// expiryUnknownMessage says what a token without a known expiry means, and
// how to give it one.
const expiryUnknownMessage = "the endpoint reported no expiry for the token, and neither the issuer's spec.defaultLifetime " +
	"nor this AccessToken's spec.maxAge is set: the token is never renewed and may stop working at any time " +
	"while Ready stays True; set the lifetime the provider documents in one of them"

// expiryUnknown reports whether the AccessToken's current token has no known
// expiry: none reported, none defaulted by the issuer, no maxAge.
func expiryUnknown(at *tokensv1alpha1.AccessToken) bool {
	st := at.Status
	return st.IssuedAt != nil && st.ExpiresAt == nil && at.Spec.MaxAge == nil
}

// setExpiryUnknown writes the ExpiryUnknown condition while the token has no
// known expiry and removes it otherwise. Ready is left alone: the provider may
// still accept the token, and turning Ready False on a token that works would
// page for nothing while hiding the tokens that really failed; the condition,
// the metric tokenmint_accesstoken_expiry_unknown and the alert
// TokenmintAccessTokenExpiryUnknown say it instead.
func setExpiryUnknown(at *tokensv1alpha1.AccessToken) {
	if !expiryUnknown(at) {
		meta.RemoveStatusCondition(&at.Status.Conditions, tokensv1alpha1.ConditionExpiryUnknown)
		return
	}
	meta.SetStatusCondition(&at.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionExpiryUnknown,
		Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonNoExpiry, Message: expiryUnknownMessage,
		ObservedGeneration: at.Generation})
}

// warnExpiryUnknown raises a Warning event when a token just issued has no
// known expiry and the AccessToken did not say so already. Call it before
// setExpiryUnknown.
func warnExpiryUnknown(at *tokensv1alpha1.AccessToken, recorder events.EventRecorder) {
	if recorder == nil || !expiryUnknown(at) || meta.IsStatusConditionTrue(at.Status.Conditions, tokensv1alpha1.ConditionExpiryUnknown) {
		return
	}
	recorder.Eventf(at, nil, corev1.EventTypeWarning, tokensv1alpha1.ReasonNoExpiry, "Issue", "%s", expiryUnknownMessage)
}
