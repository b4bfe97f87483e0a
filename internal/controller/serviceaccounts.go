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
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
)

// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create

// audienceVerdictTTL is how long the apiserver's answer to "do you accept this
// audience?" is reused.
const audienceVerdictTTL = 10 * time.Minute

type audienceVerdict struct {
	accepted bool
	at       time.Time
}

// serviceAccountTokens requests, for one call, a token of each ServiceAccount
// the issuer's serviceAccountToken values name, in the AccessToken's
// namespace. A ServiceAccount must list the issuer in its AnnotationIssuers,
// and a token for an audience the Kubernetes API accepts is never handed out.
// The tokens are not kept: the next call requests new ones.
func (r *AccessTokenReconciler) serviceAccountTokens(ctx context.Context, in *inputs,
	sources []tokensv1alpha1.ServiceAccountTokenSource) (map[tokensv1alpha1.ServiceAccountTokenSource]string, error) {
	kind := in.at.Spec.IssuerRef.Kind
	if kind == "" {
		kind = tokensv1alpha1.TokenIssuerKind
	}
	self := string(kind) + "/" + in.at.Spec.IssuerRef.Name
	out := make(map[tokensv1alpha1.ServiceAccountTokenSource]string, len(sources))
	for _, s := range sources {
		key := types.NamespacedName{Namespace: in.at.Namespace, Name: s.ServiceAccountName}
		sa := &metav1.PartialObjectMetadata{}
		sa.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ServiceAccount"))
		if err := r.APIReader.Get(ctx, key, sa); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, &issuer.Error{Class: issuer.ClassInvalidConfig, Message: fmt.Sprintf("ServiceAccount %s not found", key)}
			}
			return nil, fmt.Errorf("reading ServiceAccount %s: %w", key, err)
		}
		if !listed(sa.Annotations[tokensv1alpha1.AnnotationIssuers], self) {
			return nil, &issuer.Error{Class: issuer.ClassInvalidConfig, Message: fmt.Sprintf(
				"ServiceAccount %s has not agreed to have its tokens sent by %s: list %s in its annotation %s",
				key, self, self, tokensv1alpha1.AnnotationIssuers)}
		}
		expiration := s.ExpirationSeconds
		if expiration == 0 {
			expiration = 600
		}
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{s.Audience}, ExpirationSeconds: &expiration}}
		target := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		if err := r.SubResource("token").Create(ctx, target, tr); err != nil {
			return nil, fmt.Errorf("requesting a token of ServiceAccount %s: %w", key, err)
		}
		if err := r.checkAudience(ctx, s.Audience, tr.Status.Token); err != nil {
			return nil, err
		}
		out[s] = tr.Status.Token
	}
	return out, nil
}

// checkAudience refuses an audience the Kubernetes API accepts: a token for
// it would let the endpoint act as the ServiceAccount in this cluster. The
// apiserver is asked by reviewing token (which has only that audience) with no
// audience of the review's own, so that the apiserver's audiences apply. Only
// a refusal is remembered (for a while): a token the apiserver did not accept
// may have failed for another reason (its ServiceAccount being deleted, say),
// which a tenant controls, so every call asks again until the audience is
// known to be the API's.
func (r *AccessTokenReconciler) checkAudience(ctx context.Context, audience, token string) error {
	now := r.Clock.Now()
	accepted := false
	if v, ok := r.audiences.Get(audience); ok && now.Sub(v.(audienceVerdict).at) < audienceVerdictTTL {
		accepted = v.(audienceVerdict).accepted
	} else {
		review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
		if err := r.Create(ctx, review); err != nil {
			return fmt.Errorf("asking the apiserver whether it accepts audience %q: %w", audience, err)
		}
		accepted = review.Status.Authenticated
		if accepted {
			r.audiences.Add(audience, audienceVerdict{accepted: true, at: now})
		}
	}
	if accepted {
		return &issuer.Error{Class: issuer.ClassInvalidConfig, Message: fmt.Sprintf(
			"audience %q is accepted by the Kubernetes API: a ServiceAccount token for it would let the endpoint act as the ServiceAccount in this cluster", audience)}
	}
	return nil
}
