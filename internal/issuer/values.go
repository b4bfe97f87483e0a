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
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// valueResolver turns value sources into values for one call. Values keep their
// JSON shape (string, json.Number, int64, bool, []string, or anything a json
// literal decodes to) until they are encoded for a header, a form or a body.
type valueResolver struct {
	parameters map[string]any
	secrets    map[v1alpha1.SecretKeySelector]string
	issued     map[v1alpha1.IssuedValue]string
	// now is the provider's time: the local time plus the issuer's clock
	// offset, when the engine corrects it.
	now     time.Time
	newUUID func() string
	// timed is set once a value was computed from now (a timestamp, a signed
	// JWT): the request then depends on the clock the provider checks it by.
	timed bool
	// signed, when set, is given every JWT signed, so that it is redacted.
	signed func(string)
	// serviceAccountTokens are the call's ServiceAccount tokens.
	serviceAccountTokens map[v1alpha1.ServiceAccountTokenSource]string
	// spec is the issuer, whose credentials values name.
	spec *v1alpha1.IssuerSpec
	// steps are the results of the steps run so far.
	steps map[string]*stepResult
}

// resolve returns the value of source. present is false when the source is an
// optional parameter the AccessToken left unset: the field is then not sent.
func (r *valueResolver) resolve(source *v1alpha1.ValueSource) (value any, present bool, err error) {
	switch {
	case source.Value != nil:
		return *source.Value, true, nil
	case source.JSON != "":
		decoded, err := decodeJSON([]byte(source.JSON))
		if err != nil {
			return nil, false, fmt.Errorf("json literal is not valid JSON: %w", err)
		}
		return decoded, true, nil
	case source.Credential != "":
		return r.credential(source.Credential)
	case source.Generate != "":
		generated, err := r.generate(source.Generate)
		return generated, err == nil, err
	case source.Parameter != "":
		parameter, ok := r.parameters[source.Parameter]
		return parameter, ok, nil
	case source.Issued != "":
		issued, ok := r.issued[source.Issued]
		if !ok {
			return nil, false, fmt.Errorf("issued: %s is not available in this call", source.Issued)
		}
		return issued, true, nil
	default:
		return nil, false, fmt.Errorf("no value source set")
	}
}

// credential returns the value of the issuer's credential name: a Secret key,
// a JWT signed now, or the call's ServiceAccount token.
func (r *valueResolver) credential(name string) (any, bool, error) {
	var c *v1alpha1.Credential
	if r.spec != nil {
		c = FindCredential(r.spec, name)
	}
	switch {
	case c == nil:
		return nil, false, fmt.Errorf("credential %q is not declared", name)
	case c.SecretKeyRef != nil:
		secret, ok := r.secrets[*c.SecretKeyRef]
		if !ok {
			return nil, false, fmt.Errorf("no value for key %q of Secret %q", c.SecretKeyRef.Key, c.SecretKeyRef.Name)
		}
		return secret, true, nil
	case c.ServiceAccountToken != nil:
		token, ok := r.serviceAccountTokens[*c.ServiceAccountToken]
		if !ok {
			return nil, false, fmt.Errorf("no token of ServiceAccount %q for audience %q was requested for this call",
				c.ServiceAccountToken.ServiceAccountName, c.ServiceAccountToken.Audience)
		}
		return token, true, nil
	case c.Step != nil:
		result := r.steps[c.Step.Name]
		if result == nil {
			return nil, false, fmt.Errorf("credential %q needs the result of step %q, which has not run", name, c.Step.Name)
		}
		v, ok := result.value(c.Step.Value)
		if !ok {
			return nil, false, fmt.Errorf("step %q gave no value %q", c.Step.Name, c.Step.Value)
		}
		return v, true, nil
	case c.SignedJWT != nil:
		signed, err := r.signJWT(c.SignedJWT)
		if err != nil {
			return nil, false, err
		}
		if r.signed != nil {
			r.signed(signed)
		}
		return signed, true, nil
	default:
		return nil, false, fmt.Errorf("credential %q has no source", name)
	}
}

// generate computes a per-call value. Timestamps come from the engine's clock so
// that tests can pin them.
func (r *valueResolver) generate(generator v1alpha1.Generator) (any, error) {
	switch generator {
	case v1alpha1.GenerateUUID:
		return r.newUUID(), nil
	case v1alpha1.GenerateUnixSeconds, v1alpha1.GenerateUnixMilliseconds, v1alpha1.GenerateRFC3339:
		r.timed = true
	}
	switch generator {
	case v1alpha1.GenerateUnixSeconds:
		return r.now.Unix(), nil
	case v1alpha1.GenerateUnixMilliseconds:
		return r.now.UnixMilli(), nil
	case v1alpha1.GenerateRFC3339:
		return r.now.UTC().Format(time.RFC3339), nil
	default:
		return nil, fmt.Errorf("unknown generator %q", generator)
	}
}

// resolveText resolves source for a header, a form field or authentication,
// where every value is text. ok is false when the value is absent.
func (r *valueResolver) resolveText(source *v1alpha1.ValueSource) (text string, ok bool, err error) {
	value, present, err := r.resolve(source)
	if err != nil || !present {
		return "", false, err
	}
	text, err = scalarText(value)
	return text, err == nil, err
}

// scalarText encodes a value as text. A list of strings is joined with single
// spaces, the way OAuth2 writes scope; objects and other lists have no text form.
func scalarText(value any) (string, error) {
	switch v := value.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case bool:
		return strconv.FormatBool(v), nil
	case []string:
		return strings.Join(v, " "), nil
	default:
		return "", fmt.Errorf("%s cannot be sent as text", describe(value))
	}
}
