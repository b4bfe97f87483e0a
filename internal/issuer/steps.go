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

package issuer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/utils/lru"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// MaxStepResults bounds how many step results one engine keeps in memory for
// reuse; the least recently used goes first.
const MaxStepResults = 1000

// maxStepResultBytes bounds one kept step result (its token and copied
// fields); a larger one is used for its call and not kept. With
// MaxStepResults it bounds the cache, which every tenant's issuers share, at
// 16 MiB: access tokens are a few KiB.
const maxStepResultBytes = 16 << 10

// stepReuseMargin is how long before its expiry a step result stops being
// reused: the later calls that send it need it to stay valid until they land.
const stepReuseMargin = time.Minute

// stepResult is what a step's call gave: a token, when it expires and the
// fields its response copies. It is held only in memory.
type stepResult struct {
	token     string
	issuedAt  time.Time
	expiresAt *time.Time
	fields    map[string]string
}

// reusableUntil is when a result stops being reused: at 80% of its lifetime,
// and no later than stepReuseMargin before it expires. A result whose expiry
// is unknown is never reused.
func (r *stepResult) reusableUntil() time.Time {
	if r.expiresAt == nil {
		return time.Time{}
	}
	lifetime := r.expiresAt.Sub(r.issuedAt)
	return minTime(r.issuedAt.Add(lifetime*4/5), r.expiresAt.Add(-stepReuseMargin))
}

func (r *stepResult) size() int {
	n := len(r.token)
	for k, v := range r.fields {
		n += len(k) + len(v)
	}
	return n
}

// value is the step's token or one of its copied fields.
func (r *stepResult) value(name string) (string, bool) {
	if name == "" || name == v1alpha1.StepValueToken {
		return r.token, true
	}
	v, ok := r.fields[name]
	return v, ok
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// stepCache returns the engine's store of step results, made on first use.
func (e *Engine) stepCache() *lru.Cache {
	e.stepsOnce.Do(func() { e.steps = lru.New(MaxStepResults) })
	return e.steps
}

// primary makes the issuer's request, after its steps: each step's result is
// reused while valid, or obtained by its call. The token expires at the
// earliest expiry of the chain that the providers stated (the issuer's
// defaultLifetime stands in for the request's when its answer states none). A step's failure
// names the step, and no later call is made.
func (e *Engine) primary(ctx context.Context, c Call, parameters map[string]any, red *redactor) (*Token, error) {
	if len(c.Spec.Steps) == 0 {
		token, err := e.obtain(ctx, c, callRequest, &c.Spec.Request, parameters, nil, red)
		if err != nil {
			return nil, err
		}
		return withDefaultLifetime(c.Spec, token), nil
	}
	keys, err := e.runSteps(ctx, &c, parameters, red)
	if err != nil {
		return nil, err
	}
	token, err := e.obtain(ctx, c, callRequest, &c.Spec.Request, parameters, nil, red)
	if err != nil {
		if ClassOf(err) == ClassUnauthorized {
			// The request may have been refused for a step's token, revoked
			// early: the next attempt obtains every step afresh.
			e.forget(keys)
		}
		return nil, err
	}
	token = withDefaultLifetime(c.Spec, token)
	for k, v := range token.Fields {
		// An endpoint echoing a step's token must not put it in the Secret.
		for _, r := range c.stepResults {
			if r.token != "" && strings.Contains(v, r.token) {
				token.Fields[k] = strings.ReplaceAll(v, r.token, redactedMark)
				v = token.Fields[k]
			}
		}
	}
	for _, r := range c.stepResults {
		if r.expiresAt != nil && (token.NotAfter == nil || r.expiresAt.Before(*token.NotAfter)) {
			at := *r.expiresAt
			token.NotAfter = &at
		}
	}
	if token.NotAfter != nil && (token.ExpiresAt == nil || token.NotAfter.Before(*token.ExpiresAt)) {
		at := *token.NotAfter
		token.ExpiresAt = &at
	}
	return token, nil
}

// runSteps runs the issuer's steps in order, each reused while valid or
// obtained by its call, and leaves their results in c for the call that
// follows. It returns the results' keys in the engine's store; after a
// failure, the results already obtained are dropped.
func (e *Engine) runSteps(ctx context.Context, c *Call, parameters map[string]any, red *redactor) ([]string, error) {
	results := make(map[string]*stepResult, len(c.Spec.Steps))
	var keys []string
	for i := range c.Spec.Steps {
		step := &c.Spec.Steps[i]
		c.stepResults = results
		result, key, err := e.step(ctx, *c, step, parameters, red)
		if err != nil {
			e.forget(keys)
			return nil, err
		}
		results[step.Name] = result
		keys = append(keys, key)
	}
	c.stepResults = results
	return keys, nil
}

// usesSteps reports whether a call of kind sends a step's result, so that
// the steps must run before it.
func usesSteps(spec *v1alpha1.IssuerSpec, kind callKind) bool {
	if len(spec.Steps) == 0 {
		return false
	}
	for _, r := range requests(spec) {
		if r.kind == kind && slices.ContainsFunc(urlPlaceholders(r.spec.URL), func(name string) bool {
			_, _, ok := stepPlaceholder(name)
			return ok
		}) {
			return true
		}
	}
	return slices.ContainsFunc(valueSites(spec), func(site valueSite) bool {
		if site.call != kind || site.source.Credential == "" {
			return false
		}
		c := FindCredential(spec, site.source.Credential)
		return c != nil && c.Step != nil
	})
}

// step returns the result of one step, reused or obtained, and its key in the
// engine's store ("" when the call has no StepScope and nothing is kept).
func (e *Engine) step(ctx context.Context, c Call, step *v1alpha1.IssuerStep, parameters map[string]any,
	red *redactor) (*stepResult, string, error) {
	key := ""
	if c.StepScope != "" {
		key = stepKey(&c, step, parameters)
	}
	now := e.clock().Now()
	if key != "" {
		if v, ok := e.stepCache().Get(key); ok {
			if r := v.(*stepResult); now.Before(r.reusableUntil()) {
				red.add(r.token)
				for _, f := range step.Response.Copy {
					if f.Secret {
						red.add(r.fields[f.Key])
					}
				}
				c.trace(Exchange{Call: string(callOfStep(step.Name)), Method: string(step.Request.Method), URL: red.redact(step.Request.URL), Reused: true})
				return r, key, nil
			}
			e.stepCache().Remove(key)
		}
	}
	// A step may call another provider than request: it neither measures
	// nor uses the issuer's provider clock.
	stepCall := c
	stepCall.ProviderClock = nil
	token, err := e.obtainFrom(ctx, stepCall, callOfStep(step.Name), &step.Request, &step.Response, parameters, nil, red)
	if err != nil {
		err = permanentUnlessRefresh(err)
		var ie *Error
		if errors.As(err, &ie) {
			ie.Step = step.Name
			return nil, key, ie
		}
		return nil, key, fmt.Errorf("step %s: %w", step.Name, err)
	}
	red.add(token.Value)
	result := &stepResult{token: token.Value, issuedAt: token.IssuedAt, expiresAt: token.ExpiresAt, fields: token.Fields}
	if key != "" && result.size() <= maxStepResultBytes && now.Before(result.reusableUntil()) {
		e.stepCache().Add(key, result)
	}
	return result, key, nil
}

// forget drops kept step results.
func (e *Engine) forget(keys []string) {
	for _, k := range keys {
		if k != "" {
			e.stepCache().Remove(k)
		}
	}
}

// stepKey identifies a step's result by everything that could change it: the
// call's scope (the issuer and whose ServiceAccount tokens it sends), the
// issuer's steps up to this one and its credentials, the parameters, the
// credential values, and the results of the earlier steps. Values enter only
// through a hash, so the key holds no credential.
func stepKey(c *Call, step *v1alpha1.IssuerStep, parameters map[string]any) string {
	h := sha256.New()
	write := func(v any) {
		b, _ := json.Marshal(v)
		h.Write([]byte(strconv.Itoa(len(b))))
		h.Write(b)
	}
	write(c.StepScope)
	write(step)
	write(c.Spec.Credentials)
	write(c.Spec.AllowInsecureHTTP)
	write(parameters)
	refs := make([]v1alpha1.SecretKeySelector, 0, len(c.Secrets))
	for ref := range c.Secrets {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, func(a, b v1alpha1.SecretKeySelector) int {
		if a.Name != b.Name {
			return cmp.Compare(a.Name, b.Name)
		}
		return cmp.Compare(a.Key, b.Key)
	})
	for _, ref := range refs {
		write(ref)
		write(c.Secrets[ref])
	}
	for i := range c.Spec.Steps {
		earlier := &c.Spec.Steps[i]
		if earlier.Name == step.Name {
			break
		}
		if r := c.stepResults[earlier.Name]; r != nil {
			write(earlier.Name)
			write(r.token)
			write(r.fields)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// validateSteps checks the steps and the credentials that read their
// results: names are unique, a step credential names a step and a value it
// gives, and only steps after it, request, refresh and revoke use it (so
// steps form no cycle).
func validateSteps(spec *v1alpha1.IssuerSpec) []error {
	var problems []error
	index := map[string]int{}
	for i := range spec.Steps {
		s := &spec.Steps[i]
		fail := func(format string, args ...any) {
			problems = append(problems, fmt.Errorf("steps[%s]: "+format, append([]any{s.Name}, args...)...))
		}
		if s.Name == "" {
			fail("needs a name")
		} else if _, dup := index[s.Name]; dup {
			fail("declared twice")
		}
		index[s.Name] = i
		problems = append(problems, validateStepResponse(s)...)
	}
	for i := range spec.Credentials {
		c := &spec.Credentials[i]
		if c.Step == nil {
			continue
		}
		j, ok := index[c.Step.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Errorf("credentials[%s]: step %q is not one of the issuer's steps", c.Name, c.Step.Name))
		case c.Step.Value != "" && c.Step.Value != v1alpha1.StepValueToken &&
			!slices.ContainsFunc(spec.Steps[j].Response.Copy, func(f v1alpha1.CopyField) bool { return f.Key == c.Step.Value }):
			problems = append(problems, fmt.Errorf("credentials[%s]: step %q copies no field %q (value is Token or a response.copy key)",
				c.Name, c.Step.Name, c.Step.Value))
		}
	}
	for _, site := range valueSites(spec) {
		c := FindCredential(spec, site.source.Credential)
		if site.source.Credential == "" || c == nil || c.Step == nil {
			continue
		}
		j, ok := index[c.Step.Name]
		if !ok {
			continue
		}
		// refresh and revoke run after every step (a lease renewed or
		// revoked with a login token).
		allowed := site.call == callRequest || site.call == callRefresh || site.call == callRevoke
		for k := j + 1; k < len(spec.Steps); k++ {
			allowed = allowed || site.call == callOfStep(spec.Steps[k].Name)
		}
		if !allowed {
			problems = append(problems, fmt.Errorf("%s: credential %q is the result of step %q: only the steps after it, request, refresh and revoke may use it",
				site.label, c.Name, c.Step.Name))
		}
	}
	return problems
}

// validateStepResponse checks a step's response like the issuer's.
func validateStepResponse(s *v1alpha1.IssuerStep) []error {
	var problems []error
	label := "steps[" + s.Name + "].response"
	r := &s.Response
	if _, err := splitPath(r.Token); err != nil {
		problems = append(problems, fmt.Errorf("%s.token: %w", label, err))
	}
	problems = append(problems, validateExpiry(label+".expiry", r.Expiry)...)
	problems = append(problems, validateAnswerShape(label, r)...)
	if r.RefreshToken != nil || r.TokenID != "" {
		problems = append(problems, fmt.Errorf("%s: a step's token is neither refreshed nor revoked: refreshToken and tokenID have no meaning", label))
	}
	keys := map[string]bool{}
	for _, c := range r.Copy {
		if _, err := splitPath(c.Path); err != nil {
			problems = append(problems, fmt.Errorf("%s.copy[%s]: %w", label, c.Key, err))
		}
		if c.Key == "" || c.Key == v1alpha1.StepValueToken || keys[c.Key] {
			problems = append(problems, fmt.Errorf("%s.copy: key %q is empty, Token or listed twice", label, c.Key))
		}
		keys[c.Key] = true
	}
	for _, err := range validateFailures(r) {
		problems = append(problems, fmt.Errorf("steps[%s]: %w", s.Name, err))
	}
	return problems
}

// callOfStep is the call kind of a step's request.
func callOfStep(name string) callKind {
	return callKind("steps[" + name + "].request")
}

// stepLabels stands in for the steps' results when a request is rendered
// without running them: each value is masked as the step that gives it.
func stepLabels(spec *v1alpha1.IssuerSpec, m *masker) map[string]*stepResult {
	out := make(map[string]*stepResult, len(spec.Steps))
	for i := range spec.Steps {
		step := &spec.Steps[i]
		// Stand-ins are letters and digits (they may stand for an AWS
		// access key id), and none is the start of another.
		stand := func(n int, what string) string {
			value := "tokenmintstep" + strconv.Itoa(i) + "v" + strconv.Itoa(n) + "z"
			m.add(value, "<"+what+" of step "+step.Name+">")
			return value
		}
		r := &stepResult{token: stand(0, "token"), fields: map[string]string{}}
		for j, f := range step.Response.Copy {
			r.fields[f.Key] = stand(j+1, f.Key)
		}
		out[step.Name] = r
	}
	return out
}
