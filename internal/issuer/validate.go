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
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// tokenIDPlaceholder is replaced in a revoke URL by the id of the token.
const tokenIDPlaceholder = "{tokenID}"

// callKind names the three requests an issuer can describe.
type callKind string

const (
	callRequest callKind = "request"
	callRefresh callKind = "refresh"
	callRevoke  callKind = "revoke"
)

// placeKind is where in a request a value is sent; it decides how the value is
// encoded and which sources make sense.
type placeKind int

const (
	placeAuth placeKind = iota
	placeHeader
	placeForm
	placeJSON
)

// valueSite is one value source of an issuer with where it is used.
type valueSite struct {
	label  string
	call   callKind
	place  placeKind
	source *v1alpha1.ValueSource
}

// namedRequest pairs a request of the spec with its kind.
type namedRequest struct {
	kind callKind
	spec *v1alpha1.RequestSpec
}

// requests lists the requests the spec describes, the primary one first, with
// what refresh and revoke inherit from request filled in (see Effective).
func requests(spec *v1alpha1.IssuerSpec) []namedRequest {
	if MakesNoCall(spec) {
		return nil
	}
	spec = Effective(spec)
	var list []namedRequest
	for i := range spec.Steps {
		list = append(list, namedRequest{callOfStep(spec.Steps[i].Name), &spec.Steps[i].Request})
	}
	list = append(list, namedRequest{callRequest, &spec.Request})
	if spec.Refresh != nil {
		list = append(list, namedRequest{callRefresh, spec.Refresh})
	}
	if spec.Revoke != nil {
		list = append(list, namedRequest{callRevoke, spec.Revoke})
	}
	return list
}

// valueSites lists every value source of every request of spec.
func valueSites(spec *v1alpha1.IssuerSpec) []valueSite {
	var sites []valueSite
	if p := awsPresigned(spec); p != nil {
		addAWSCredentials(&p.AWSCredentials, "awsPresignedURL", func(source *v1alpha1.ValueSource, label string) {
			sites = append(sites, valueSite{label: label, call: callRequest, place: placeAuth, source: source})
		})
	}
	for _, r := range requests(spec) {
		add := func(place placeKind, source *v1alpha1.ValueSource, format string, args ...any) {
			label := string(r.kind) + "." + fmt.Sprintf(format, args...)
			sites = append(sites, valueSite{label: label, call: r.kind, place: place, source: source})
		}
		if auth := r.spec.Auth; auth != nil {
			if auth.Bearer != nil {
				add(placeAuth, auth.Bearer, "auth.bearer")
			}
			if auth.Basic != nil {
				add(placeAuth, &auth.Basic.Username, "auth.basic.username")
				add(placeAuth, &auth.Basic.Password, "auth.basic.password")
			}
			if auth.AWSSigV4 != nil {
				addAWSCredentials(&auth.AWSSigV4.AWSCredentials, "auth.awsSigV4", func(source *v1alpha1.ValueSource, label string) {
					add(placeAuth, source, "%s", label)
				})
			}
		}
		for i := range r.spec.Headers {
			add(placeHeader, &r.spec.Headers[i].ValueSource, "headers[%s]", r.spec.Headers[i].Name)
		}
		if body := r.spec.Body; body != nil {
			for i := range body.JSON {
				add(placeJSON, &body.JSON[i].ValueSource, "body.json[%s]", body.JSON[i].Path)
			}
			for i := range body.Form {
				add(placeForm, &body.Form[i].ValueSource, "body.form[%s]", body.Form[i].Name)
			}
		}
	}
	return sites
}

// SecretRefs returns every Secret key the spec reads, without duplicates, in
// the order they appear, so the caller can fetch and watch exactly those.
func SecretRefs(spec *v1alpha1.IssuerSpec) []v1alpha1.SecretKeySelector {
	var refs []v1alpha1.SecretKeySelector
	add := func(ref *v1alpha1.SecretKeySelector) {
		if ref != nil && !slices.Contains(refs, *ref) {
			refs = append(refs, *ref)
		}
	}
	if c := spec.ClientCertificate; c != nil {
		add(&v1alpha1.SecretKeySelector{Name: c.SecretName, Key: corev1.TLSCertKey})
		add(&v1alpha1.SecretKeySelector{Name: c.SecretName, Key: corev1.TLSPrivateKeyKey})
	}
	addJWT := func(s *v1alpha1.SignedJWT) {
		if s == nil {
			return
		}
		add(&s.PrivateKey.SecretKeyRef)
		if s.Certificate != nil {
			add(&s.Certificate.SecretKeyRef)
		}
		for _, v := range jwtValues(s) {
			add(v.SecretKeyRef)
		}
	}
	addJWT(spec.SignedJWT)
	for _, c := range usedCredentials(spec) {
		add(c.SecretKeyRef)
		addJWT(c.SignedJWT)
	}
	return refs
}

// usedCredentials returns the credentials of spec that some value uses, in
// the order they are declared: one no value uses is neither read nor watched.
func usedCredentials(spec *v1alpha1.IssuerSpec) []*v1alpha1.Credential {
	used := map[string]bool{}
	for _, site := range valueSites(spec) {
		used[site.source.Credential] = true
	}
	var out []*v1alpha1.Credential
	for i := range spec.Credentials {
		if used[spec.Credentials[i].Name] {
			out = append(out, &spec.Credentials[i])
		}
	}
	return out
}

// FindCredential returns the credential of spec named name, or nil.
func FindCredential(spec *v1alpha1.IssuerSpec, name string) *v1alpha1.Credential {
	for i := range spec.Credentials {
		if spec.Credentials[i].Name == name {
			return &spec.Credentials[i]
		}
	}
	return nil
}

// MaxCredentialSecrets is the most distinct credential Secrets one issuer may
// name, over everything that reads one (auth, headers, body fields, URL
// values, the client certificate, signed JWTs; in the request, refresh and
// revoke calls). One Secret holds any number of keys, so a real issuer needs a
// handful at most: a client id and secret, a refresh or API token, a client
// certificate and a signing key. The bound keeps what one issuer costs the
// manager to watch, hash and read (every AccessToken of it, on every change of
// one of them) small whatever a tenant writes.
const MaxCredentialSecrets = 16

// CheckCredentialSecrets refuses an issuer that names more than
// MaxCredentialSecrets distinct Secrets.
func CheckCredentialSecrets(spec *v1alpha1.IssuerSpec) error {
	names := map[string]bool{}
	for _, ref := range SecretRefs(spec) {
		names[ref.Name] = true
	}
	if len(names) > MaxCredentialSecrets {
		return fmt.Errorf("the issuer names %d distinct credential Secrets, more than the %d allowed: put the keys it reads in fewer Secrets",
			len(names), MaxCredentialSecrets)
	}
	return nil
}

// SelfSigned reports whether the issuer's token is a JWT tokenmint signs
// itself (spec.signedJWT) rather than the answer of a call.
func SelfSigned(spec *v1alpha1.IssuerSpec) bool {
	return spec != nil && spec.SignedJWT != nil
}

// Validate checks what the CRD's schema and CEL rules cannot: that parameter
// references are declared, defaults satisfy their constraints, patterns compile,
// issued values are used only where they exist, text places get text, paths do
// not collide, and so on. It reports every problem at once, each prefixed with
// where it is. The engine calls it before every call; the controller may call it
// to report an issuer's readiness.
func Validate(spec *v1alpha1.IssuerSpec) error {
	if spec == nil {
		return errors.New("no issuer spec")
	}
	if SelfSigned(spec) {
		return join([]error{CheckCredentialSecrets(spec), validateSelfSigned(spec)})
	}
	if awsPresigned(spec) != nil {
		return validatePresigned(spec)
	}
	problems := []error{CheckCredentialSecrets(spec)}
	problems = append(problems, validateCredentials(spec)...)
	for _, r := range requests(spec) {
		problems = append(problems, validateRequest(spec, r)...)
	}
	for _, site := range valueSites(spec) {
		if err := validateSite(spec, site); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", site.label, err))
		}
	}
	problems = append(problems, validateParameters(spec)...)
	problems = append(problems, validateResponse(spec)...)
	problems = append(problems, validateSteps(spec)...)
	switch {
	case spec.RefreshExtends && (spec.Refresh == nil || spec.Response.Expiry == nil):
		problems = append(problems, errors.New("refreshExtends needs refresh and response.expiry, where the extension's answer gives the new expiry"))
	case spec.RefreshExtends && spec.Response.RefreshToken != nil:
		problems = append(problems, errors.New("refreshExtends extends the held token: response.refreshToken has no meaning"))
	case spec.Refresh != nil && !spec.RefreshExtends && spec.Response.RefreshToken == nil:
		problems = append(problems, errors.New("refresh needs response.refreshToken, the place the refresh token is read from"))
	}
	if spec.Timeout != nil && spec.Timeout.Duration <= 0 {
		problems = append(problems, fmt.Errorf("timeout must be positive, got %s", spec.Timeout.Duration))
	}
	problems = append(problems, validateDefaultLifetime(spec)...)
	problems = append(problems, validateReissueWindow(spec)...)
	if len(spec.CABundle) > 0 && !x509.NewCertPool().AppendCertsFromPEM(spec.CABundle) {
		problems = append(problems, errors.New("caBundle holds no PEM certificate"))
	}
	return join(problems)
}

// validateSelfSigned checks an issuer whose token is a JWT it signs: it makes
// no call, so everything that describes one is refused rather than ignored.
func validateSelfSigned(spec *v1alpha1.IssuerSpec) error {
	var problems []error
	if !reflect.DeepEqual(spec.Request, v1alpha1.RequestSpec{}) {
		problems = append(problems, errors.New("set exactly one of request or signedJWT"))
	}
	if !reflect.DeepEqual(spec.Response, v1alpha1.ResponseSpec{}) {
		problems = append(problems, errors.New("response has no meaning with signedJWT: the token is the JWT"))
	}
	if spec.Refresh != nil || spec.Revoke != nil || spec.ClientCertificate != nil || len(spec.CABundle) > 0 {
		problems = append(problems, errors.New("an issuer with signedJWT makes no call: refresh, revoke, clientCertificate and caBundle have no meaning"))
	}
	if len(spec.Steps) > 0 {
		problems = append(problems, errors.New("steps are calls: an issuer with signedJWT makes none"))
	}
	if len(spec.Credentials) > 0 {
		problems = append(problems, errors.New("an issuer with signedJWT makes no call: credentials have no meaning (the signing key is signedJWT.privateKey)"))
	}
	if err := validateSignedJWT(spec, spec.SignedJWT); err != nil {
		problems = append(problems, err)
	}
	problems = append(problems, validateParameters(spec)...)
	return join(problems)
}

// sigV4Headers are written by AWS Signature Version 4 signing.
var sigV4Headers = []string{"X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"}

// reservedHeaders are set by the engine or by Go's transport; listing them
// would either be ignored or break the request.
var reservedHeaders = []string{"Content-Type", "Content-Length", "Host", "Transfer-Encoding", "Connection"}

func validateRequest(spec *v1alpha1.IssuerSpec, r namedRequest) []error {
	var problems []error
	fail := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf(string(r.kind)+"."+format, args...))
	}
	if err := checkURL(r.spec.URL, r.kind, spec.AllowInsecureHTTP); err != nil {
		fail("url: %w", err)
	}
	for _, name := range urlPlaceholders(r.spec.URL) {
		if name == "tokenID" {
			continue // checked by checkURL
		}
		if step, key, ok := stepPlaceholder(name); ok {
			if err := checkStepPlaceholder(spec, r.kind, step, key); err != nil {
				fail("url: {%s}: %w", name, err)
			}
			continue
		}
		i := slices.IndexFunc(spec.Parameters, func(p v1alpha1.ParameterSpec) bool { return p.Name == name })
		switch {
		case i < 0:
			fail("url: {%s} is not a declared parameter%s", name, declaredNames(spec))
		case !slices.Contains([]v1alpha1.ParameterType{v1alpha1.ParameterString, v1alpha1.ParameterInteger}, parameterType(&spec.Parameters[i])):
			fail("url: {%s} must be a String or Integer parameter", name)
		}
	}
	switch r.spec.Method {
	case "", http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		fail("method: %q is not one of GET, POST, PUT, PATCH, DELETE", r.spec.Method)
	}
	if auth := r.spec.Auth; auth != nil {
		set := 0
		for _, isSet := range []bool{auth.Bearer != nil, auth.Basic != nil, auth.AWSSigV4 != nil} {
			if isSet {
				set++
			}
		}
		if set != 1 {
			fail("auth: exactly one of bearer, basic or awsSigV4 must be set")
		}
		if auth.AWSSigV4 != nil {
			for _, err := range validateSigV4(auth.AWSSigV4) {
				fail("%w", err)
			}
		}
	}
	seen := map[string]bool{}
	for _, h := range r.spec.Headers {
		canonical := http.CanonicalHeaderKey(h.Name)
		switch {
		case h.Name == "" || strings.ContainsAny(h.Name, " \t\r\n:"):
			fail("headers: %q is not a valid header name", h.Name)
		case seen[canonical]:
			fail("headers: %s is listed twice", h.Name)
		case slices.Contains(reservedHeaders, canonical):
			fail("headers: %s is set by the engine and cannot be listed", h.Name)
		case canonical == "Authorization" && r.spec.Auth != nil:
			fail("headers: Authorization cannot be listed together with auth")
		case r.spec.Auth != nil && r.spec.Auth.AWSSigV4 != nil && slices.Contains(sigV4Headers, canonical):
			fail("headers: %s is set by awsSigV4 signing and cannot be listed", h.Name)
		}
		seen[canonical] = true
	}
	if body := r.spec.Body; body != nil {
		problems = append(problems, validateBody(r.kind, body)...)
	}
	return problems
}

func checkURL(raw string, kind callKind, allowInsecureHTTP bool) error {
	if strings.Contains(raw, tokenIDPlaceholder) && kind != callRevoke {
		return fmt.Errorf("%s is only meaningful in revoke.url", tokenIDPlaceholder)
	}
	if !placeholderSyntax.MatchString(raw) {
		return errors.New("a placeholder is {name}, name a parameter, {steps.<step>.<key>} or tokenID in revoke.url, and braces appear only around one")
	}
	u, err := url.Parse(placeholderPattern.ReplaceAllString(raw, "$1"))
	if err != nil {
		// url.Error repeats the whole URL, credentials included if someone put
		// them there; its cause names only the offending part.
		return fmt.Errorf("not a URL: %w", errors.Unwrap(err))
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("scheme must be https (or http with allowInsecureHTTP), got %q", u.Scheme)
	case u.Scheme == "http" && !allowInsecureHTTP:
		return errors.New("plain http sends credentials in clear text; use https, or set allowInsecureHTTP for tests")
	case u.Host == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("must not carry credentials; use auth.basic")
	case u.Fragment != "":
		return errors.New("must not have a fragment")
	}
	// The id comes from the provider's response, parameters from tenants: in
	// the host either would choose where the request, credentials included, is
	// sent.
	if other, err := url.Parse(placeholderPattern.ReplaceAllString(raw, "other$1")); err != nil || other.Host != u.Host {
		return errors.New("a {placeholder} may stand only in the path or the query")
	}
	return nil
}

// placeholderPattern matches one {name} of a URL: a parameter, tokenID, or
// steps.<step>.<key>, a field an earlier step copied; placeholderSyntax a URL
// whose braces all belong to placeholders.
var (
	placeholderPattern = regexp.MustCompile(`\{(` + placeholderName + `)\}`)
	placeholderSyntax  = regexp.MustCompile(`^[^{}]*(\{(?:` + placeholderName + `)\}[^{}]*)*$`)
)

// placeholderName is the name of a URL placeholder.
const placeholderName = `[A-Za-z][A-Za-z0-9_]*|` + stepPlaceholderPrefix + `[a-z0-9](?:[-a-z0-9]*[a-z0-9])?\.[-._a-zA-Z0-9]+`

// stepPlaceholderPrefix starts a placeholder naming a step's copied field.
const stepPlaceholderPrefix = "steps."

// stepPlaceholder splits a placeholder name steps.<step>.<key>; ok is false
// for any other name.
func stepPlaceholder(name string) (step, key string, ok bool) {
	rest, found := strings.CutPrefix(name, stepPlaceholderPrefix)
	if !found {
		return "", "", false
	}
	return strings.Cut(rest, ".")
}

// checkStepPlaceholder checks a {steps.<step>.<key>} placeholder of the URL
// of a call of kind: the step is earlier than the call, and key is a field
// its response copies that is not marked secret. A step's token and secret
// fields never stand in a URL: URLs are written to access logs by providers
// and proxies, and the engine's errors may name them.
func checkStepPlaceholder(spec *v1alpha1.IssuerSpec, kind callKind, step, key string) error {
	i := slices.IndexFunc(spec.Steps, func(s v1alpha1.IssuerStep) bool { return s.Name == step })
	if i < 0 {
		return fmt.Errorf("%q is not one of the issuer's steps", step)
	}
	if j := slices.IndexFunc(spec.Steps, func(s v1alpha1.IssuerStep) bool { return callOfStep(s.Name) == kind }); j >= 0 && j <= i {
		return fmt.Errorf("step %q does not run before this call: only the steps after it, request, refresh and revoke may use its result", step)
	}
	if key == v1alpha1.StepValueToken {
		return errors.New("a step's token never stands in a URL (URLs are logged): send it in a header, auth or the body")
	}
	c := slices.IndexFunc(spec.Steps[i].Response.Copy, func(f v1alpha1.CopyField) bool { return f.Key == key })
	switch {
	case c < 0:
		return fmt.Errorf("step %q copies no field %q", step, key)
	case spec.Steps[i].Response.Copy[c].Secret:
		return fmt.Errorf("step %q marks %q secret, and a secret never stands in a URL (URLs are logged): send it in a header, auth or the body", step, key)
	}
	return nil
}

// urlPlaceholders lists the names of the {name} placeholders of a URL.
func urlPlaceholders(raw string) []string {
	var names []string
	for _, m := range placeholderPattern.FindAllStringSubmatch(raw, -1) {
		names = append(names, m[1])
	}
	return names
}

func validateBody(kind callKind, body *v1alpha1.BodySpec) []error {
	switch {
	case len(body.JSON) > 0 && len(body.Form) > 0, len(body.JSON) == 0 && len(body.Form) == 0 && body.JSONContentType == "":
		return []error{fmt.Errorf("%s.body: exactly one of json or form must be set", kind)}
	case body.JSONContentType != "" && len(body.Form) > 0:
		return []error{fmt.Errorf("%s.body: jsonContentType is for JSON bodies", kind)}
	case body.JSONContentType != "" && !slices.Contains([]string{"application/json", "application/x-amz-json-1.0", "application/x-amz-json-1.1"}, body.JSONContentType):
		return []error{fmt.Errorf("%s.body: jsonContentType %q is not application/json, application/x-amz-json-1.0 or application/x-amz-json-1.1", kind, body.JSONContentType)}
	}
	var problems []error
	shape := map[string]any{}
	for _, field := range body.JSON {
		if err := setPath(shape, field.Path, struct{}{}); err != nil {
			problems = append(problems, fmt.Errorf("%s.body.json: %w", kind, err))
		}
	}
	names := map[string]bool{}
	for _, field := range body.Form {
		if field.Name == "" || names[field.Name] {
			problems = append(problems, fmt.Errorf("%s.body.form: name %q is empty or listed twice", kind, field.Name))
		}
		names[field.Name] = true
	}
	return problems
}

// validateSite checks one value source against the place it is used in.
func validateSite(spec *v1alpha1.IssuerSpec, site valueSite) error {
	source := site.source
	set := 0
	for _, isSet := range []bool{source.Value != nil, source.JSON != "", source.Credential != "",
		source.Generate != "", source.Parameter != "", source.Issued != ""} {
		if isSet {
			set++
		}
	}
	if set != 1 {
		return errors.New("exactly one of value, json, credential, generate, parameter or issued must be set")
	}
	switch {
	case source.JSON != "":
		if site.place != placeJSON {
			return errors.New("json literals are for JSON body fields; use value")
		}
		if _, err := decodeJSON([]byte(source.JSON)); err != nil {
			return fmt.Errorf("json literal is not valid JSON: %w", err)
		}
	case source.Credential != "":
		if FindCredential(spec, source.Credential) == nil {
			return fmt.Errorf("credential %q is not declared in credentials%s", source.Credential, declaredCredentials(spec))
		}
	case source.Generate != "":
		generators := []v1alpha1.Generator{v1alpha1.GenerateUUID, v1alpha1.GenerateUnixSeconds,
			v1alpha1.GenerateUnixMilliseconds, v1alpha1.GenerateRFC3339}
		if !slices.Contains(generators, source.Generate) {
			return fmt.Errorf("generate %q is not one of %q", source.Generate, generators)
		}
	case source.Parameter != "":
		return validateParameterUse(spec, site)
	case source.Issued != "":
		return validateIssuedUse(spec, site)
	}
	return nil
}

// validateCredentials checks each declared credential on its own.
func validateCredentials(spec *v1alpha1.IssuerSpec) []error {
	var problems []error
	seen := map[string]bool{}
	for i := range spec.Credentials {
		c := &spec.Credentials[i]
		fail := func(err error) {
			problems = append(problems, fmt.Errorf("credentials[%s]: %w", c.Name, err))
		}
		set := 0
		for _, isSet := range []bool{c.SecretKeyRef != nil, c.SignedJWT != nil, c.ServiceAccountToken != nil, c.Step != nil} {
			if isSet {
				set++
			}
		}
		switch {
		case c.Name == "":
			fail(errors.New("needs a name"))
		case seen[c.Name]:
			fail(errors.New("declared twice"))
		}
		seen[c.Name] = true
		switch {
		case set != 1:
			fail(errors.New("exactly one of secretKeyRef, signedJWT, serviceAccountToken or step must be set"))
		case c.SecretKeyRef != nil && (c.SecretKeyRef.Name == "" || c.SecretKeyRef.Key == ""):
			fail(errors.New("secretKeyRef needs a name and a key"))
		case c.SignedJWT != nil:
			if err := validateSignedJWT(spec, c.SignedJWT); err != nil {
				fail(err)
			}
		case c.ServiceAccountToken != nil && (c.ServiceAccountToken.ServiceAccountName == "" || c.ServiceAccountToken.Audience == ""):
			fail(errors.New("serviceAccountToken needs a serviceAccountName and an audience"))
		}
	}
	return problems
}

// declaredCredentials lists the names of spec's credentials for an error message.
func declaredCredentials(spec *v1alpha1.IssuerSpec) string {
	if len(spec.Credentials) == 0 {
		return " (none are)"
	}
	names := make([]string, 0, len(spec.Credentials))
	for _, c := range spec.Credentials {
		names = append(names, c.Name)
	}
	return " (" + strings.Join(names, ", ") + ")"
}

// ServiceAccountTokenSources returns every serviceAccountToken credential of
// spec that a value uses, without duplicates: the tokens a call needs.
func ServiceAccountTokenSources(spec *v1alpha1.IssuerSpec) []v1alpha1.ServiceAccountTokenSource {
	var out []v1alpha1.ServiceAccountTokenSource
	for _, c := range usedCredentials(spec) {
		if s := c.ServiceAccountToken; s != nil && !slices.Contains(out, *s) {
			out = append(out, *s)
		}
	}
	return out
}

// jwtValues lists the text values of a signed JWT.
func jwtValues(s *v1alpha1.SignedJWT) []*v1alpha1.JWTValue {
	var out []*v1alpha1.JWTValue
	for _, v := range []*v1alpha1.JWTValue{s.KeyID, s.Issuer, s.Subject} {
		if v != nil {
			out = append(out, v)
		}
	}
	for i := range s.Claims {
		out = append(out, &s.Claims[i].JWTValue)
	}
	return out
}

func validateSignedJWT(spec *v1alpha1.IssuerSpec, s *v1alpha1.SignedJWT) error {
	var problems []error
	if jwt.GetSigningMethod(string(s.Algorithm)) == nil || s.Algorithm == "none" || strings.HasPrefix(string(s.Algorithm), "HS") {
		problems = append(problems, fmt.Errorf("signedJWT.algorithm %q is not one of RS256-512, PS256-512, ES256-512, EdDSA", s.Algorithm))
	}
	if s.PrivateKey.SecretKeyRef.Name == "" || s.PrivateKey.SecretKeyRef.Key == "" {
		problems = append(problems, errors.New("signedJWT.privateKey needs a secretKeyRef"))
	}
	for name, d := range map[string]*v1alpha1.Duration{"lifetime": s.Lifetime, "maxLifetime": s.MaxLifetime, "backdate": s.Backdate} {
		if err := d.Check("signedJWT." + name); err != nil {
			problems = append(problems, err)
		}
	}
	lifetime, _ := jwtTiming(s)
	if s.Lifetime != nil && s.Lifetime.Duration > lifetime {
		problems = append(problems, fmt.Errorf("signedJWT.lifetime %s is longer than %s", s.Lifetime.Duration, lifetime))
	}
	seen := map[string]bool{}
	for _, c := range s.Claims {
		switch {
		case slices.Contains(reservedClaims, c.Name):
			problems = append(problems, fmt.Errorf("signedJWT.claims: %s is set by its own field", c.Name))
		case seen[c.Name]:
			problems = append(problems, fmt.Errorf("signedJWT.claims: %s is listed twice", c.Name))
		}
		seen[c.Name] = true
	}
	for _, v := range jwtValues(s) {
		set := 0
		for _, isSet := range []bool{v.Value != nil, v.SecretKeyRef != nil, v.Parameter != "", v.KeyFingerprint != ""} {
			if isSet {
				set++
			}
		}
		if set != 1 {
			problems = append(problems, errors.New("signedJWT: each value needs exactly one of value, secretKeyRef, parameter or keyFingerprint"))
			continue
		}
		if v.KeyFingerprint != "" && v.KeyFingerprint != "SHA256" {
			problems = append(problems, fmt.Errorf("signedJWT: keyFingerprint %q is not SHA256", v.KeyFingerprint))
		}
		if v.JSONField != "" && v.SecretKeyRef == nil {
			problems = append(problems, errors.New("signedJWT: jsonField needs secretKeyRef"))
		}
		if v.Parameter != "" && !slices.ContainsFunc(spec.Parameters, func(p v1alpha1.ParameterSpec) bool { return p.Name == v.Parameter }) {
			problems = append(problems, fmt.Errorf("signedJWT: parameter %q is not declared in parameters%s", v.Parameter, declaredNames(spec)))
		}
	}
	return errors.Join(problems...)
}

func validateParameterUse(spec *v1alpha1.IssuerSpec, site valueSite) error {
	i := slices.IndexFunc(spec.Parameters, func(p v1alpha1.ParameterSpec) bool { return p.Name == site.source.Parameter })
	if i < 0 {
		return fmt.Errorf("parameter %q is not declared in parameters%s", site.source.Parameter, declaredNames(spec))
	}
	switch kind := parameterType(&spec.Parameters[i]); {
	case kind == v1alpha1.ParameterStringList && (site.place == placeHeader || site.place == placeAuth):
		return fmt.Errorf("parameter %q is a StringList, which has no header form", site.source.Parameter)
	case kind == v1alpha1.ParameterStringMap && site.place != placeJSON:
		return fmt.Errorf("parameter %q is a StringMap, which can be sent only in a JSON body", site.source.Parameter)
	}
	return nil
}

// validateIssuedUse checks that an issued value exists in the call that uses it:
// a refresh token only when refreshing, the old token and its id only when
// revoking.
func validateIssuedUse(spec *v1alpha1.IssuerSpec, site valueSite) error {
	want := map[v1alpha1.IssuedValue]callKind{
		v1alpha1.IssuedRefreshToken: callRefresh,
		v1alpha1.IssuedAccessToken:  callRevoke,
		v1alpha1.IssuedTokenID:      callRevoke,
	}
	call, known := want[site.source.Issued]
	if !known {
		return fmt.Errorf("unknown issued value %q", site.source.Issued)
	}
	if spec.RefreshExtends && site.call == callRefresh {
		// The refresh extends the held token: it has no refresh token, but
		// the token and its id.
		if site.source.Issued == v1alpha1.IssuedRefreshToken {
			return errors.New("issued: RefreshToken has no value with refreshExtends, which sends the held token (AccessToken, TokenID)")
		}
		return nil
	}
	if call != site.call {
		return fmt.Errorf("issued: %s is only available in %s", site.source.Issued, call)
	}
	return nil
}

func validateParameters(spec *v1alpha1.IssuerSpec) []error {
	var problems []error
	seen := map[string]bool{}
	for i := range spec.Parameters {
		decl := &spec.Parameters[i]
		fail := func(format string, args ...any) {
			problems = append(problems, fmt.Errorf("parameters[%s]: "+format, append([]any{decl.Name}, args...)...))
		}
		if seen[decl.Name] {
			fail("declared twice")
		}
		seen[decl.Name] = true
		kind := parameterType(decl)
		switch kind {
		case v1alpha1.ParameterString, v1alpha1.ParameterInteger, v1alpha1.ParameterBoolean, v1alpha1.ParameterStringList, v1alpha1.ParameterStringMap:
		default:
			fail("unknown type %q", decl.Type)
			continue
		}
		if decl.Name == "tokenID" {
			fail("tokenID is reserved for the token id in revoke.url")
		}
		if len(decl.Keys) > 0 && kind != v1alpha1.ParameterStringMap {
			fail("keys apply to StringMap parameters only")
		}
		isText := kind == v1alpha1.ParameterString || kind == v1alpha1.ParameterStringList || kind == v1alpha1.ParameterStringMap
		if (decl.Minimum != nil || decl.Maximum != nil) && kind != v1alpha1.ParameterInteger {
			fail("minimum and maximum apply to Integer parameters only")
		}
		if decl.Minimum != nil && decl.Maximum != nil && *decl.Minimum > *decl.Maximum {
			fail("minimum %d is greater than maximum %d", *decl.Minimum, *decl.Maximum)
		}
		if (decl.Pattern != "" || len(decl.Enum) > 0) && !isText {
			fail("pattern and enum apply to String, StringList and StringMap parameters only")
		}
		if decl.Pattern != "" {
			if _, err := fullMatch(decl.Pattern); err != nil {
				fail("pattern does not compile: %w", err)
				continue
			}
		}
		if decl.FromNamespaceLabel != "" {
			if errs := validation.IsQualifiedName(decl.FromNamespaceLabel); len(errs) > 0 {
				fail("fromNamespaceLabel is not a label key: %s", strings.Join(errs, "; "))
			}
			if kind != v1alpha1.ParameterString && kind != v1alpha1.ParameterInteger {
				fail("fromNamespaceLabel applies to String and Integer parameters only")
			}
			if decl.Default != nil {
				fail("a parameter with fromNamespaceLabel has no default")
			}
		}
		if decl.Default != nil {
			if _, err := parameterValue(decl, *decl.Default); err != nil {
				fail("default is not acceptable: %w", err)
			}
		}
	}
	return problems
}

func validateResponse(spec *v1alpha1.IssuerSpec) []error {
	response := &spec.Response
	var problems []error
	checkPath := func(label, path string, required bool) {
		if path == "" && !required {
			return
		}
		if _, err := splitPath(path); err != nil {
			problems = append(problems, fmt.Errorf("response.%s: %w", label, err))
		}
	}
	checkPath("token", response.Token, true)
	checkPath("tokenID", response.TokenID, false)
	problems = append(problems, validateAnswerShape("response", response)...)
	problems = append(problems, validateExpiry("response.expiry", response.Expiry)...)
	if s := response.Success; s != nil {
		checkPath("success.path", s.Path, true)
		if _, err := decodeJSON(s.Equals.Raw); err != nil {
			problems = append(problems, fmt.Errorf("response.success.equals is not valid JSON: %w", err))
		}
	}
	if e := response.Error; e != nil {
		checkPath("error.code", e.Code, false)
		checkPath("error.message", e.Message, false)
	}
	if rt := response.RefreshToken; rt != nil {
		checkPath("refreshToken.path", rt.Path, true)
		problems = append(problems, validateExpiry("response.refreshToken.expiry", rt.Expiry)...)
		switch rt.OnRejected {
		case "", v1alpha1.RefreshRejectedRestart, v1alpha1.RefreshRejectedFail:
		default:
			problems = append(problems, fmt.Errorf("response.refreshToken.onRejected %q is not one of Restart, Fail", rt.OnRejected))
		}
	}
	keys := map[string]bool{}
	for _, c := range response.Copy {
		checkPath("copy["+c.Key+"]", c.Path, true)
		switch {
		case c.Key == "" || keys[c.Key]:
			problems = append(problems, fmt.Errorf("response.copy: key %q is empty or listed twice", c.Key))
		case response.RefreshToken != nil && (c.Path == response.RefreshToken.Path || strings.HasPrefix(response.RefreshToken.Path, c.Path+".")):
			// Copying an object that holds the refresh token copies it too.
			problems = append(problems, fmt.Errorf("response.copy[%s]: the refresh token must never be copied into the Secret pods mount", c.Key))
		}
		keys[c.Key] = true
	}
	problems = append(problems, validateFailures(response)...)
	if spec.RefreshExtends && spec.Refresh != nil && response.TokenID == "" &&
		slices.ContainsFunc(valueSites(&v1alpha1.IssuerSpec{Refresh: spec.Refresh}), func(s valueSite) bool {
			return s.call == callRefresh && s.source.Issued == v1alpha1.IssuedTokenID
		}) {
		problems = append(problems, errors.New("refresh uses the token id (issued: TokenID) but response.tokenID does not say where it is"))
	}
	if spec.Revoke != nil && response.TokenID == "" && revokeNeedsTokenID(spec.Revoke) {
		problems = append(problems, errors.New("revoke uses the token id ({tokenID} or issued: TokenID) but response.tokenID does not say where it is"))
	}
	return problems
}

func validateExpiry(label string, expiry *v1alpha1.ExpirySpec) []error {
	if expiry == nil {
		return nil
	}
	switch expiry.Format {
	case v1alpha1.ExpiryUnixSeconds, v1alpha1.ExpiryUnixMilliseconds, v1alpha1.ExpiryRFC3339, v1alpha1.ExpiryRelativeSeconds, v1alpha1.ExpiryHTTPDate, v1alpha1.ExpiryDate:
		if expiry.Path == "" {
			return []error{fmt.Errorf("%s.path is required unless format is JWT", label)}
		}
	case v1alpha1.ExpiryJWT:
		if expiry.Path == "" {
			return nil
		}
	default:
		return []error{fmt.Errorf("%s.format %q is not one of UnixSeconds, UnixMilliseconds, RFC3339, RelativeSeconds, JWT, HTTPDate, Date", label, expiry.Format)}
	}
	if _, err := splitPath(expiry.Path); err != nil {
		return []error{fmt.Errorf("%s.path: %w", label, err)}
	}
	return nil
}

func revokeNeedsTokenID(revoke *v1alpha1.RequestSpec) bool {
	if strings.Contains(revoke.URL, tokenIDPlaceholder) {
		return true
	}
	spec := &v1alpha1.IssuerSpec{Revoke: revoke}
	return slices.ContainsFunc(valueSites(spec), func(s valueSite) bool {
		return s.call == callRevoke && s.source.Issued == v1alpha1.IssuedTokenID
	})
}

// maxSeparatorBytes bounds a transform's separator.
const maxSeparatorBytes = 16

// validateAnswerShape checks the response format and every transform of a
// response (the issuer's or a step's).
func validateAnswerShape(label string, r *v1alpha1.ResponseSpec) []error {
	var problems []error
	switch r.Format {
	case "", v1alpha1.ResponseJSON, v1alpha1.ResponseXML, v1alpha1.ResponseForm:
	default:
		problems = append(problems, fmt.Errorf("%s.format %q is not one of JSON, XML, Form", label, r.Format))
	}
	if err := validateTransform(r.TokenTransform); err != nil {
		problems = append(problems, fmt.Errorf("%s.tokenTransform: %w", label, err))
	}
	for _, c := range r.Copy {
		if err := validateTransform(c.Transform); err != nil {
			problems = append(problems, fmt.Errorf("%s.copy[%s].transform: %w", label, c.Key, err))
		}
	}
	return problems
}

func validateTransform(t *v1alpha1.ValueTransform) error {
	if t == nil {
		return nil
	}
	switch t.Base64 {
	case "", v1alpha1.Base64Standard, v1alpha1.Base64URL:
	default:
		return fmt.Errorf("base64 %q is not one of Standard, URL", t.Base64)
	}
	if t.Before != "" && t.After != "" {
		return errors.New("set at most one of before or after")
	}
	if len(t.Before) > maxSeparatorBytes || len(t.After) > maxSeparatorBytes {
		return fmt.Errorf("a separator is at most %d bytes", maxSeparatorBytes)
	}
	if t.Base64 == "" && t.Before == "" && t.After == "" {
		return errors.New("transforms nothing: set base64, before or after")
	}
	return nil
}
