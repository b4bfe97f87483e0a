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

// Package issuer is the HTTP token engine: from an issuer's configuration (the
// v1alpha1 types), an AccessToken's parameters and resolved credentials it
// builds the request, calls the token endpoint, and returns a token or a
// classified error. It reads no Kubernetes object; the caller passes values in.
package issuer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// MaxResponseBytes caps a response body, 256 KiB; a larger one is an invalid
// response. It leaves room for a token and a refresh token of MaxTokenBytes
// each, with the fields response.copy reads beside them.
const MaxResponseBytes = 256 << 10

// MaxTokenBytes caps an access token and, separately, a refresh token: 16 KiB.
// A response carrying a larger one is an invalid response. A token is sent back
// in an Authorization header, and common servers refuse request headers beyond
// 8 to 16 KiB; a larger token is a broken (or hostile) endpoint, not a
// credential worth holding several times in the operator's memory.
const MaxTokenBytes = 16 << 10

// maxTokenIDBytes caps a token id, read through response.tokenID and expanded
// into revoke.url.
const maxTokenIDBytes = 512

// Engine calls token endpoints. The zero value is ready to use, with the real
// clock and random UUIDs.
type Engine struct {
	// Clock stamps generated times, issue times and relative expiries.
	Clock clock.PassiveClock
	// NewUUID makes the value of generate: UUID; nil uses uuid.NewString.
	NewUUID func() string

	// steps keeps step results for reuse (see primary), made on first use.
	stepsOnce sync.Once
	steps     *lru.Cache
}

// Call is everything one call needs besides the context.
type Call struct {
	// Spec is the issuer's configuration.
	Spec *v1alpha1.IssuerSpec
	// Parameters are the AccessToken's parameters, checked by ResolveParameters.
	Parameters map[string]apiextensionsv1.JSON
	// NamespaceLabels are the labels of the AccessToken's namespace that the
	// issuer's parameters are bound to (see NamespaceLabelKeys).
	NamespaceLabels map[string]string
	// Secrets holds the value of every key SecretRefs(Spec) names. Every value is
	// treated as a credential and removed from any error text.
	Secrets map[v1alpha1.SecretKeySelector]string
	// Held is the current token, for an issuer whose refresh extends it
	// (refreshExtends): when set, the refresh request is tried first; a
	// refusal falls back to Spec.Request once.
	Held *HeldToken
	// RefreshToken, when set and Spec.Refresh is configured, is tried first with
	// the refresh request; a refusal (a failure rule's RefreshRejected or, when
	// no rule matches, a 4xx) falls back to Spec.Request once, unless
	// response.refreshToken.onRejected is Fail.
	RefreshToken string
	// HTTPClient sends the request; build it with NewHTTPClient.
	HTTPClient *http.Client
	// ServiceAccountTokens are the tokens of the spec's serviceAccountToken
	// values (see ServiceAccountTokenSources), requested for this call.
	ServiceAccountTokens map[v1alpha1.ServiceAccountTokenSource]string
	// ProviderClock, when set, is the issuer's clock: the call measures it from
	// the answer's Date header and, when it corrects, reads and writes the
	// provider's times with it. Keep one per issuer across calls.
	ProviderClock *ProviderClock

	// StepScope identifies the issuer (kind, namespace, name and UID) and the
	// namespace whose ServiceAccount tokens the call sends. Step results are
	// reused only between calls of the same scope and the same inputs; with
	// no scope, every step is called every time.
	StepScope string

	// Trace, when set, is told of every call made (and every step result
	// reused) in order: what was called, its answer's status and how long it
	// took. It never sees a value.
	Trace func(Exchange)

	// stepResults are the results of the steps run so far in this call.
	stepResults map[string]*stepResult
}

// Exchange describes one call of an Issue or Revoke, for Call.Trace.
type Exchange struct {
	// Call is "request", "refresh", "revoke" or "steps[<name>].request".
	Call string
	// Method and URL of the call; the URL holds parameters, never a credential.
	Method, URL string
	// Status is the answer's HTTP status; 0 when there was none (Error says
	// why) or when the step's earlier result was reused.
	Status int
	// Elapsed is from sending the request to reading the whole answer.
	Elapsed time.Duration
	// Reused is true for a step whose earlier result served without a call.
	Reused bool
	// Error is the transport failure, redacted; empty when an answer came.
	Error string
}

func (c *Call) trace(x Exchange) {
	if c.Trace != nil {
		c.Trace(x)
	}
}

// Token is a freshly issued token. It is the only thing the engine returns that
// holds credentials.
type Token struct {
	// Value is the access token.
	Value string
	// IssuedAt is when the request that obtained it was sent.
	IssuedAt time.Time
	// ExpiresAt is when it expires; nil when the response does not say.
	ExpiresAt *time.Time
	// Fields are the response fields listed in response.copy that were present.
	Fields map[string]string
	// RefreshToken is the refresh token of the response; empty when the response
	// carries none, in which case a refresh token held from before stays usable.
	RefreshToken string
	// RefreshTokenExpiresAt is when RefreshToken expires, if the response says.
	RefreshTokenExpiresAt *time.Time
	// ID is the token's id, read through response.tokenID, for revocation.
	ID string
	// Refreshed is true when the token came from the refresh request.
	Refreshed bool
	// NotAfter is the earliest expiry of the steps' results the token was
	// obtained with, when they state one: an extension never goes past it.
	NotAfter *time.Time
	// Extended is true when the token is the held one, extended by the
	// refresh request (refreshExtends); Final then says that the extension
	// granted less time than the token had before, so the next renewal
	// replaces it rather than extending it again.
	Extended, Final bool
	// RefreshRejected is true when the provider refused the refresh token the
	// call carried and the token came from the primary request: the caller
	// drops the refused refresh token unless RefreshToken replaces it.
	RefreshRejected bool
}

// Issue obtains a token: through the refresh request when c carries a refresh
// token and the issuer has one, otherwise (or when the refresh is refused)
// through the primary request. Errors are *Error.
func (e *Engine) Issue(ctx context.Context, c Call) (*Token, error) {
	c.Spec = Effective(c.Spec)
	parameters, red, err := e.prepare(c)
	if err != nil {
		return nil, err
	}
	if SelfSigned(c.Spec) {
		return e.sign(c, parameters, red)
	}
	if awsPresigned(c.Spec) != nil {
		return e.presign(ctx, c, parameters, red)
	}
	if c.Held != nil && c.Spec.Refresh != nil && c.Spec.RefreshExtends {
		return e.extendOrReplace(ctx, c, parameters, red)
	}
	if c.RefreshToken != "" && c.Spec.Refresh != nil && !c.Spec.RefreshExtends {
		issued := map[v1alpha1.IssuedValue]string{v1alpha1.IssuedRefreshToken: c.RefreshToken}
		rc := c
		if usesSteps(c.Spec, callRefresh) {
			if _, err := e.runSteps(ctx, &rc, parameters, red); err != nil {
				return nil, permanentUnlessRefresh(err)
			}
		}
		token, err := e.obtain(ctx, rc, callRefresh, c.Spec.Refresh, parameters, issued, red)
		if err == nil {
			token.Refreshed = true
			return withDefaultLifetime(c.Spec, token), nil
		}
		if !refreshRejected(err) {
			// A 5xx or 429 says nothing about the refresh token; minting through
			// the primary request now would only add load to a struggling endpoint.
			return nil, permanentUnlessRefresh(err)
		}
		if failOnRejected(c.Spec) {
			// The issuer's first request would re-send a credential the
			// refreshes have used up: nothing more is sent (see refusedRefresh).
			return nil, refusedRefresh(err)
		}
		// The refresh token is dead: the primary request is made once, and
		// the caller drops the refresh token whatever its outcome.
		token, err = e.primary(ctx, c, parameters, red)
		if err != nil {
			var ie *Error
			if errors.As(err, &ie) {
				ie.RefreshRejected = true
			}
			return nil, permanentUnlessRefresh(err)
		}
		token.RefreshRejected = true
		return withDefaultLifetime(c.Spec, token), nil
	}
	token, err := e.primary(ctx, c, parameters, red)
	if err != nil {
		return nil, permanentUnlessRefresh(err)
	}
	return withDefaultLifetime(c.Spec, token), nil
}

// Revoke invalidates token (whose id is tokenID, possibly empty) through the
// issuer's revoke request. Any 2xx answer is success. Errors are *Error.
func (e *Engine) Revoke(ctx context.Context, c Call, token, tokenID string) (err error) {
	if c.Spec != nil && c.Spec.Revoke == nil {
		return &Error{Class: ClassInvalidConfig, Message: "the issuer has no revoke request"}
	}
	c.Spec = Effective(c.Spec)
	parameters, red, err := e.prepare(c)
	if err != nil {
		return err
	}
	red.add(token)
	if usesSteps(c.Spec, callRevoke) {
		// The revoke call sends a step's result (a login token): reused
		// while valid, obtained again otherwise.
		keys, stepErr := e.runSteps(ctx, &c, parameters, red)
		if stepErr != nil {
			return stepErr
		}
		defer func() { e.forgetRefused(keys, err) }()
	}
	issued := map[v1alpha1.IssuedValue]string{}
	if token != "" {
		issued[v1alpha1.IssuedAccessToken] = token
	}
	if tokenID != "" {
		issued[v1alpha1.IssuedTokenID] = tokenID
	}
	a, sentAt, err := e.exchange(ctx, c, callRevoke, c.Spec.Revoke, parameters, issued, red)
	if err != nil {
		return err
	}
	if a.status < 200 || a.status > 299 {
		return permanentUnlessRefresh(endpointError(&c.Spec.Response, a, sentAt, red))
	}
	return nil
}

// prepare checks the configuration, the HTTP client and the parameters, and
// starts the redactor with every credential the call was given.
func (e *Engine) prepare(c Call) (map[string]any, *redactor, error) {
	if c.HTTPClient == nil && !MakesNoCall(c.Spec) {
		if err := Validate(c.Spec); err != nil {
			return nil, nil, &Error{Class: ClassInvalidConfig, Message: err.Error(), cause: err}
		}
		return nil, nil, &Error{Class: ClassInvalidConfig, Message: "no HTTP client given; build one with NewHTTPClient"}
	}
	return e.prepareValues(c)
}

// prepareValues is prepare without the HTTP client, for a request that is
// only rendered.
func (e *Engine) prepareValues(c Call) (map[string]any, *redactor, error) {
	if err := Validate(c.Spec); err != nil {
		return nil, nil, &Error{Class: ClassInvalidConfig, Message: err.Error(), cause: err}
	}
	parameters, err := ResolveParameters(c.Spec, c.Parameters, c.NamespaceLabels)
	if err != nil {
		return nil, nil, &Error{Class: ClassInvalidParameters, Message: err.Error(), cause: err}
	}
	red := &redactor{}
	for _, secret := range c.Secrets {
		red.add(secret)
	}
	red.add(c.RefreshToken)
	for _, token := range c.ServiceAccountTokens {
		red.add(token)
	}
	return parameters, red, nil
}

// obtain sends one request and reads a token from its answer.
func (e *Engine) obtain(ctx context.Context, c Call, kind callKind, spec *v1alpha1.RequestSpec,
	parameters map[string]any, issued map[v1alpha1.IssuedValue]string, red *redactor) (*Token, error) {
	return e.obtainFrom(ctx, c, kind, spec, &c.Spec.Response, parameters, issued, red)
}

// obtainFrom is obtain reading the answer with response (a step's own).
func (e *Engine) obtainFrom(ctx context.Context, c Call, kind callKind, spec *v1alpha1.RequestSpec, response *v1alpha1.ResponseSpec,
	parameters map[string]any, issued map[v1alpha1.IssuedValue]string, red *redactor) (*Token, error) {
	a, sentAt, err := e.exchange(ctx, c, kind, spec, parameters, issued, red)
	if err != nil {
		return nil, err
	}
	token, err := readToken(response, a, sentAt, red)
	if err != nil && a.resendOnProviderTime(err) {
		// The refusal taught the engine the provider's clock, and the request
		// carried times on the old one: send it once more on the provider's.
		if a, sentAt, err = e.exchange(ctx, c, kind, spec, parameters, issued, red); err != nil {
			return nil, err
		}
		return readToken(response, a, sentAt, red)
	}
	return token, err
}

// exchange builds and sends one request and reads its answer through the size
// cap. It returns when the request was sent.
func (e *Engine) exchange(ctx context.Context, c Call, kind callKind, spec *v1alpha1.RequestSpec,
	parameters map[string]any, issued map[v1alpha1.IssuedValue]string, red *redactor) (answer, time.Time, error) {
	now := e.clock().Now()
	target, err := expandURL(spec.URL, issued[v1alpha1.IssuedTokenID], parameters, c.stepResults)
	if err != nil {
		return answer{}, now, err
	}
	sentOffset := c.ProviderClock.correction()
	values := &valueResolver{parameters: parameters, secrets: c.Secrets, issued: issued, now: now.Add(sentOffset), newUUID: e.newUUID(), signed: red.add,
		serviceAccountTokens: c.ServiceAccountTokens, spec: c.Spec, steps: c.stepResults}
	ctx, cancel := context.WithTimeout(ctx, timeout(c.Spec))
	defer cancel()
	req, err := buildRequest(ctx, spec, target, values, red)
	if err != nil {
		message := red.redact(fmt.Sprintf("building the %s request: %v", kind, err))
		return answer{}, now, &Error{Class: ClassInvalidConfig, Message: message}
	}
	a, err := send(c.HTTPClient, req)
	x := Exchange{Call: string(kind), Method: req.Method, URL: red.redact(target), Status: a.status, Elapsed: e.clock().Since(now)}
	if err != nil {
		te := transportError(kind, err, red)
		x.Error = te.Error()
		c.trace(x)
		return answer{}, now, te
	}
	c.trace(x)
	c.ProviderClock.Observe(a.header, now, e.clock().Now())
	a.offset, a.sentOffset, a.timed = c.ProviderClock.correction(), sentOffset, values.timed
	if len(a.body) > MaxResponseBytes {
		return answer{}, now, &Error{Class: ClassInvalidResponse, StatusCode: a.status,
			Message: fmt.Sprintf("response body is larger than %d bytes", MaxResponseBytes)}
	}
	return a, now, nil
}

// send performs the request and reads at most MaxResponseBytes+1 bytes of the
// body, so that an oversized answer is detected without being held.
func send(client *http.Client, req *http.Request) (answer, error) {
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return answer{}, fmt.Errorf("reading the response: %w", err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// transportError classifies a failure to get an answer at all.
func transportError(kind callKind, err error, red *redactor) *Error {
	text := red.redact(err.Error())
	e := &Error{Class: ClassRetryable, cause: &redactedError{text: text, original: err}}
	switch {
	case errors.Is(err, ErrPrivateDestination):
		e.Class = ClassInvalidConfig
		e.Message = fmt.Sprintf("%s refused: %s", kind, text)
	case errors.Is(err, errRedirectRefused):
		e.Class = ClassInvalidResponse
		e.Message = fmt.Sprintf("%s: %s", kind, text)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		e.Message = fmt.Sprintf("%s timed out: %s", kind, text)
	default:
		e.Message = fmt.Sprintf("%s failed: %s", kind, text)
	}
	return e
}

func isTimeout(err error) bool {
	var timeout interface{ Timeout() bool }
	return errors.As(err, &timeout) && timeout.Timeout()
}

// expandURL replaces {tokenID} with the token id, {steps.<step>.<key>} with
// a field the step copied, and every other {name} with the value of that
// parameter, each percent-encoded so that it is one
// opaque path segment or query value: every byte but the RFC 3986 unreserved
// characters is escaped, and values that would change the path ("." and "..")
// are refused. Errors never quote the id, which may be credential-like.
func expandURL(raw, tokenID string, parameters map[string]any, steps map[string]*stepResult) (string, error) {
	if !strings.Contains(raw, "{") {
		return raw, nil
	}
	var failure error
	expanded := placeholderPattern.ReplaceAllStringFunc(raw, func(placeholder string) string {
		name := placeholder[1 : len(placeholder)-1]
		value, err := placeholderValue(name, tokenID, parameters, steps)
		if err != nil {
			failure = cmp.Or(failure, err)
			return ""
		}
		return escapeUnreserved(value)
	})
	if failure != nil {
		return "", failure
	}
	return expanded, nil
}

// placeholderValue is the value of one URL placeholder, checked.
func placeholderValue(name, tokenID string, parameters map[string]any, steps map[string]*stepResult) (string, error) {
	if step, key, ok := stepPlaceholder(name); ok {
		var value string
		if r := steps[step]; r != nil {
			value, ok = r.fields[key]
		}
		if !ok {
			return "", &Error{Class: ClassInvalidConfig, Message: fmt.Sprintf("the URL needs field %q of step %q, which gave none", key, step)}
		}
		if err := checkURLValue(value); err != nil {
			return "", invalidResponse("field %q of step %q cannot stand in the URL: %v", key, step, err)
		}
		return value, nil
	}
	if name == "tokenID" {
		if tokenID == "" {
			return "", &Error{Class: ClassInvalidConfig, Message: "revoke.url needs the token id, but none is known"}
		}
		if tokenID == "." || tokenID == ".." {
			return "", invalidResponse("the token id is a dot segment, which cannot stand in revoke.url")
		}
		if err := checkTokenID(tokenID); err != nil {
			return "", invalidResponse("the token id %v", err)
		}
		return tokenID, nil
	}
	value, ok := parameters[name]
	if !ok {
		return "", &Error{Class: ClassInvalidParameters, Message: fmt.Sprintf("the URL needs parameter %q, which has no value", name)}
	}
	text, err := scalarText(value)
	if err == nil {
		err = checkURLValue(text)
	}
	if err != nil {
		return "", &Error{Class: ClassInvalidParameters, Message: fmt.Sprintf("parameter %q cannot stand in the URL: %v", name, err)}
	}
	return text, nil
}

// checkURLValue refuses a value that cannot stand in a URL as one segment or
// query value. The error never quotes the value.
func checkURLValue(text string) error {
	switch {
	case text == "" || text == "." || text == "..":
		return errors.New("the value is empty or a dot segment")
	case len(text) > maxTokenIDBytes:
		return fmt.Errorf("the value is longer than %d bytes", maxTokenIDBytes)
	case strings.ContainsFunc(text, unicode.IsControl):
		return errors.New("the value contains a control character")
	}
	return nil
}

// checkTokenID refuses an id too long or with control characters. The error
// completes "the token id ..." and never quotes the id.
func checkTokenID(id string) error {
	if len(id) > maxTokenIDBytes {
		return fmt.Errorf("is %d bytes, more than the %d tokenmint accepts", len(id), maxTokenIDBytes)
	}
	if strings.ContainsFunc(id, unicode.IsControl) {
		return errors.New("contains a control character")
	}
	return nil
}

// escapeUnreserved percent-encodes every byte of s that is not an RFC 3986
// unreserved character (A-Z a-z 0-9 - . _ ~).
func escapeUnreserved(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(3 * len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0x0f])
		}
	}
	return b.String()
}

func timeout(spec *v1alpha1.IssuerSpec) time.Duration {
	if spec.Timeout != nil && spec.Timeout.Duration > 0 {
		return spec.Timeout.Duration
	}
	return DefaultTimeout
}

func (e *Engine) clock() clock.PassiveClock {
	if e.Clock == nil {
		return clock.RealClock{}
	}
	return e.Clock
}

func (e *Engine) newUUID() func() string {
	if e.NewUUID == nil {
		return uuid.NewString
	}
	return e.NewUUID
}
