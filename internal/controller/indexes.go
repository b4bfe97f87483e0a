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

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
)

// Field index names.
const (
	// indexIssuer indexes AccessTokens by the issuer they use (issuerKey).
	indexIssuer = ".spec.issuerRef"
	// indexCredential indexes issuers by the credential Secrets they read ("namespace/name").
	indexCredential = ".spec.credentialSecrets"
)

// issuerKey identifies an issuer: "TokenIssuer/<namespace>/<name>" or
// "ClusterTokenIssuer//<name>".
func issuerKey(kind tokensv1alpha1.IssuerKind, namespace, name string) string {
	if kind == tokensv1alpha1.ClusterTokenIssuerKind {
		namespace = ""
	}
	return fmt.Sprintf("%s/%s/%s", kind, namespace, name)
}

func accessTokenIssuerKey(at *tokensv1alpha1.AccessToken) string {
	kind := at.Spec.IssuerRef.Kind
	if kind == "" {
		kind = tokensv1alpha1.TokenIssuerKind
	}
	return issuerKey(kind, at.Namespace, at.Spec.IssuerRef.Name)
}

// credentialKeys returns "namespace/name" of every Secret spec reads from namespace.
func credentialKeys(spec *tokensv1alpha1.IssuerSpec, namespace string) []string {
	seen := map[string]bool{}
	var keys []string
	for _, ref := range issuer.SecretRefs(spec) {
		k := types.NamespacedName{Namespace: namespace, Name: ref.Name}.String()
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// setupIndexes registers the field indexes the controllers look objects up by.
func setupIndexes(mgr ctrl.Manager, credentialsNamespace string) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(context.Background(), &tokensv1alpha1.AccessToken{}, indexIssuer, func(o client.Object) []string {
		return []string{accessTokenIssuerKey(o.(*tokensv1alpha1.AccessToken))}
	}); err != nil {
		return fmt.Errorf("indexing AccessTokens by issuer: %w", err)
	}
	if err := idx.IndexField(context.Background(), &tokensv1alpha1.TokenIssuer{}, indexCredential, func(o client.Object) []string {
		ti := o.(*tokensv1alpha1.TokenIssuer)
		return credentialKeys(&ti.Spec, ti.Namespace)
	}); err != nil {
		return fmt.Errorf("indexing TokenIssuers by credential Secret: %w", err)
	}
	if err := idx.IndexField(context.Background(), &tokensv1alpha1.ClusterTokenIssuer{}, indexCredential, func(o client.Object) []string {
		cti := o.(*tokensv1alpha1.ClusterTokenIssuer)
		return credentialKeys(&cti.Spec.IssuerSpec, credentialsNamespace)
	}); err != nil {
		return fmt.Errorf("indexing ClusterTokenIssuers by credential Secret: %w", err)
	}
	return nil
}
