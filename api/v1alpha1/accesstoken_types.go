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
// +kubebuilder:validation:XValidation:rule="(self.type == 'kubernetes.io/dockerconfigjson') == has(self.dockerConfigJSON)",message="dockerConfigJSON goes with type kubernetes.io/dockerconfigjson, and that type needs it"
// +kubebuilder:validation:XValidation:rule="(self.type == 'kubernetes.io/basic-auth') == has(self.basicAuth)",message="basicAuth goes with type kubernetes.io/basic-auth, and that type needs it"
// +kubebuilder:validation:XValidation:rule="!has(self.previousKeyFor) || has(self.previousKey)",message="previousKeyFor needs previousKey"
// +kubebuilder:validation:XValidation:rule="[has(self.key) ? self.key : 'token'].all(k, (!has(self.keys) || self.keys.all(d, d.key != k)) && (!has(self.previousKey) || self.previousKey != k))",message="keys and previousKey must differ from the token's key"
// +kubebuilder:validation:XValidation:rule="!has(self.previousKey) || !has(self.keys) || self.keys.all(d, d.key != self.previousKey)",message="previousKey must differ from every derived key"
// +kubebuilder:validation:XValidation:rule="!has(self.dockerConfigJSON) || ((!has(self.key) || self.key != '.dockerconfigjson') && (!has(self.previousKey) || self.previousKey != '.dockerconfigjson') && (!has(self.keys) || self.keys.all(d, d.key != '.dockerconfigjson')))",message=".dockerconfigjson is written by dockerConfigJSON"
// +kubebuilder:validation:XValidation:rule="!has(self.basicAuth) || ([has(self.key) ? self.key : 'token'] + (has(self.previousKey) ? [self.previousKey] : []) + (has(self.keys) ? self.keys.map(d, d.key) : [])).all(k, k != 'username' && k != 'password')",message="username and password are written by basicAuth"
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

	// type of the Secret: Opaque, kubernetes.io/dockerconfigjson (with
	// dockerConfigJSON: an image pull Secret) or kubernetes.io/basic-auth (with
	// basicAuth). Only types tokenmint fills completely are allowed: a type
	// such as kubernetes.io/service-account-token would make Kubernetes itself
	// act on the Secret.
	// +kubebuilder:default=Opaque
	// +kubebuilder:validation:Enum=Opaque;kubernetes.io/dockerconfigjson;kubernetes.io/basic-auth
	// +optional
	Type corev1.SecretType `json:"type,omitempty"`

	// dockerConfigJSON writes the .dockerconfigjson key of an image pull
	// Secret: for each registry, auth = base64(username:token). Required with
	// type kubernetes.io/dockerconfigjson, and only with it.
	// +optional
	DockerConfigJSON *DockerConfigJSONOutput `json:"dockerConfigJSON,omitempty"`

	// basicAuth writes the username and password keys of a
	// kubernetes.io/basic-auth Secret, the password being the token (git over
	// HTTPS, registries). Required with type kubernetes.io/basic-auth, and only
	// with it.
	// +optional
	BasicAuth *BasicAuthOutput `json:"basicAuth,omitempty"`

	// keys are further keys built from the token: literal text with the
	// placeholders ${token}, ${expiresAt}, ${issuedAt} (RFC 3339) and
	// ${copy.<key>} (a field the issuer copies from the response); $$ is a
	// literal $. Any other placeholder is refused. The token and every key are
	// written at once, so a pod never sees a new token beside an old header.
	// +listType=map
	// +listMapKey=key
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Keys []DerivedKey `json:"keys,omitempty"`

	// previousKey, when set, keeps the token a renewal replaced under this key
	// for previousKeyFor, or until that token expires or is revoked if
	// sooner: consumers that cache the token, or verifiers that accept a list,
	// get a grace window instead of a hard cut-over. It is removed from the
	// Secret before the replaced token is revoked.
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	PreviousKey string `json:"previousKey,omitempty"`

	// previousKeyFor is how long previousKey holds the replaced token: 1s to
	// 24h, default 5m. The issuer's revokeGracePeriod, when it revokes, ends
	// the window earlier.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="previousKeyFor must be between 1s and 24h"
	// +optional
	PreviousKeyFor *Duration `json:"previousKeyFor,omitempty"`

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

// DockerConfigJSONOutput describes the .dockerconfigjson of an image pull Secret.
type DockerConfigJSONOutput struct {
	// registries the token is for: host names with an optional port
	// (ghcr.io, registry.example.com:5000), as image references name them.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?(:[0-9]{1,5})?$`
	// +listType=set
	// +required
	Registries []string `json:"registries"`

	// username sent with the token. Registries that take a token as the
	// password accept a fixed word (GHCR: any non-empty name; Azure:
	// 00000000-0000-0000-0000-000000000000; Google: oauth2accesstoken).
	// +required
	Username OutputUsername `json:"username"`
}

// BasicAuthOutput describes the username of a kubernetes.io/basic-auth Secret.
type BasicAuthOutput struct {
	// username written beside the token (the password): x-access-token for a
	// GitHub App token over git, say.
	// +required
	Username OutputUsername `json:"username"`
}

// OutputUsername is a username: a literal or a field the issuer copies from
// the response.
// +kubebuilder:validation:XValidation:rule="has(self.value) != has(self.copy)",message="set exactly one of value or copy"
type OutputUsername struct {
	// value is a literal username.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="!self.contains(':')",message="a username cannot contain ':'"
	// +optional
	Value string `json:"value,omitempty"`

	// copy is the key of a field the issuer copies from the response
	// (response.copy), whose value is the username.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	Copy string `json:"copy,omitempty"`
}

// KeyEncoding says how placeholder values are written into a derived key.
// +kubebuilder:validation:Enum=Raw;JSON
type KeyEncoding string

const (
	// KeyEncodingRaw writes values as they are.
	KeyEncodingRaw KeyEncoding = "Raw"
	// KeyEncodingJSON writes each value as a JSON string literal (quoted and
	// escaped; null for an unknown expiry), so the key is valid JSON whatever
	// the token holds.
	KeyEncodingJSON KeyEncoding = "JSON"
)

// DerivedKey is a Secret key built from the token and its fields.
// +kubebuilder:validation:XValidation:rule="self.template.findAll('[$][$]|[$][{][^}]*[}]?').all(p, p == '$$' || p in ['${token}', '${expiresAt}', '${issuedAt}'] || p.matches('^[$][{]copy[.][-._a-zA-Z0-9]+[}]$'))",message="the placeholders are ${token}, ${expiresAt}, ${issuedAt} and ${copy.<key>}; write $$ for a literal $"
type DerivedKey struct {
	// key in the Secret.
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:MaxLength=253
	// +required
	Key string `json:"key"`

	// template is the key's content: "Authorization: Bearer ${token}", or a
	// JSON or .env document. Placeholders are replaced once: a value holding
	// "${" is never expanded again.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +required
	Template string `json:"template"`

	// encoding of the placeholder values: Raw (default) or JSON, which writes
	// each as a JSON string literal ("${token}" must then not be quoted in the
	// template: {"token": ${token}}).
	// +kubebuilder:default=Raw
	// +optional
	Encoding KeyEncoding `json:"encoding,omitempty"`
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

// RenewalPolicy says when a token is renewed; AccessTokens and
// ClusterAccessTokens share it.
type RenewalPolicy struct {
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
}

// AccessTokenSpec asks for a token from an issuer, kept fresh in a Secret.
// +kubebuilder:validation:XValidation:rule="!(has(self.renewBefore) && has(self.renewBeforePercentage))",message="set at most one of renewBefore and renewBeforePercentage"
type AccessTokenSpec struct {
	// issuerRef names the issuer that mints the token. Changing it moves the
	// AccessToken to another issuer without a gap: the current token stays in
	// the Secret (and is not renewed) until the new issuer has issued one; it
	// is then revoked through the issuer that minted it, after that issuer's
	// revokeGracePeriod. A token, its refresh token and its id are only ever
	// sent back to the issuer that minted them. Change parameters in the same
	// apply when the new issuer declares others.
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

	// The renewal policy: renewBefore, renewBeforePercentage and maxAge.
	RenewalPolicy `json:",inline"`

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

	// suspend, while true, stops all work on this AccessToken: the manager
	// mints, renews and revokes nothing for it and leaves its Secret as it is
	// (the token in it stays until it expires). Status still tells whether the
	// token is valid (Ready) and that it is suspended (Renewing, reason
	// Suspended). Set it back to false to resume: a token still valid and not
	// due for renewal is kept, one expired or due is renewed as usual. Deleting
	// a suspended AccessToken still revokes its token, as deletion is explicit.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// secretDeletionPolicy says what happens to the Secret when the AccessToken
	// is deleted. Delete (the default, also when empty): the Secret goes with
	// it, as Kubernetes deletes what an object owns. Retain: the Secret's owner
	// reference is removed first, so the Secret stays, and the token in it stays
	// valid until it expires unless revocationPolicy revokes it. A retained Secret is no
	// longer tokenmint's: a new AccessToken of the same secret.name reports
	// SecretNotOwned.
	// +kubebuilder:validation:Enum=Delete;Retain
	// +optional
	SecretDeletionPolicy SecretDeletionPolicy `json:"secretDeletionPolicy,omitempty"`

	// revocationPolicy says whether deleting the AccessToken revokes its tokens,
	// when its issuer can revoke. RevokeOnDelete (the default, also when
	// empty): the current token and replaced ones still waiting for revocation
	// are revoked. None: deletion revokes nothing, and needs no finalizer
	// (replaced tokens are still revoked after their grace period while the
	// AccessToken lives).
	// +kubebuilder:validation:Enum=RevokeOnDelete;None
	// +optional
	RevocationPolicy RevocationPolicy `json:"revocationPolicy,omitempty"`
}

// SecretDeletionPolicy is what happens to an AccessToken's Secret when the
// AccessToken is deleted.
type SecretDeletionPolicy string

const (
	SecretDeletionPolicyDelete SecretDeletionPolicy = "Delete"
	SecretDeletionPolicyRetain SecretDeletionPolicy = "Retain"
)

// RevocationPolicy says whether deleting an AccessToken revokes its tokens.
type RevocationPolicy string

const (
	RevocationPolicyRevokeOnDelete RevocationPolicy = "RevokeOnDelete"
	RevocationPolicyNone           RevocationPolicy = "None"
)

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

	// reissueAfter is when the token is re-issued after a change of its
	// issuer's spec or credentials that its issuer's reissueWindow spreads;
	// unset when no such re-issue is pending.
	// +optional
	ReissueAfter *metav1.Time `json:"reissueAfter,omitempty"`

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

	// history lists the most recent tokens, newest first (the current token
	// first), by fingerprint: which issuer minted each, when, when it expires,
	// when a new token replaced it and when it was revoked. It never holds a
	// token.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	// +optional
	History []TokenHistoryEntry `json:"history,omitempty"`
}

// TokenHistoryEntry describes one token an AccessToken held, without the token.
type TokenHistoryEntry struct {
	// fingerprint is the token's tokenFingerprint: an HMAC of the token under
	// a key held by this installation.
	// +kubebuilder:validation:MaxLength=128
	// +required
	Fingerprint string `json:"fingerprint"`

	// issuer is the issuer that minted the token.
	// +required
	Issuer IssuerReference `json:"issuer"`

	// issuedAt is when the token was issued.
	// +required
	IssuedAt metav1.Time `json:"issuedAt"`

	// expiresAt is when the token expires, if known.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// replacedAt is when a new token took its place in the Secret.
	// +optional
	ReplacedAt *metav1.Time `json:"replacedAt,omitempty"`

	// revokedAt is when the issuer confirmed its revocation.
	// +optional
	RevokedAt *metav1.Time `json:"revokedAt,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=at;atoken,categories=tokenmint
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Issuer",type=string,JSONPath=`.spec.issuerRef.name`
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.issuerRef.kind`,priority=1
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.spec.secret.name`
// +kubebuilder:printcolumn:name="Renewing",type=string,JSONPath=`.status.conditions[?(@.type=="Renewing")].reason`
// +kubebuilder:printcolumn:name="Expires",type=string,format=date-time,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Renewal",type=string,format=date-time,JSONPath=`.status.renewalTime`,priority=1
// +kubebuilder:printcolumn:name="Attempts",type=integer,JSONPath=`.status.failedAttempts`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Renewing")].message`,priority=1
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
