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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
)

// bindNamespace reads the labels of the AccessToken's namespace that the
// issuer's parameters are bound to (fromNamespaceLabel) into in.namespaceLabels,
// from the metadata cache of Namespaces. It returns the problem that keeps the
// AccessToken from any call: a label the namespace does not carry, a bound
// parameter the AccessToken sets itself, or a ClusterAccessToken's source,
// whose one token would serve namespaces of different labels.
func (r *AccessTokenReconciler) bindNamespace(ctx context.Context, at *tokensv1alpha1.AccessToken, spec *tokensv1alpha1.IssuerSpec, in *inputs) (*problem, error) {
	keys := issuer.NamespaceLabelKeys(spec)
	if len(keys) == 0 {
		return nil, nil
	}
	if clusterAccessTokenSource(at, r.OperatorNamespace) {
		return &problem{tokensv1alpha1.ReasonIssuerNotAllowed, fmt.Sprintf(
			"ClusterTokenIssuer %q binds parameters to labels of the namespace asking (%q): a ClusterAccessToken, whose one token serves many namespaces, cannot use it",
			at.Spec.IssuerRef.Name, keys)}, nil
	}
	labels, err := r.namespaceLabels(ctx, at.Namespace)
	if err != nil {
		return nil, err
	}
	in.namespaceLabels = map[string]string{}
	for _, k := range keys {
		if v, ok := labels[k]; ok {
			in.namespaceLabels[k] = v
		}
	}
	if errs := issuer.CheckNamespaceBindings(spec, at.Spec.Parameters, in.namespaceLabels); len(errs) > 0 {
		return &problem{tokensv1alpha1.ReasonInvalidParameters, errors.Join(errs...).Error()}, nil
	}
	return nil, nil
}

// namespaceLabels returns the labels of namespace ns from the metadata cache;
// none when it does not exist.
func (r *AccessTokenReconciler) namespaceLabels(ctx context.Context, ns string) (map[string]string, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := r.Metadata.Get(ctx, types.NamespacedName{Name: ns}, m); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return m.Labels, nil
}
