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

package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LabelClusterAccessToken names, on every Secret a ClusterAccessToken writes,
// the ClusterAccessToken that wrote it.
const LabelClusterAccessToken = "tokens.tokenmint.dev/cluster-access-token"

// ClusterIssuerReference names a ClusterTokenIssuer.
type ClusterIssuerReference struct {
	// name of the ClusterTokenIssuer.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// TargetNamespaces selects namespaces by name or by label: a namespace is
// selected when it matches either.
// +kubebuilder:validation:XValidation:rule="has(self.names) || has(self.selector)",message="set names, selector, or both"
type TargetNamespaces struct {
	// names of namespaces.
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +optional
	Names []string `json:"names,omitempty"`

	// selector matches namespaces by their labels (which only those who may
	// edit Namespaces can set).
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// ClusterAccessTokenSpec asks for one token from a ClusterTokenIssuer, written
// to a Secret of the same name in every selected namespace.
// +kubebuilder:validation:XValidation:rule="!(has(self.renewBefore) && has(self.renewBeforePercentage))",message="set at most one of renewBefore and renewBeforePercentage"
type ClusterAccessTokenSpec struct {
	// issuerRef names the ClusterTokenIssuer that mints the token. Changing it
	// moves the source AccessToken to the other issuer without a gap, as
	// changing an AccessToken's issuerRef does.
	// +required
	IssuerRef ClusterIssuerReference `json:"issuerRef"`

	// parameters are the values this token asks for, as the issuer declares.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Parameters map[string]apiextensionsv1.JSON `json:"parameters,omitempty"`

	// secret is the Secret written in every selected namespace, with the same
	// name, type and keys as an AccessToken's.
	// +required
	Secret SecretTemplate `json:"secret"`

	// namespaces the Secret is written to. A namespace must also be allowed by
	// the ClusterTokenIssuer's allowedNamespaces. A namespace selected later gets
	// the current token without a mint; one no longer selected has its Secret
	// deleted. A Secret of that name that tokenmint does not own is never taken
	// over (the namespace is reported as failing).
	// +required
	Namespaces TargetNamespaces `json:"namespaces"`

	// The renewal policy, as for an AccessToken.
	RenewalPolicy `json:",inline"`

	// suspend, while true, stops all work on this ClusterAccessToken: its
	// source AccessToken is suspended too (so nothing is minted, renewed or
	// revoked), and no Secret is written, created or deleted in any namespace
	// (a namespace selected meanwhile gets none). Status still tells whether the
	// token is valid (Ready) and that it is suspended (Renewing, reason
	// Suspended). Set it back to false to resume: the Secrets catch up with the
	// current token, and a token still valid and not due for renewal is kept.
	// Deleting a suspended ClusterAccessToken still deletes its Secrets and
	// revokes its token, as deletion is explicit.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// NamespaceFailure is a namespace whose Secret could not be written.
type NamespaceFailure struct {
	// name of the namespace.
	Name string `json:"name"`
	// message says why.
	Message string `json:"message"`
}

// ClusterAccessTokenStatus is the observed state of a ClusterAccessToken.
type ClusterAccessTokenStatus struct {
	// observedGeneration is the generation the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready is True when a valid token is in the Secret of every
	// selected namespace; Renewing tells whether renewal is healthy.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// issuedAt, expiresAt and renewalTime of the current token.
	// +optional
	IssuedAt *metav1.Time `json:"issuedAt,omitempty"`
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// +optional
	RenewalTime *metav1.Time `json:"renewalTime,omitempty"`

	// failedAttempts counts consecutive failed attempts to obtain a token.
	// +optional
	FailedAttempts int32 `json:"failedAttempts,omitempty"`

	// tokenFingerprint identifies the current token without revealing it.
	// +optional
	TokenFingerprint string `json:"tokenFingerprint,omitempty"`

	// namespaces is how many namespaces are selected (and allowed by the
	// issuer); written how many hold the current token; failing how many could
	// not be written.
	// +optional
	Namespaces int32 `json:"namespaces"`
	// +optional
	Written int32 `json:"written"`
	// +optional
	Failing int32 `json:"failing"`

	// failures lists up to 10 failing namespaces and why.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=10
	// +optional
	Failures []NamespaceFailure `json:"failures,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cat;clusteraccesstoken,categories=tokenmint
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="the name of a ClusterAccessToken is at most 63 characters"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Issuer",type=string,JSONPath=`.spec.issuerRef.name`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.spec.secret.name`
// +kubebuilder:printcolumn:name="Namespaces",type=integer,JSONPath=`.status.namespaces`
// +kubebuilder:printcolumn:name="Written",type=integer,JSONPath=`.status.written`
// +kubebuilder:printcolumn:name="Failing",type=integer,JSONPath=`.status.failing`
// +kubebuilder:printcolumn:name="Expires",type=string,format=date-time,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Renewing",type=string,JSONPath=`.status.conditions[?(@.type=="Renewing")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ClusterAccessToken asks tokenmint for one token from a ClusterTokenIssuer,
// written to a Secret of the same name in every selected namespace and renewed
// once for all of them: one call, N Secret writes. Written by cluster
// administrators.
type ClusterAccessToken struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which token to obtain and where to write it.
	// +required
	Spec ClusterAccessTokenSpec `json:"spec"`

	// status is the observed state of the token and its Secrets.
	// +optional
	Status ClusterAccessTokenStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterAccessTokenList contains a list of ClusterAccessToken.
type ClusterAccessTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterAccessToken `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ClusterAccessToken{}, &ClusterAccessTokenList{})
}
