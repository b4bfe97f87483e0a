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
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// RenderedRequest is the primary request of an issuer as a call would send it,
// with every credential masked. It is safe to print.
type RenderedRequest struct {
	Method  string           `json:"method"`
	URL     string           `json:"url"`
	Headers []RenderedHeader `json:"headers"`
	// Body is the request body, empty when there is none.
	Body string `json:"body,omitempty"`
}

// RenderedHeader is one header of a RenderedRequest.
type RenderedHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Render builds the primary request of c.Spec exactly as Issue would send it,
// generated values and signed JWTs included, and returns it without sending
// anything. c.HTTPClient is not used.
//
// Every credential is masked, in every encoding it can take (raw, form, URL
// path, JSON string): a Secret value as <Secret name/key>, a signed JWT as
// <signed JWT ...> naming its algorithm and claims, a ServiceAccount token as
// <ServiceAccount token ...>, and HTTP Basic credentials as the base64 of the
// masked username and password. A serviceAccountToken value c does not carry
// is rendered as that mask without a token being needed. Errors are *Error and
// safe to show.
func (e *Engine) Render(c Call) (*RenderedRequest, error) {
	if SelfSigned(c.Spec) {
		return nil, &Error{Class: ClassInvalidConfig, Message: "the issuer signs its token itself (signedJWT): it sends no request"}
	}
	if awsPresigned(c.Spec) != nil {
		return nil, &Error{Class: ClassInvalidConfig, Message: "the issuer's token is a pre-signed URL (awsPresignedURL): it sends no request"}
	}
	c.Spec = Effective(c.Spec)
	parameters, red, err := e.prepareValues(c)
	if err != nil {
		return nil, err
	}
	m := &masker{}
	for ref, value := range c.Secrets {
		m.add(value, fmt.Sprintf("<Secret %s/%s>", ref.Name, ref.Key))
	}
	saTokens := map[v1alpha1.ServiceAccountTokenSource]string{}
	for _, s := range ServiceAccountTokenSources(c.Spec) {
		label := fmt.Sprintf("<ServiceAccount token of %s for audience %s>", s.ServiceAccountName, s.Audience)
		token, ok := c.ServiceAccountTokens[s]
		if !ok {
			token = label
		}
		saTokens[s] = token
		m.add(token, label)
	}
	now := e.clock().Now()
	labels := stepLabels(c.Spec, m)
	values := &valueResolver{parameters: parameters, secrets: c.Secrets, now: now, newUUID: e.newUUID(),
		serviceAccountTokens: saTokens, spec: c.Spec, steps: labels,
		signed: func(token string) {
			red.add(token)
			m.add(token, jwtLabel(token))
		}}
	target, err := expandURL(c.Spec.Request.URL, "", parameters, labels)
	if err != nil {
		return nil, err
	}
	req, err := buildRequest(context.Background(), &c.Spec.Request, target, values, red)
	if err != nil {
		message := red.redact(m.mask(fmt.Sprintf("building the %s request: %v", callRequest, err)))
		return nil, &Error{Class: ClassInvalidConfig, Message: message}
	}
	// Masks first, so that credentials show as where they come from; the
	// redactor then removes anything else the engine holds secret.
	safe := func(text string) string { return red.redact(m.mask(text)) }
	out := &RenderedRequest{Method: req.Method, URL: safe(req.URL.String())}
	names := make([]string, 0, len(req.Header))
	for name := range req.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, value := range req.Header[name] {
			if name == "Authorization" && strings.HasPrefix(value, "Basic ") {
				value = basicLabel(strings.TrimPrefix(value, "Basic "), m)
			}
			if name == "Authorization" && strings.HasPrefix(value, "AWS4-HMAC-SHA256 ") {
				// A signature is good for its request for minutes: a
				// rendered one could be replayed.
				value = sigV4SignaturePattern.ReplaceAllString(value, "Signature=<signature>")
			}
			out.Headers = append(out.Headers, RenderedHeader{Name: name, Value: safe(value)})
		}
	}
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, &Error{Class: ClassInvalidConfig, Message: "reading the built request body failed"}
		}
		out.Body = safe(string(body))
	}
	return out, nil
}

// basicLabel shows HTTP Basic credentials as the base64 of the masked
// username and password, or masks them whole when they do not decode.
func basicLabel(credentials string, m *masker) string {
	decoded, err := base64.StdEncoding.DecodeString(credentials)
	if err != nil {
		return "Basic <credentials>"
	}
	username, password, _ := strings.Cut(string(decoded), ":")
	return fmt.Sprintf("Basic base64(%s:%s)", m.mask(username), maskedOrHidden(m, password))
}

// maskedOrHidden masks text; a password no mask covers (a literal value or a
// parameter) is hidden all the same.
func maskedOrHidden(m *masker, text string) string {
	if masked := m.mask(text); masked != text || text == "" {
		return masked
	}
	return "<password>"
}

// jwtLabel describes a signed JWT without its signature or claim values: the
// algorithm, the key id and the claim names, with its lifetime.
func jwtLabel(token string) string {
	parsed, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		return "<signed JWT>"
	}
	claims, _ := parsed.Claims.(jwt.MapClaims)
	names := make([]string, 0, len(claims))
	for name := range claims {
		names = append(names, name)
	}
	sort.Strings(names)
	label := fmt.Sprintf("<signed JWT %v", parsed.Header["alg"])
	if kid, ok := parsed.Header["kid"]; ok {
		label += fmt.Sprintf(" kid=%v", kid)
	}
	if _, ok := parsed.Header["x5t#S256"]; ok {
		label += " x5t#S256"
	}
	label += ", claims " + strings.Join(names, ",")
	iat, errIat := claims.GetIssuedAt()
	exp, errExp := claims.GetExpirationTime()
	if errIat == nil && errExp == nil && iat != nil && exp != nil {
		label += fmt.Sprintf(", valid %s", exp.Sub(iat.Time).Round(time.Second))
	}
	return label + ">"
}

// masker replaces credentials with labels that say where they come from.
type masker struct {
	forms []maskForm
}

type maskForm struct{ value, label string }

// add registers a credential in the encodings a request may carry it in.
func (m *masker) add(secret, label string) {
	if secret == "" {
		return
	}
	for _, form := range encodings(secret) {
		if !slices.ContainsFunc(m.forms, func(f maskForm) bool { return f.value == form }) {
			m.forms = append(m.forms, maskForm{form, label})
		}
	}
	// Longest first, so that a credential holding another is masked whole.
	slices.SortStableFunc(m.forms, func(a, b maskForm) int { return len(b.value) - len(a.value) })
}

func (m *masker) mask(text string) string {
	for _, f := range m.forms {
		text = strings.ReplaceAll(text, f.value, f.label)
	}
	return text
}
