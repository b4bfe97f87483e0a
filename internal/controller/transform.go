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
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	"sigs.k8s.io/controller-runtime/pkg/cache"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// The caches hold every AccessToken and every token Secret: tens of thousands
// of objects whose strings are mostly the same few words (namespaces, label
// and annotation keys, kinds, condition types, reasons and messages). The
// decoder allocates each one anew; the transforms below keep one copy of each
// (see secret.Intern).

// lastApplied is kubectl's copy of the object as last applied: kubectl reads it
// from the apiserver, never from tokenmint, and tokenmint writes AccessTokens
// only with merge patches, which leave what the cache does not hold untouched.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// stripManagedFields is controller-runtime's transform that drops managed fields.
var stripManagedFields = cache.TransformStripManagedFields()

// compactObject is the default cache transform: managed fields are dropped,
// AccessTokens are compacted (compactAccessToken) and issuers lose their
// annotations.
func compactObject(in any) (any, error) {
	in, err := stripManagedFields(in)
	if err != nil {
		return nil, err
	}
	switch o := in.(type) {
	case *tokensv1alpha1.AccessToken:
		compactAccessToken(o)
	case *tokensv1alpha1.TokenIssuer:
		// Nothing reads an issuer's annotations (kubectl's copy of the
		// object among them), and the issuer reconciler writes only status.
		o.Annotations = nil
	case *tokensv1alpha1.ClusterTokenIssuer:
		o.Annotations = nil
	}
	return in, nil
}

// MaxParametersBytes bounds the parameters of one AccessToken the cache
// holds: the names and JSON values together. The schema bounds their number
// but cannot bound the size of schemaless values, so an AccessToken's
// parameters can approach the apiserver's 1.5 MiB object limit; the cache
// drops larger ones and the AccessToken is reported as InvalidSpec.
const MaxParametersBytes = 64 << 10

// annotationParametersDropped marks, in the cache only, an AccessToken whose
// parameters were dropped for their size, with the number of bytes they held:
// the reconciler then reports it instead of minting with no parameters. The
// transform removes any value the object itself carries.
const annotationParametersDropped = "tokens.tokenmint.dev/cache-dropped-parameters"

// keptAccessTokenAnnotations are the only annotations of an AccessToken the
// cache holds: anyone who writes AccessTokens can add up to 256 KiB of others,
// which the cache replaces by their hash (annotationOthers).
var keptAccessTokenAnnotations = []string{tokensv1alpha1.AnnotationRenew}

// maxKeptAnnotationBytes bounds the value of a kept annotation.
const maxKeptAnnotationBytes = 1024

// parametersSize is the size of parameters as the cache holds them.
func parametersSize(at *tokensv1alpha1.AccessToken) int {
	n := 0
	for k, v := range at.Spec.Parameters {
		n += len(k) + len(v.Raw)
	}
	return n
}

// droppedParameters reports the size of the parameters the cache dropped
// from at, if it did.
func droppedParameters(at *tokensv1alpha1.AccessToken) (int, bool) {
	v, ok := at.Annotations[annotationParametersDropped]
	if !ok {
		return 0, false
	}
	n, _ := strconv.Atoi(v)
	return n, true
}

// annotationOthers holds, in the cache only, a hash of the annotations the
// cache does not keep: a change of any of them still changes the cached
// object, so that the AccessToken is reconciled as before.
const annotationOthers = "tokens.tokenmint.dev/cache-other-annotations"

func compactAccessToken(at *tokensv1alpha1.AccessToken) {
	kept := map[string]string{}
	var others []string
	for k, v := range at.Annotations {
		switch {
		case k == lastApplied || k == annotationParametersDropped || k == annotationOthers:
		case slices.Contains(keptAccessTokenAnnotations, k) && len(v) <= maxKeptAnnotationBytes:
			kept[k] = v
		default:
			others = append(others, k)
		}
	}
	if len(others) > 0 {
		slices.Sort(others)
		h := fnv.New64a()
		for _, k := range others {
			_, _ = fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(at.Annotations[k]), at.Annotations[k])
		}
		kept[annotationOthers] = strconv.FormatUint(h.Sum64(), 16)
	}
	if size := parametersSize(at); size > MaxParametersBytes {
		at.Spec.Parameters = nil
		kept[annotationParametersDropped] = strconv.Itoa(size)
	}
	at.Annotations = nil
	if len(kept) > 0 {
		at.Annotations = kept
	}
	secret.InternMeta(&at.ObjectMeta)
	at.Spec.IssuerRef.Kind = secret.Intern(at.Spec.IssuerRef.Kind)
	at.Spec.IssuerRef.Name = secret.Intern(at.Spec.IssuerRef.Name)
	at.Spec.Secret.Type = secret.Intern(at.Spec.Secret.Type)
	at.Spec.Secret.Key = secret.Intern(at.Spec.Secret.Key)
	secret.InternMap(at.Spec.Secret.Labels)
	secret.InternMap(at.Spec.Secret.Annotations)
	st := &at.Status
	for i := range st.Conditions {
		c := &st.Conditions[i]
		c.Type, c.Reason, c.Message = secret.Intern(c.Type), secret.Intern(c.Reason), secret.Intern(c.Message)
		c.Status = secret.Intern(c.Status)
	}
}
