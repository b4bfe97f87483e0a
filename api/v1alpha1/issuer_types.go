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

// IssuerSpec describes how to obtain a token from one token endpoint: the request
// to send, how to read the response, and optional refresh and revoke calls. It is
// shared by TokenIssuer and ClusterTokenIssuer.
// +kubebuilder:validation:XValidation:rule="[has(self.request), has(self.signedJWT), has(self.awsPresignedURL)].filter(x, x).size() == 1",message="set exactly one of request (a token endpoint), signedJWT (a token tokenmint signs itself) or awsPresignedURL"
// +kubebuilder:validation:XValidation:rule="has(self.request) == has(self.response)",message="response is required with request, and has no meaning with signedJWT or awsPresignedURL"
// +kubebuilder:validation:XValidation:rule="!has(self.awsPresignedURL) || (!has(self.refresh) && !has(self.revoke) && !has(self.clientCertificate) && !has(self.caBundle))",message="an issuer with awsPresignedURL makes no call of its own: refresh, revoke, clientCertificate and caBundle have no meaning"
// +kubebuilder:validation:XValidation:rule="!has(self.signedJWT) || (!has(self.refresh) && !has(self.revoke) && !has(self.clientCertificate) && !has(self.caBundle) && !has(self.credentials))",message="an issuer with signedJWT makes no call: refresh, revoke, clientCertificate, caBundle and credentials have no meaning"
// +kubebuilder:validation:XValidation:rule="!has(self.request) || has(self.request.url)",message="request.url is required"
// +kubebuilder:validation:XValidation:rule="!has(self.steps) || !has(self.signedJWT)",message="steps are calls: an issuer with signedJWT makes none"
// +kubebuilder:validation:XValidation:rule="self.allowInsecureHTTP || !has(self.steps) || self.steps.all(s, s.request.url.startsWith('https://'))",message="step URLs must use https; set allowInsecureHTTP to allow plain http"
// +kubebuilder:validation:XValidation:rule="self.allowInsecureHTTP || !has(self.request) || (has(self.request.url) && self.request.url.startsWith('https://') && (!has(self.refresh) || !has(self.refresh.url) || self.refresh.url.startsWith('https://')) && (!has(self.revoke) || !has(self.revoke.url) || self.revoke.url.startsWith('https://')))",message="token endpoint URLs must use https; set allowInsecureHTTP to allow plain http"
// +kubebuilder:validation:XValidation:rule="!has(self.refresh) || (has(self.refreshExtends) && self.refreshExtends) || (has(self.response) && has(self.response.refreshToken))",message="refresh needs response.refreshToken, the place the refresh token is read from (or refreshExtends)"
// +kubebuilder:validation:XValidation:rule="!has(self.refreshExtends) || !self.refreshExtends || (has(self.refresh) && has(self.response) && has(self.response.expiry) && !has(self.response.refreshToken))",message="refreshExtends needs refresh and response.expiry (the new expiry), and no response.refreshToken"
// +kubebuilder:validation:XValidation:rule="!has(self.request) || ((!has(self.request.url) || !self.request.url.contains('{tokenID}')) && (!has(self.refresh) || !has(self.refresh.url) || !self.refresh.url.contains('{tokenID}')))",message="{tokenID} is only meaningful in revoke.url"
// +kubebuilder:validation:XValidation:rule="!has(self.response) || !has(self.response.copy) || !has(self.response.refreshToken) || self.response.copy.all(c, c.path != self.response.refreshToken.path && !self.response.refreshToken.path.startsWith(c.path + '.'))",message="response.copy must not copy the refresh token (or an object holding it) into the Secret pods mount"
// +kubebuilder:validation:XValidation:rule="((has(self.request) && has(self.request.url) ? [self.request.url] : []) + (has(self.refresh) && has(self.refresh.url) ? [self.refresh.url] : []) + (has(self.revoke) && has(self.revoke.url) ? [self.revoke.url.replace('{tokenID}', 'tokenID')] : [])).all(u, u.findAll('[{][A-Za-z0-9_]*[}]').all(p, has(self.parameters) && self.parameters.exists(q, '{' + q.name + '}' == p)))",message="every {name} in a URL must be a declared parameter ({tokenID} only in revoke.url)"
// +kubebuilder:validation:XValidation:rule="!has(self.revoke) || !has(self.revoke.url) || !self.revoke.url.matches('^[a-zA-Z]+://[^/?#]*[{]tokenID[}]')",message="{tokenID} cannot be in the host of revoke.url: the provider's token id must never choose where credentials are sent"
type IssuerSpec struct {
	// credentials declares, once, every credential the issuer's calls send: a
	// key of a Secret, a JWT signed on every call, or a ServiceAccount token.
	// Request values use them by name (credential: <name>), as often as they
	// need; one that no value uses is neither read nor watched.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Credentials []Credential `json:"credentials,omitempty"`

	// steps are calls made, in order, before request: each one's token (and
	// copied fields) is a value for the steps after it and for request,
	// through a credential with a step source. A step's result is kept only in
	// the operator's memory and reused while valid. At most 4.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=4
	// +optional
	Steps []IssuerStep `json:"steps,omitempty"`

	// request is the call that mints a new token. Set exactly one of request
	// or signedJWT.
	// +optional
	Request RequestSpec `json:"request,omitzero"`

	// response says where the token, its expiry and other fields are in the
	// endpoint's answer, and how errors are reported. Required with request.
	// +optional
	Response ResponseSpec `json:"response,omitzero"`

	// signedJWT, instead of request and response, makes the token a JWT that
	// tokenmint signs itself, for APIs that take such a JWT as their bearer
	// token (App Store Connect, Snowflake key-pair authentication). No call is
	// made: the token expires at its exp claim, lifetime after signing, and is
	// renewed before then like any token.
	// +optional
	SignedJWT *SignedJWT `json:"signedJWT,omitempty"`

	// awsPresignedURL, instead of request and response, makes the token a
	// URL pre-signed with AWS Signature Version 4 (an EKS token, an RDS IAM
	// authentication token). The URL needs no call; its access key comes
	// from the issuer's credentials: a Secret, or the steps (temporary
	// credentials from STS), which run first.
	// +optional
	AWSPresignedURL *AWSPresignedURL `json:"awsPresignedURL,omitempty"`

	// refresh is the call used instead of request while a refresh token from an
	// earlier response is still valid (an OAuth2 refresh_token grant, for example).
	// When the endpoint refuses the refresh, the operator falls back to request.
	// Values may use issued: RefreshToken. Its answer is read with response.
	// The url, auth and headers it leaves out are request's; its body is its own.
	// +optional
	Refresh *RequestSpec `json:"refresh,omitempty"`

	// refreshExtends makes refresh extend the current token instead of
	// replacing it, as a lease renewal does (Vault's sys/leases/renew): it is
	// sent while the current token is held, its values may use issued:
	// AccessToken or TokenID, and its answer gives only the new expiry, read
	// with response.expiry; the token, its id and copied fields stay, and the
	// Secret keeps them. A refused extension, or one that grants less time
	// than the token had (a lease near its maximum TTL), replaces the token
	// through request, before it expires. An extended token never outlives
	// the steps' results it was obtained with.
	// +optional
	RefreshExtends bool `json:"refreshExtends,omitempty"`

	// revoke is an optional call that invalidates a token the operator no longer
	// needs: a superseded token after revokeGracePeriod, and the current token when
	// its AccessToken is deleted. The URL may contain {tokenID}, replaced with the
	// token's id read through response.tokenID; values may use issued: AccessToken
	// or issued: TokenID. The url, auth and headers it leaves out are request's;
	// its body is its own.
	// +optional
	Revoke *RequestSpec `json:"revoke,omitempty"`

	// revokeGracePeriod is how long a superseded token stays valid before it is
	// revoked, so that pods have time to read the new one. At most 24h.
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('24h')",message="revokeGracePeriod must be at most 24h"
	// +optional
	RevokeGracePeriod *Duration `json:"revokeGracePeriod,omitempty"`

	// parameters declares the values an AccessToken may (or must) supply, with their
	// type, default and constraints. Request values use them with parameter: <name>.
	// An AccessToken that supplies an undeclared parameter, or a value that breaks a
	// constraint, is refused before any call is made.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Parameters []ParameterSpec `json:"parameters,omitempty"`

	// defaultLifetime is how long a token lives when the response reports no
	// expiry (response.expiry is not set): the token's expiresAt is its issue
	// plus defaultLifetime, and it is renewed before then like any other. Set
	// it to the lifetime the provider documents. An AccessToken's maxAge can
	// only shorten it. A token with neither has no known expiry: it is never
	// renewed, and its AccessToken says so (condition ExpiryUnknown). From 1m
	// to 8760h.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m') && duration(self) <= duration('8760h')",message="defaultLifetime must be between 1m and 8760h"
	// +optional
	DefaultLifetime *Duration `json:"defaultLifetime,omitempty"`

	// rateLimit bounds the calls to the issuer's endpoints (mints, refreshes
	// and revocations of all its AccessTokens together). Unset, the manager's
	// --issuer-rate-limit and --issuer-burst apply (20 calls a second, burst 40,
	// by default); a TokenIssuer may not ask for more than they allow. On a
	// ClusterTokenIssuer the namespaces with calls waiting take turns.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`

	// reissueWindow spreads the re-issue of its AccessTokens' tokens after
	// this spec or one of its credential Secrets changes: each token is
	// re-issued at its own point in the window (fixed by its namespace and
	// name), or at its normal renewal time when that comes first, so that
	// none expires meanwhile; a token that has no valid current token is
	// issued at once. The AccessToken shows the time in status.reissueAfter.
	// Unset or 0s, every token is re-issued at once (paced by rateLimit).
	// Changing it re-issues nothing. From 0s to 24h.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('24h')",message="reissueWindow must be between 0s and 24h"
	// +optional
	ReissueWindow *Duration `json:"reissueWindow,omitempty"`

	// timeout bounds each call to the endpoint, including reading the response:
	// from 1s to 60s. A call in flight holds one of the issuer's concurrent call
	// slots (never a slot shared with other issuers) until it ends.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('60s')",message="timeout must be between 1s and 60s"
	// +optional
	Timeout *Duration `json:"timeout,omitempty"`

	// caBundle is a PEM bundle of certificate authorities trusted for the endpoint,
	// in addition to the system roots. Use it for a private CA. At most 64 KiB.
	// +kubebuilder:validation:MaxLength=87384
	// +optional
	CABundle []byte `json:"caBundle,omitempty"`

	// clientCertificate is presented to the endpoints (mutual TLS, RFC 8705):
	// the certificate and key of a kubernetes.io/tls Secret (tls.crt, tls.key)
	// read like every credential, so a certificate cert-manager renews is used
	// from the next call on.
	// +optional
	ClientCertificate *ClientCertificate `json:"clientCertificate,omitempty"`

	// allowInsecureHTTP permits plain http:// endpoint URLs. Only for tests and local
	// development: tokens and credentials then cross the network in clear text.
	// +kubebuilder:default=false
	// +optional
	AllowInsecureHTTP bool `json:"allowInsecureHTTP,omitempty"`
}

// HTTPMethod is the method of a request.
// +kubebuilder:validation:Enum=GET;POST;PUT;PATCH;DELETE
type HTTPMethod string

// RequestSpec is one HTTP call: URL, method, client authentication, headers and body.
type RequestSpec struct {
	// url of the endpoint, https unless allowInsecureHTTP is set. {name} in the
	// path or query is replaced with the value of the String or Integer
	// parameter name (a GitHub App's installation id, say), percent-encoded so
	// that it stays one path segment or query value; in revoke, {tokenID} is
	// replaced with the id of the token being revoked; {steps.<step>.<key>} is
	// replaced with field key that an earlier step's response.copy gives (an
	// account id, say; never a step's token or a field marked secret, since
	// URLs are logged). Placeholders cannot stand in the host. Required in
	// request; refresh and revoke use request's when they leave it out.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self.replace('{', '').replace('}', '')) && (self.startsWith('https://') || self.startsWith('http://'))",message="url must be an absolute http(s) URL"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z]+://[^/?#]*[{}]')",message="a {placeholder} cannot stand in the host of a URL: a value must never choose where credentials are sent"
	// +kubebuilder:validation:XValidation:rule="self.matches('^[^{}]*([{]([A-Za-z][A-Za-z0-9_]*|steps[.][a-z0-9]([-a-z0-9]*[a-z0-9])?[.][-._a-zA-Z0-9]+)[}][^{}]*)*$')",message="a URL placeholder is {name}, name a parameter, {steps.<step>.<key>} or tokenID in revoke.url"
	// +optional
	URL string `json:"url,omitempty"`

	// method of the request.
	// +kubebuilder:default=POST
	// +optional
	Method HTTPMethod `json:"method,omitempty"`

	// auth is the client authentication sent with the request. Omit it when the
	// credentials travel in the body or the endpoint needs none. Refresh and
	// revoke send request's when they leave it out.
	// +optional
	Auth *AuthSpec `json:"auth,omitempty"`

	// headers sent with the request, each from one typed source. Refresh and
	// revoke send request's headers when they list none. Content-Type
	// (set from the body format), Content-Length, Host, Transfer-Encoding and
	// Connection cannot be listed.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Headers []Header `json:"headers,omitempty"`

	// body of the request. Omit it to send no body.
	// +optional
	Body *BodySpec `json:"body,omitempty"`
}

// AuthSpec is the client authentication of a request: exactly one of bearer,
// basic or awsSigV4.
// +kubebuilder:validation:XValidation:rule="[has(self.bearer), has(self.basic), has(self.awsSigV4)].filter(x, x).size() == 1",message="exactly one of bearer, basic or awsSigV4 must be set"
type AuthSpec struct {
	// bearer sends "Authorization: Bearer <value>".
	// +kubebuilder:validation:XValidation:rule="!has(self.json)",message="json literals are for JSON body fields; use value"
	// +optional
	Bearer *ValueSource `json:"bearer,omitempty"`

	// basic sends HTTP Basic authentication (RFC 7617), for example a consumer key
	// and secret or an OAuth2 client id and secret.
	// +optional
	Basic *BasicAuth `json:"basic,omitempty"`

	// awsSigV4 signs the request with AWS Signature Version 4, after every
	// header and the body are final: Authorization, X-Amz-Date (on the
	// provider's clock) and, with a session token, X-Amz-Security-Token. A
	// signed request follows no redirect.
	// +optional
	AWSSigV4 *AWSSigV4 `json:"awsSigV4,omitempty"`
}

// BasicAuth is an HTTP Basic username and password.
// +kubebuilder:validation:XValidation:rule="!has(self.username.json) && !has(self.password.json)",message="json literals are for JSON body fields; use value"
type BasicAuth struct {
	// username (for OAuth2, the client id).
	// +required
	Username ValueSource `json:"username"`
	// password (for OAuth2, the client secret).
	// +required
	Password ValueSource `json:"password"`
}

// Header is one request header.
// +kubebuilder:validation:XValidation:rule="!has(self.json)",message="json literals are for JSON body fields; use value in headers"
// +kubebuilder:validation:XValidation:rule="!(self.name.lowerAscii() in ['content-type', 'content-length', 'host', 'transfer-encoding', 'connection'])",message="Content-Type, Content-Length, Host, Transfer-Encoding and Connection are set by tokenmint and cannot be listed"
type Header struct {
	// name of the header.
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+.^_|~0-9A-Za-z-]+$`
	// +kubebuilder:validation:MaxLength=256
	// +required
	Name string `json:"name"`

	ValueSource `json:",inline"`
}

// BodySpec is the request body: exactly one of json or form, or only
// jsonContentType for an empty JSON object.
// +kubebuilder:validation:XValidation:rule="!(has(self.json) && has(self.form)) && (has(self.json) || has(self.form) || has(self.jsonContentType))",message="exactly one of json or form must be set (or jsonContentType alone, for {})"
// +kubebuilder:validation:XValidation:rule="!has(self.jsonContentType) || !has(self.form)",message="jsonContentType is for JSON bodies"
type BodySpec struct {
	// jsonContentType is the Content-Type of a JSON body: application/json
	// (the default), or application/x-amz-json-1.0 or 1.1 for AWS's JSON
	// APIs. Set alone, the body is the empty object {}.
	// +kubebuilder:validation:Enum=application/json;application/x-amz-json-1.0;application/x-amz-json-1.1
	// +optional
	JSONContentType string `json:"jsonContentType,omitempty"`

	// json sends an application/json object built from these fields.
	// +listType=map
	// +listMapKey=path
	// +kubebuilder:validation:MaxItems=64
	// +optional
	JSON []JSONField `json:"json,omitempty"`

	// form sends an application/x-www-form-urlencoded body built from these fields.
	// Lists are joined with single spaces, as OAuth2 does for scope.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Form []FormField `json:"form,omitempty"`
}

// JSONField is one field of a JSON body.
type JSONField struct {
	// path of the field, dot separated for nested objects: "scopes.organization_id"
	// sends {"scopes": {"organization_id": ...}}.
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$`
	// +kubebuilder:validation:MaxLength=256
	// +required
	Path string `json:"path"`

	ValueSource `json:",inline"`
}

// FormField is one field of a form body.
// +kubebuilder:validation:XValidation:rule="!has(self.json)",message="json literals are for JSON body fields; use value in forms"
type FormField struct {
	// name of the form field.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +required
	Name string `json:"name"`

	ValueSource `json:",inline"`
}

// Generator names a value computed on every call.
// +kubebuilder:validation:Enum=UUID;UnixSeconds;UnixMilliseconds;RFC3339
type Generator string

const (
	// GenerateUUID is a random UUID (version 4), fresh on every call.
	GenerateUUID Generator = "UUID"
	// GenerateUnixSeconds is the current time as unix seconds.
	GenerateUnixSeconds Generator = "UnixSeconds"
	// GenerateUnixMilliseconds is the current time as unix milliseconds.
	GenerateUnixMilliseconds Generator = "UnixMilliseconds"
	// GenerateRFC3339 is the current time in RFC 3339 format, UTC.
	GenerateRFC3339 Generator = "RFC3339"
)

// IssuedValue names a value from an earlier response.
// +kubebuilder:validation:Enum=RefreshToken;AccessToken;TokenID
type IssuedValue string

const (
	// IssuedRefreshToken is the refresh token of the last response (refresh calls).
	IssuedRefreshToken IssuedValue = "RefreshToken"
	// IssuedAccessToken is the token being revoked (revoke calls) or extended
	// (refresh calls with refreshExtends).
	IssuedAccessToken IssuedValue = "AccessToken"
	// IssuedTokenID is the id of the token being revoked or extended.
	IssuedTokenID IssuedValue = "TokenID"
)

// ValueSource gives a value from exactly one typed source.
// +kubebuilder:validation:XValidation:rule="[has(self.value), has(self.json), has(self.credential), has(self.generate), has(self.parameter), has(self.issued)].filter(x, x).size() == 1",message="exactly one of value, json, credential, generate, parameter or issued must be set"
type ValueSource struct {
	// value is a literal string.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Value *string `json:"value,omitempty"`

	// json is a literal JSON value written as text, for JSON bodies only: '3600'
	// sends a number, '["invoices.read"]' a list, '{"a": true}' an object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	JSON string `json:"json,omitempty"`

	// credential is the name of one of the issuer's credentials.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Credential string `json:"credential,omitempty"`

	// generate computes the value on every call: UUID (a fresh random UUID),
	// UnixSeconds, UnixMilliseconds or RFC3339 (the current time).
	// +optional
	Generate Generator `json:"generate,omitempty"`

	// parameter is the name of one of the issuer's parameters, whose value the
	// AccessToken supplies (or the default).
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_]*$`
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Parameter string `json:"parameter,omitempty"`

	// issued takes a value from an earlier response: RefreshToken (in refresh),
	// AccessToken or TokenID (in revoke, and in refresh with refreshExtends).
	// +optional
	Issued IssuedValue `json:"issued,omitempty"`
}

// Credential is one named credential of an issuer: exactly one of
// secretKeyRef, signedJWT, serviceAccountToken or step.
// +kubebuilder:validation:XValidation:rule="[has(self.secretKeyRef), has(self.signedJWT), has(self.serviceAccountToken), has(self.step)].filter(x, x).size() == 1",message="exactly one of secretKeyRef, signedJWT, serviceAccountToken or step must be set"
type Credential struct {
	// name by which request values refer to the credential (credential: <name>).
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	// +required
	Name string `json:"name"`

	// secretKeyRef reads the value from a key of a Secret. A TokenIssuer reads
	// Secrets of its own namespace; a ClusterTokenIssuer reads them from the
	// operator's credentials namespace.
	// +optional
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`

	// signedJWT is a JWT signed on every call with a private key from a Secret:
	// an OAuth2 client assertion (private_key_jwt, RFC 7523), a jwt-bearer
	// grant's assertion, a GitHub App's JWT. Every call gets fresh iat, exp and
	// jti claims.
	// +optional
	SignedJWT *SignedJWT `json:"signedJWT,omitempty"`

	// serviceAccountToken is a token of a Kubernetes ServiceAccount of the
	// AccessToken's namespace, requested (TokenRequest API) for every call and
	// never kept: the credential of keyless, federated token endpoints (RFC 8693
	// token exchange, workload identity federation, Vault's Kubernetes login).
	// The ServiceAccount must agree: its annotation tokens.tokenmint.dev/issuers
	// lists this issuer (TokenIssuer/<name> or ClusterTokenIssuer/<name>). An
	// audience the Kubernetes API itself accepts is refused.
	// +optional
	ServiceAccountToken *ServiceAccountTokenSource `json:"serviceAccountToken,omitempty"`

	// step is the result of one of the issuer's steps: its token, or a field
	// its response copies. Only steps after it and request may use it.
	// +optional
	Step *StepSource `json:"step,omitempty"`
}

// SecretKeySelector names one key of a Secret whose namespace is implied by the issuer.
type SecretKeySelector struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// key within the Secret's data.
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:MaxLength=253
	// +required
	Key string `json:"key"`
}

// ParameterType is the type of a parameter value.
// +kubebuilder:validation:Enum=String;Integer;Boolean;StringList;StringMap
type ParameterType string

const (
	// ParameterString is a string.
	ParameterString ParameterType = "String"
	// ParameterInteger is a whole number.
	ParameterInteger ParameterType = "Integer"
	// ParameterBoolean is true or false.
	ParameterBoolean ParameterType = "Boolean"
	// ParameterStringList is a list of strings.
	ParameterStringList ParameterType = "StringList"
	// ParameterStringMap is an object whose values are strings, such as the
	// permissions of a GitHub App installation token ({"contents": "read"}).
	// It can be sent only in a JSON body.
	ParameterStringMap ParameterType = "StringMap"
)

// ParameterSpec declares one value an AccessToken may supply, and the constraints
// the issuer's owner puts on it.
// +kubebuilder:validation:XValidation:rule="!has(self.minimum) || !has(self.maximum) || self.minimum <= self.maximum",message="minimum must not be greater than maximum"
// +kubebuilder:validation:XValidation:rule="self.type == 'Integer' || (!has(self.minimum) && !has(self.maximum))",message="minimum and maximum apply to Integer parameters only"
// +kubebuilder:validation:XValidation:rule="self.type in ['String', 'StringList', 'StringMap'] || (!has(self.pattern) && !has(self.enum))",message="pattern and enum apply to String, StringList and StringMap parameters only"
// +kubebuilder:validation:XValidation:rule="self.type == 'StringMap' || !has(self.keys)",message="keys apply to StringMap parameters only"
// +kubebuilder:validation:XValidation:rule="!has(self.fromNamespaceLabel) || self.type in ['String', 'Integer']",message="fromNamespaceLabel applies to String and Integer parameters only"
type ParameterSpec struct {
	// name by which request values (parameter: <name>), URLs ({<name>}) and
	// AccessTokens (spec.parameters.<name>) refer to the parameter. tokenID is
	// reserved for revoke.url.
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_]*$`
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self != 'tokenID'",message="tokenID is reserved for the token id in revoke.url"
	// +required
	Name string `json:"name"`

	// type of the value.
	// +kubebuilder:default=String
	// +optional
	Type ParameterType `json:"type,omitempty"`

	// description tells AccessToken authors what the parameter is for.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Description string `json:"description,omitempty"`

	// required means every AccessToken must supply a value (ignored when a default is set).
	// +optional
	Required bool `json:"required,omitempty"`

	// default is used when the AccessToken supplies no value. It must satisfy the
	// constraints.
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Default *apiextensionsv1.JSON `json:"default,omitempty"`

	// minimum value of an Integer parameter.
	// +optional
	Minimum *int64 `json:"minimum,omitempty"`

	// maximum value of an Integer parameter.
	// +optional
	Maximum *int64 `json:"maximum,omitempty"`

	// enum lists the allowed values of a String parameter, of each item of a
	// StringList parameter, or of each value of a StringMap parameter.
	// +kubebuilder:validation:MaxItems=256
	// +listType=set
	// +optional
	Enum []string `json:"enum,omitempty"`

	// pattern is a regular expression (RE2 syntax) that a String parameter, each
	// item of a StringList parameter, or each value of a StringMap parameter
	// must match in full.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Pattern string `json:"pattern,omitempty"`

	// keys lists the keys a StringMap parameter may have (the permissions an
	// AccessToken may ask for, say). When omitted, any key of at most 128
	// characters is allowed. A StringMap holds at most 64 keys.
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=set
	// +optional
	Keys []string `json:"keys,omitempty"`

	// fromNamespaceLabel binds the parameter to the namespace asking for a
	// token: its value is the value of this label of the AccessToken's
	// Namespace, checked against the constraints like any value. An
	// AccessToken cannot set it, and an AccessToken whose namespace lacks the
	// label gets no token (InvalidParameters, before any call): such a
	// parameter has no default (an issuer with one is not Ready). Only
	// ClusterTokenIssuers may bind parameters, so that a GitHub App shared by
	// teams gives each namespace only the installation its label names; the
	// label is set by whoever may edit Namespaces (cluster administrators, not
	// tenants), and changing it re-issues the namespace's tokens. A
	// ClusterAccessToken, whose one token serves many namespaces, cannot use
	// an issuer that binds a parameter.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=317
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	// +optional
	FromNamespaceLabel string `json:"fromNamespaceLabel,omitempty"`
}

// ResponseSpec says how to read the endpoint's answer. Paths are dot separated
// ("data.secret"); a numeric segment indexes a list ("items.0.id"). In an XML
// answer a path names elements from the root by local name, namespaces
// ignored ("AssumeRoleWithWebIdentityResponse.AssumeRoleWithWebIdentityResult.Credentials.SessionToken");
// in a form-encoded answer it is a field name.
// +kubebuilder:validation:XValidation:rule="!has(self.failures) || !has(self.failures.rules) || self.failures.rules.all(r, !has(r.code)) || (has(self.error) && has(self.error.code))",message="a failure rule matching on code needs error.code, the path the code is read from"
type ResponseSpec struct {
	// format of the answer's body: JSON (the default), XML (elements by local
	// name; no DTD or entity is ever read, and nesting deeper than 32 elements
	// is refused) or Form (application/x-www-form-urlencoded). Error answers
	// that are not in this format are also tried as XML, for AWS's error
	// envelope.
	// +optional
	Format ResponseFormat `json:"format,omitempty"`

	// token is the path of the access token: "access_token", "token", "data.secret".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +required
	Token string `json:"token"`

	// tokenTransform reshapes the value at token before it is used, such as
	// ECR's authorizationToken, base64 of "AWS:<password>":
	// {base64: Standard, after: ":"} gives the password.
	// +optional
	TokenTransform *ValueTransform `json:"tokenTransform,omitempty"`

	// expiry says when the token expires. Omit it when the endpoint does not say;
	// the AccessToken's maxAge then decides when to renew.
	// +optional
	Expiry *ExpirySpec `json:"expiry,omitempty"`

	// success is a check for endpoints that answer 200 but report failure in the
	// body, such as {"success": false}. When the value at path differs from equals,
	// the response is treated as an error.
	// +optional
	Success *SuccessSpec `json:"success,omitempty"`

	// error says where the provider puts its error code and message. They are
	// copied (shortened, with any credential removed) into conditions and events.
	// +optional
	Error *ErrorSpec `json:"error,omitempty"`

	// copy lists fields of the response to write into the Secret beside the
	// token, such as an organization id; those marked secret are masked
	// everywhere but in that Secret.
	// +listType=map
	// +listMapKey=key
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Copy []CopyField `json:"copy,omitempty"`

	// refreshToken says where the refresh token is, when the endpoint returns one.
	// It is kept in a Secret of the operator's own, never in the Secret pods mount.
	// +optional
	RefreshToken *RefreshTokenSpec `json:"refreshToken,omitempty"`

	// tokenID is the path of the issued token's id, used by revoke.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	TokenID string `json:"tokenID,omitempty"`

	// failures says what the provider's failed answers mean: its own rules,
	// then a preset's, before the default judgement by HTTP status.
	// +optional
	Failures *FailureSpec `json:"failures,omitempty"`
}

// ResponseFormat says how an answer's body is written.
// +kubebuilder:validation:Enum=JSON;XML;Form
type ResponseFormat string

const (
	// ResponseJSON is a JSON document (the default).
	ResponseJSON ResponseFormat = "JSON"
	// ResponseXML is an XML document, read without DTDs or entities.
	ResponseXML ResponseFormat = "XML"
	// ResponseForm is an application/x-www-form-urlencoded body.
	ResponseForm ResponseFormat = "Form"
)

// Base64Alphabet names a base64 alphabet (RFC 4648).
// +kubebuilder:validation:Enum=Standard;URL
type Base64Alphabet string

const (
	// Base64Standard is the standard alphabet (+ and /), padding optional.
	Base64Standard Base64Alphabet = "Standard"
	// Base64URL is the URL-safe alphabet (- and _), padding optional.
	Base64URL Base64Alphabet = "URL"
)

// ValueTransform reshapes a string read from an answer: base64 decoding
// first, when set, then keeping the part before or after the first
// occurrence of a separator. A value that does not decode, or lacks the
// separator, makes the answer invalid.
// +kubebuilder:validation:XValidation:rule="!(has(self.before) && has(self.after))",message="set at most one of before or after"
// +kubebuilder:validation:XValidation:rule="has(self.base64) || has(self.before) || has(self.after)",message="set base64, before or after"
type ValueTransform struct {
	// base64 decodes the value with the Standard or URL alphabet; the result
	// must be UTF-8 text.
	// +optional
	Base64 Base64Alphabet `json:"base64,omitempty"`

	// before keeps the part before the first occurrence of this separator
	// (ECR's username: before ":").
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16
	// +optional
	Before string `json:"before,omitempty"`

	// after keeps the part after the first occurrence of this separator
	// (ECR's password: after ":").
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16
	// +optional
	After string `json:"after,omitempty"`
}

// ExpiryFormat says how an expiry value is written.
// +kubebuilder:validation:Enum=UnixSeconds;UnixMilliseconds;RFC3339;RelativeSeconds;JWT;HTTPDate;Date
type ExpiryFormat string

const (
	// ExpiryUnixSeconds is an absolute time in unix seconds (number or numeric string).
	ExpiryUnixSeconds ExpiryFormat = "UnixSeconds"
	// ExpiryUnixMilliseconds is an absolute time in unix milliseconds (number or numeric string).
	ExpiryUnixMilliseconds ExpiryFormat = "UnixMilliseconds"
	// ExpiryRFC3339 is an absolute time in RFC 3339 format.
	ExpiryRFC3339 ExpiryFormat = "RFC3339"
	// ExpiryRelativeSeconds is a lifetime in seconds from the response (number or
	// numeric string), like OAuth2's expires_in.
	ExpiryRelativeSeconds ExpiryFormat = "RelativeSeconds"
	// ExpiryJWT reads the exp claim of a JWT (without verifying its signature).
	ExpiryJWT ExpiryFormat = "JWT"
	// ExpiryHTTPDate is an absolute time written as an HTTP date (RFC 9110:
	// "Mon, 02 Jan 2006 15:04:05 GMT", or its obsolete RFC 850 and asctime forms).
	ExpiryHTTPDate ExpiryFormat = "HTTPDate"
	// ExpiryDate is a date without a time, YYYY-MM-DD (GitLab's expires_at),
	// read as the start of that day, 00:00 UTC: the first instant at which
	// the provider no longer accepts the token.
	ExpiryDate ExpiryFormat = "Date"
)

// ExpirySpec locates an expiry in a response.
// +kubebuilder:validation:XValidation:rule="self.format == 'JWT' || has(self.path)",message="path is required unless format is JWT"
type ExpirySpec struct {
	// path of the value. For format JWT it defaults to the token itself.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Path string `json:"path,omitempty"`

	// format of the value: UnixSeconds (fractions allowed, as in ECR's
	// 1767225600.123), UnixMilliseconds, RFC3339, HTTPDate ("Mon, 02 Jan 2006
	// 15:04:05 GMT") (absolute times, on the provider's clock), RelativeSeconds
	// (seconds from now), JWT (the exp claim of the JWT at path), or Date
	// (YYYY-MM-DD, read as 00:00 UTC of that day, when GitLab stops accepting
	// a token).
	// +required
	Format ExpiryFormat `json:"format"`
}

// SuccessSpec is a check that a response reports success.
type SuccessSpec struct {
	// path of the value to check, such as "success".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +required
	Path string `json:"path"`

	// equals is the value that means success (any JSON value, such as true).
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +required
	Equals apiextensionsv1.JSON `json:"equals"`
}

// ErrorSpec locates the provider's error code and message in an error response.
type ErrorSpec struct {
	// code is the path of the error code: "error", "error_code", "errorInfo.errorCode".
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Code string `json:"code,omitempty"`

	// message is the path of the human readable message: "error_description",
	// "errorInfo.errorMessage", "message".
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Message string `json:"message,omitempty"`
}

// CopyField copies one response field into the Secret.
type CopyField struct {
	// key in the Secret.
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:MaxLength=253
	// +required
	Key string `json:"key"`

	// path of the value in the response. Strings are copied as they are, other
	// values as JSON.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +required
	Path string `json:"path"`

	// secret marks the value a credential (an AWS secret access key): it is
	// written only into the Secret pods mount and masked everywhere else
	// (errors, events, conditions, logs, kubectl tokenmint output).
	// +optional
	Secret bool `json:"secret,omitempty"`

	// transform reshapes the value before it is copied; only string values
	// can be transformed.
	// +optional
	Transform *ValueTransform `json:"transform,omitempty"`
}

// RefreshTokenSpec locates a refresh token and its expiry in a response.
type RefreshTokenSpec struct {
	// path of the refresh token, such as "refresh_token".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +required
	Path string `json:"path"`

	// expiry of the refresh token, such as {path: refresh_token_expires_in, format:
	// RelativeSeconds}. Without it the refresh token is used until it is refused.
	// +optional
	Expiry *ExpirySpec `json:"expiry,omitempty"`

	// onRejected says what follows a refresh the endpoint refuses (a failure
	// rule's RefreshRejected, or a 4xx no rule judges). Restart, the default,
	// drops the refresh token and makes request at once, right for OAuth2,
	// whose first request sends credentials that stay valid. Fail drops it
	// too but makes no call: the Secret keeps the current token, the
	// AccessToken turns Ready False (reason RefreshRejected), and nothing is
	// sent until the AccessToken, the issuer or a credential Secret changes.
	// Choose Fail when request's credential is used up by the first refresh
	// (GitLab token rotation revokes the token it rotates, and a rotated
	// token sent again revokes every token rotated from it).
	// +kubebuilder:validation:Enum=Restart;Fail
	// +optional
	OnRejected RefreshRejectedPolicy `json:"onRejected,omitempty"`
}

// RefreshRejectedPolicy says what follows a refused refresh.
type RefreshRejectedPolicy string

const (
	// RefreshRejectedRestart makes the first request again at once.
	RefreshRejectedRestart RefreshRejectedPolicy = "Restart"
	// RefreshRejectedFail makes no call until the inputs change.
	RefreshRejectedFail RefreshRejectedPolicy = "Fail"
)

// IssuerStatus is the observed state of an issuer.
type IssuerStatus struct {
	// observedGeneration is the generation the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready is True when the configuration is valid, every
	// credential Secret it names exists, and the last call to its endpoint was
	// not refused for the issuer's sake (Unauthorized, InvalidResponse,
	// EndpointUnavailable); a rate limit leaves it as it was.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ti;tokenissuer,categories=tokenmint
// +kubebuilder:validation:XValidation:rule="!has(self.spec.parameters) || self.spec.parameters.all(p, !has(p.fromNamespaceLabel))",message="fromNamespaceLabel is for ClusterTokenIssuers: a TokenIssuer serves only its own namespace, whose team writes it"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.request.url`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// TokenIssuer describes a token endpoint that AccessTokens of its own namespace may
// use. Its credential Secrets are read from its own namespace, and by default it may
// not call loopback, link-local or private addresses.
type TokenIssuer struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the token endpoint.
	// +required
	Spec IssuerSpec `json:"spec"`

	// status is the observed state of the issuer.
	// +optional
	Status IssuerStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// TokenIssuerList contains a list of TokenIssuer.
type TokenIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TokenIssuer `json:"items"`
}

// ClusterTokenIssuerSpec is an IssuerSpec plus the namespaces allowed to use it.
type ClusterTokenIssuerSpec struct {
	IssuerSpec `json:",inline"`

	// allowedNamespaces restricts which namespaces' AccessTokens may use this
	// issuer. When omitted, every namespace may.
	// +optional
	AllowedNamespaces *AllowedNamespaces `json:"allowedNamespaces,omitempty"`
}

// AllowedNamespaces selects namespaces by name or by label. A namespace is allowed
// when it matches either.
// +kubebuilder:validation:XValidation:rule="has(self.names) || has(self.selector)",message="set names, selector, or both"
type AllowedNamespaces struct {
	// names of allowed namespaces.
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +optional
	Names []string `json:"names,omitempty"`

	// selector matches allowed namespaces by their labels.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cti;clustertokenissuer,categories=tokenmint
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.request.url`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ClusterTokenIssuer describes a token endpoint that AccessTokens of any allowed
// namespace may use. It is written by cluster administrators; its credential
// Secrets are read only from the operator's credentials namespace.
type ClusterTokenIssuer struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the token endpoint and who may use it.
	// +required
	Spec ClusterTokenIssuerSpec `json:"spec"`

	// status is the observed state of the issuer.
	// +optional
	Status IssuerStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterTokenIssuerList contains a list of ClusterTokenIssuer.
type ClusterTokenIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterTokenIssuer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TokenIssuer{}, &TokenIssuerList{}, &ClusterTokenIssuer{}, &ClusterTokenIssuerList{})
}

// JWTAlgorithm is a JWS signing algorithm (RFC 7518, RFC 8037).
// +kubebuilder:validation:Enum=RS256;RS384;RS512;PS256;PS384;PS512;ES256;ES384;ES512;EdDSA
type JWTAlgorithm string

// SignedJWT describes a JWT that tokenmint signs for every call.
// +kubebuilder:validation:XValidation:rule="!has(self.lifetime) || (duration(self.lifetime) >= duration('10s') && duration(self.lifetime) <= duration('1h'))",message="lifetime must be between 10s and 1h"
// +kubebuilder:validation:XValidation:rule="!has(self.backdate) || duration(self.backdate) <= duration('5m')",message="backdate must be at most 5m"
// +kubebuilder:validation:XValidation:rule="!has(self.lifetime) || !has(self.maxLifetime) || duration(self.lifetime) <= duration(self.maxLifetime)",message="lifetime must not exceed maxLifetime"
type SignedJWT struct {
	// privateKey is the signing key: a PEM block in a Secret (PKCS#1 "RSA
	// PRIVATE KEY", SEC 1 "EC PRIVATE KEY" or unencrypted PKCS#8 "PRIVATE KEY"),
	// or, with jsonField, the PEM inside a JSON document such as a Google
	// service account key file (jsonField: private_key). Encrypted keys are refused.
	// +required
	PrivateKey JWTSecretValue `json:"privateKey"`

	// algorithm signs the JWT; it must suit the key: RS* and PS* an RSA key,
	// ES256 a P-256 key, ES384 P-384, ES512 P-521, EdDSA an Ed25519 key.
	// +required
	Algorithm JWTAlgorithm `json:"algorithm"`

	// keyID is sent as the kid header (App Store Connect, Okta with several keys).
	// +optional
	KeyID *JWTValue `json:"keyID,omitempty"`

	// certificate is a PEM certificate of the key, whose SHA-256 thumbprint is
	// sent as the x5t#S256 header (Microsoft Entra ID client assertions).
	// +optional
	Certificate *JWTSecretValue `json:"certificate,omitempty"`

	// issuer is the iss claim: the client id, a GitHub App's client or app id, a
	// service account's email.
	// +optional
	Issuer *JWTValue `json:"issuer,omitempty"`

	// subject is the sub claim (for private_key_jwt, the client id again).
	// +optional
	Subject *JWTValue `json:"subject,omitempty"`

	// audience is the aud claim: one value is sent as a string, several as a list.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=2048
	// +listType=atomic
	// +optional
	Audience []string `json:"audience,omitempty"`

	// lifetime is exp minus the moment of signing: 10s to 1h, default 5m.
	// +optional
	Lifetime *Duration `json:"lifetime,omitempty"`

	// maxLifetime is the longest lifetime the provider accepts (GitHub: 10m),
	// checked at admission against lifetime.
	// +optional
	MaxLifetime *Duration `json:"maxLifetime,omitempty"`

	// backdate sets iat (and nbf) this far in the past, for clock skew between
	// the cluster and the provider (GitHub recommends 60s). At most 5m; the
	// backdate counts toward the lifetime, so exp stays within maxLifetime.
	// +optional
	Backdate *Duration `json:"backdate,omitempty"`

	// notBefore adds an nbf claim equal to iat (Microsoft Entra ID).
	// +optional
	NotBefore bool `json:"notBefore,omitempty"`

	// omitJTI leaves out the jti claim, a fresh UUID on every call by default.
	// +optional
	OmitJTI bool `json:"omitJTI,omitempty"`

	// claims are further claims (scope for a Google service account, say).
	// iss, sub, aud, exp, nbf, iat and jti are set by the fields above.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Claims []JWTClaim `json:"claims,omitempty"`
}

// JWTSecretValue is a value of a Secret, or a field of a JSON document held in
// one.
type JWTSecretValue struct {
	// secretKeyRef names the Secret key, read from the issuer's Secrets
	// namespace like every credential.
	// +required
	SecretKeyRef SecretKeySelector `json:"secretKeyRef"`

	// jsonField, when set, reads this top-level string field of the JSON
	// document the Secret key holds (private_key of a Google key file).
	// +kubebuilder:validation:MaxLength=256
	// +optional
	JSONField string `json:"jsonField,omitempty"`
}

// JWTValue is a text value of a JWT: exactly one of value, secretKeyRef,
// parameter or keyFingerprint, after an optional literal prefix.
// +kubebuilder:validation:XValidation:rule="[has(self.value), has(self.secretKeyRef), has(self.parameter), has(self.keyFingerprint)].filter(x, x).size() == 1",message="exactly one of value, secretKeyRef, parameter or keyFingerprint must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.jsonField) || has(self.secretKeyRef)",message="jsonField reads a field of a Secret's JSON document: use it with secretKeyRef"
type JWTValue struct {
	// value is a literal string.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Value *string `json:"value,omitempty"`

	// secretKeyRef reads the value from a key of a Secret.
	// +optional
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`

	// jsonField, with secretKeyRef, reads this top-level field of the JSON
	// document the Secret key holds (client_email of a Google key file).
	// +kubebuilder:validation:MaxLength=256
	// +optional
	JSONField string `json:"jsonField,omitempty"`

	// parameter takes the value from the AccessToken's parameters.
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_]*$`
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Parameter string `json:"parameter,omitempty"`

	// keyFingerprint is the fingerprint of the signing key's public key:
	// SHA256 gives "SHA256:" and the base64 of the SHA-256 of its DER (PKIX)
	// form, as Snowflake's key-pair authentication writes it in iss.
	// +kubebuilder:validation:Enum=SHA256
	// +optional
	KeyFingerprint string `json:"keyFingerprint,omitempty"`

	// prefix is literal text written before the value ("MYORG-MYACCOUNT.MYUSER."
	// before a Snowflake key fingerprint).
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Prefix string `json:"prefix,omitempty"`
}

// JWTClaim is one further claim of a signed JWT.
// +kubebuilder:validation:XValidation:rule="!(self.name in ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti'])",message="iss, sub, aud, exp, nbf, iat and jti are set by issuer, subject, audience and the timing fields"
type JWTClaim struct {
	// name of the claim.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +required
	Name string `json:"name"`

	JWTValue `json:",inline"`
}

// ServiceAccountTokenSource asks for a ServiceAccount token.
type ServiceAccountTokenSource struct {
	// serviceAccountName is the ServiceAccount, in the AccessToken's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +required
	ServiceAccountName string `json:"serviceAccountName"`

	// audience the token is for: the token endpoint's expected audience
	// (api://AzureADTokenExchange for Entra ID, the STS's URL, a Vault role's
	// audience). Never one the Kubernetes API accepts.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +required
	Audience string `json:"audience"`

	// expirationSeconds is the token's lifetime: 600 to 3600.
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=600
	// +kubebuilder:validation:Maximum=3600
	// +optional
	ExpirationSeconds int64 `json:"expirationSeconds,omitempty"`
}

// ClientCertificate names a Secret holding a client certificate and its key.
type ClientCertificate struct {
	// secretName is a Secret with keys tls.crt (the PEM certificate, with its
	// chain) and tls.key (the PEM private key), as kubernetes.io/tls Secrets and
	// cert-manager have them.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	SecretName string `json:"secretName"`
}
