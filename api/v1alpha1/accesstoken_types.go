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
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IssuerKind is the kind of issuer an AccessToken refers to.
// +kubebuilder:validation:Enum=TokenIssuer;ClusterTokenIssuer
type IssuerKind string

const (
	// TokenIssuerKind refers to a TokenIssuer in the AccessToken's namespace.
	TokenIssuerKind IssuerKind = "TokenIssuer"
	// ClusterTokenIssuerKind refers to a ClusterTokenIssuer.
	ClusterTokenIssuerKind IssuerKind = "ClusterTokenIssuer"
)

// IssuerReference names the issuer of an AccessToken.
type IssuerReference struct {
	// kind of the issuer: TokenIssuer (in the AccessToken's namespace) or
	// ClusterTokenIssuer.
	// +kubebuilder:default=TokenIssuer
	// +optional
	Kind IssuerKind `json:"kind,omitempty"`

	// name of the issuer.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// SecretTemplate describes the Secret the token is written to.
type SecretTemplate struct {
	// name of the Secret, in the AccessToken's namespace. The operator creates it
	// and owns it; an existing Secret it does not own is never taken over.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +required
	Name string `json:"name"`

	// key under which the token is written.
	// +kubebuilder:default=token
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`

	// type of the Secret. Only Opaque: tokenmint writes the token and the copied
	// fields, and no other Secret type is filled by exactly those keys (a type
	// such as kubernetes.io/service-account-token would make Kubernetes itself
	// act on the Secret).
	// +kubebuilder:default=Opaque
	// +kubebuilder:validation:Enum=Opaque
	// +optional
	Type corev1.SecretType `json:"type,omitempty"`

	// labels added to the Secret. Keys under the kubernetes.io, k8s.io and
	// tokenmint.dev prefixes (and their subdomains) are refused, as they make
	// Kubernetes or tokenmint act on the Secret; app.kubernetes.io/ labels are
	// allowed, except app.kubernetes.io/managed-by, which is tokenmint's.
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.contains('/') || (k.startsWith('app.kubernetes.io/') && k != 'app.kubernetes.io/managed-by') || !(k.startsWith('kubernetes.io/') || k.startsWith('k8s.io/') || k.startsWith('tokenmint.dev/') || k.split('/')[0].endsWith('.kubernetes.io') || k.split('/')[0].endsWith('.k8s.io') || k.split('/')[0].endsWith('.tokenmint.dev')))",message="labels must not use the kubernetes.io, k8s.io or tokenmint.dev prefixes (app.kubernetes.io/ is allowed, except managed-by)"
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 317 && self[k].size() <= 63)",message="label keys are at most 317 characters and values at most 63"
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// annotations added to the Secret, under the same rule on prefixes as labels
	// (kubernetes.io/service-account.name, for one, would have Kubernetes fill
	// the Secret with a ServiceAccount token).
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.contains('/') || (k.startsWith('app.kubernetes.io/') && k != 'app.kubernetes.io/managed-by') || !(k.startsWith('kubernetes.io/') || k.startsWith('k8s.io/') || k.startsWith('tokenmint.dev/') || k.split('/')[0].endsWith('.kubernetes.io') || k.split('/')[0].endsWith('.k8s.io') || k.split('/')[0].endsWith('.tokenmint.dev')))",message="annotations must not use the kubernetes.io, k8s.io or tokenmint.dev prefixes (app.kubernetes.io/ is allowed, except managed-by)"
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 317 && self[k].size() <= 4096)",message="annotation keys are at most 317 characters and values at most 4096"
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// WorkloadKind is a kind of workload that can be restarted.
// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet
type WorkloadKind string

// RestartTarget names a workload in the AccessToken's namespace.
type RestartTarget struct {
	// kind of the workload: Deployment, StatefulSet or DaemonSet.
	// +required
	Kind WorkloadKind `json:"kind"`

	// name of the workload.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// AccessTokenSpec asks for a token from an issuer, kept fresh in a Secret.
// +kubebuilder:validation:XValidation:rule="!(has(self.renewBefore) && has(self.renewBeforePercentage))",message="set at most one of renewBefore and renewBeforePercentage"
type AccessTokenSpec struct {
	// issuerRef names the issuer that mints the token. It cannot be changed: a
	// token, its refresh token and its id belong to the issuer that minted them and
	// are only ever sent back to it. To use another issuer, create a new
	// AccessToken (deleting this one revokes its token through its own issuer).
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="issuerRef is immutable: create a new AccessToken to use another issuer"
	// +required
	IssuerRef IssuerReference `json:"issuerRef"`

	// parameters are the values this token asks for (scopes, lifetime, description
	// ...), as declared by the issuer's parameters list, which also sets their
	// defaults and limits. Undeclared names are refused.
	// +kubebuilder:validation:MaxProperties=32
	// +optional
	Parameters map[string]apiextensionsv1.JSON `json:"parameters,omitempty"`

	// secret is where the token is written.
	// +required
	Secret SecretTemplate `json:"secret"`

	// renewBefore renews the token this long before it expires. When neither
	// renewBefore nor renewBeforePercentage is set, the token is renewed once two
	// thirds of its lifetime have passed.
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('8760h')",message="renewBefore must be at most 8760h"
	// +optional
	RenewBefore *Duration `json:"renewBefore,omitempty"`

	// renewBeforePercentage renews the token when this percentage of its lifetime
	// is left: 25 renews at three quarters of the lifetime.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=99
	// +optional
	RenewBeforePercentage *int32 `json:"renewBeforePercentage,omitempty"`

	// maxAge caps the lifetime renewal is scheduled from: a token is treated as
	// expiring maxAge after issue if the endpoint says nothing sooner, and is then
	// renewed under the same rules (by default at two thirds of maxAge). It is the
	// lifetime of tokens whose endpoint reports no expiry; without it, such a
	// token is renewed only when its inputs change. From 1m to 8760h: whatever
	// the policy, one AccessToken is never minted more often than the operator's
	// minimum interval between mints.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('8760h')",message="maxAge must be between 1m and 8760h"
	// +optional
	MaxAge *Duration `json:"maxAge,omitempty"`

	// restartTargets are workloads in this namespace restarted (as kubectl rollout
	// restart does) whenever the token changes, for applications that read the
	// token only at start or through an environment variable. A workload is
	// restarted only if it agrees: its annotation tokens.tokenmint.dev/restart-on
	// lists this AccessToken's name (comma separated). It is restarted at most
	// once per renewal.
	// +listType=map
	// +listMapKey=kind
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	// +optional
	RestartTargets []RestartTarget `json:"restartTargets,omitempty"`
}

// AccessTokenStatus is the observed state of an AccessToken. It never holds the
// token itself.
type AccessTokenStatus struct {
	// observedGeneration is the generation the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready summarises whether a valid token is in the Secret;
	// Renewing tells whether renewal is healthy.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// issuedAt is when the current token was issued.
	// +optional
	IssuedAt *metav1.Time `json:"issuedAt,omitempty"`

	// expiresAt is when the current token expires, if known.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// renewalTime is when the token will next be renewed.
	// +optional
	RenewalTime *metav1.Time `json:"renewalTime,omitempty"`

	// failedAttempts counts consecutive failed attempts to obtain a token; it is
	// reset by a success and drives the retry backoff.
	// +optional
	FailedAttempts int32 `json:"failedAttempts,omitempty"`

	// lastFailureTime is when the last attempt failed.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`

	// tokenFingerprint identifies the current token without revealing it: an HMAC
	// of the token under a key held by this installation.
	// +optional
	TokenFingerprint string `json:"tokenFingerprint,omitempty"`

	// lastRenewalRequest is the value of the tokens.tokenmint.dev/renew annotation
	// that was last acted on; setting the annotation to a different value renews.
	// +optional
	LastRenewalRequest string `json:"lastRenewalRequest,omitempty"`

	// inputsHash is a hash of everything the token was issued from (this spec, the
	// issuer's spec and its credentials), so a change re-issues the token once.
	// +optional
	InputsHash string `json:"inputsHash,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=at;atoken,categories=tokenmint
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Issuer",type=string,JSONPath=`.spec.issuerRef.name`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.spec.secret.name`
// +kubebuilder:printcolumn:name="Expires",type=string,format=date-time,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Renewal",type=string,format=date-time,JSONPath=`.status.renewalTime`
// +kubebuilder:printcolumn:name="Renewing",type=string,JSONPath=`.status.conditions[?(@.type=="Renewing")].reason`
// +kubebuilder:printcolumn:name="Attempts",type=integer,JSONPath=`.status.failedAttempts`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// AccessToken asks tokenmint to obtain a token from an issuer, write it into a
// Secret, and renew it before it expires.
type AccessToken struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which token to obtain and where to write it.
	// +required
	Spec AccessTokenSpec `json:"spec"`

	// status is the observed state of the token.
	// +optional
	Status AccessTokenStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// AccessTokenList contains a list of AccessToken.
type AccessTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AccessToken `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AccessToken{}, &AccessTokenList{})
}
