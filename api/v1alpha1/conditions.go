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

// Condition types.
const (
	// ConditionReady is the summary condition of every kind. For an AccessToken it
	// is True while the Secret holds a token that has not expired; for an issuer,
	// while its configuration is valid, its credential Secrets exist and the last
	// call to its endpoint was not refused for the issuer's sake.
	ConditionReady = "Ready"
	// ConditionRenewing tells whether renewal of an AccessToken is healthy: True
	// while the last attempt succeeded, False while attempts are failing.
	ConditionRenewing = "Renewing"
	// ConditionRotationVisible tells whether every workload using the Secret will
	// see a renewed token: False while some read it through environment variables
	// or subPath mounts (resolved once, at container start) and are not restart
	// targets.
	ConditionRotationVisible = "RotationVisible"
	// ConditionClockSkew tells, for an issuer, whether its endpoint's clock (the
	// Date header of its answers) is more than a minute off the manager's:
	// True (ClockAhead, ClockBehind) while it is, False (ClockInSync) once it
	// is not; absent until the endpoint answered with a Date header.
	ConditionClockSkew = "ClockSkew"
	// ConditionExpiryUnknown is True on an AccessToken whose token has no known
	// expiry: the endpoint reported none and neither the issuer's
	// spec.defaultLifetime nor the AccessToken's spec.maxAge is set, so it is
	// never renewed. Absent otherwise.
	ConditionExpiryUnknown = "ExpiryUnknown"
)

// Condition reasons, shared by conditions and events.
const (
	ReasonIssued            = "Issued"
	ReasonRenewed           = "Renewed"
	ReasonTokenValid        = "TokenValid"
	ReasonPending           = "Pending"
	ReasonExpired           = "Expired"
	ReasonRetrying          = "Retrying"
	ReasonRateLimited       = "RateLimited"
	ReasonUnauthorized      = "Unauthorized"
	ReasonBadRequest        = "BadRequest"
	ReasonInvalidResponse   = "InvalidResponse"
	ReasonEndpointError     = "EndpointError"
	ReasonInvalidParameters = "InvalidParameters"
	ReasonIssuerNotFound    = "IssuerNotFound"
	ReasonIssuerNotAllowed  = "IssuerNotAllowed"
	ReasonSecretNotOwned    = "SecretNotOwned"
	ReasonSecretMissing     = "CredentialSecretMissing"
	ReasonInvalidConfig     = "InvalidConfiguration"
	ReasonValid             = "Valid"
	ReasonRevoked           = "Revoked"
	ReasonRevokeFailed      = "RevokeFailed"
	ReasonRestarted         = "WorkloadsRestarted"
	ReasonRestartFailed     = "WorkloadRestartFailed"
	ReasonConsumersFollow   = "ConsumersFollowRotation"
	ReasonConsumersStale    = "ConsumersNeedRestart"
	// ReasonInvalidSpec: a field of the AccessToken itself cannot be used.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonThrottled: a renewal waits for the minimum interval between mints
	// of one AccessToken, or for its namespace's budget of forced renewals.
	ReasonThrottled = "RenewalThrottled"
	// ReasonShortLivedToken: the provider's tokens live less than the
	// manager's renewal floor, so they are renewed at the floor and expire
	// before each renewal.
	ReasonShortLivedToken = "ShortLivedToken"
	// ReasonRestartNotAllowed: a restart target did not agree to be restarted.
	ReasonRestartNotAllowed = "WorkloadRestartNotAllowed"
	// ReasonEndpointUnavailable: the last call to an issuer's endpoint got no
	// answer, or a 5xx one.
	ReasonEndpointUnavailable = "EndpointUnavailable"
	// ReasonEndpointRecovered: an issuer's endpoint accepts it again.
	ReasonEndpointRecovered = "EndpointRecovered"
	// ReasonSuspended: spec.suspend is true; nothing is minted, renewed or
	// revoked for the AccessToken and its Secret is left as it is.
	ReasonSuspended = "Suspended"
	// ReasonReadOnly: the manager runs with --read-only (a passive cluster) and
	// makes no calls and no writes beyond status.
	ReasonReadOnly = "ReadOnly"
	// ReasonResumed: work on the AccessToken resumed after Suspended or ReadOnly.
	ReasonResumed = "Resumed"
	// ReasonPermanentFailure: a failure rule of the issuer calls the
	// provider's answer permanent; no call is made until the AccessToken, its
	// issuer or a credential changes, save an hourly re-check.
	ReasonPermanentFailure = "PermanentFailure"
	// ReasonRefreshRejected: the endpoint refused the refresh and the
	// issuer's response.refreshToken.onRejected is Fail; the Secret keeps the
	// current token and no call is made until the AccessToken, its issuer or
	// a credential changes.
	ReasonRefreshRejected = "RefreshRejected"
	// ReasonClockAhead, ReasonClockBehind and ReasonClockInSync: an issuer's
	// endpoint's clock is more than a minute ahead of, behind, or within a
	// minute of the manager's (condition ClockSkew).
	ReasonClockAhead  = "ClockAhead"
	ReasonClockBehind = "ClockBehind"
	ReasonClockInSync = "ClockInSync"
	// ReasonNoExpiry: the token has no known expiry (condition ExpiryUnknown).
	ReasonNoExpiry = "NoExpiry"
)

// Well-known labels and annotations.
const (
	// LabelManagedBy marks objects written by tokenmint; the manager caches only
	// Secrets that carry it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy on tokenmint's objects.
	ManagedByValue = "tokenmint"
	// LabelAccessToken names the AccessToken a Secret belongs to.
	LabelAccessToken = "tokens.tokenmint.dev/access-token"
	// AnnotationRenew, set to any new value (a timestamp, say), asks for an
	// immediate renewal once per distinct value.
	AnnotationRenew = "tokens.tokenmint.dev/renew"
	// AnnotationRestartedAt is set on a workload's pod template to restart it, as
	// kubectl rollout restart does with its own annotation.
	AnnotationRestartedAt = "tokens.tokenmint.dev/restartedAt"
	// AnnotationRestartOn, on a Deployment, StatefulSet or DaemonSet, lists
	// (comma separated) the AccessTokens of its namespace allowed to restart it
	// through spec.restartTargets.
	AnnotationRestartOn = "tokens.tokenmint.dev/restart-on"
	// AnnotationIssuers, on a ServiceAccount, lists (comma separated, as
	// TokenIssuer/<name> or ClusterTokenIssuer/<name>) the issuers allowed to
	// request its tokens for serviceAccountToken values.
	AnnotationIssuers = "tokens.tokenmint.dev/issuers"
)
