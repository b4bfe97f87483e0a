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
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// chain is a two-call provider: /exchange gives a step token, /mint a final
// token only for a bearer that /exchange issued.
type chain struct {
	mu            sync.Mutex
	exchanges     int
	mints         int
	stepLifetime  int
	finalLifetime int
	failExchange  bool
	failMint      bool
	issued        map[string]bool
	padding       string
	order         []string
	sentProject   []string
	project       string   // the project /exchange copies ("p-42" when empty)
	mintPaths     []string // the escaped paths of the mint calls
}

func (p *chain) handler(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/exchange":
		p.exchanges++
		p.order = append(p.order, "exchange")
		if p.failExchange {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"subject token refused"}`)
			return
		}
		token := fmt.Sprintf("STEP-CANARY-%d", p.exchanges)
		p.issued[token] = true
		project := p.project
		if project == "" {
			project = "p-42"
		}
		_, _ = fmt.Fprintf(w, `{"access_token":%q,"expires_in":%d,"project":%q,"padding":%q}`, token, p.stepLifetime, project, p.padding)
	case "/mint", "/projects/p-42/mint", "/projects/p/42/mint":
		p.mints++
		p.mintPaths = append(p.mintPaths, r.URL.EscapedPath())
		p.order = append(p.order, "mint")
		p.sentProject = append(p.sentProject, r.Header.Get("X-Project"))
		bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if p.failMint || !p.issued[bearer] {
			w.WriteHeader(http.StatusUnauthorized)
			// A provider that echoes the credential it refused.
			_, _ = fmt.Fprintf(w, `{"error":"unauthenticated","error_description":"token %s is not valid"}`, bearer)
			return
		}
		// It echoes the bearer it accepted, as some debugging endpoints do.
		_, _ = fmt.Fprintf(w, `{"token":"final-%d","expires_in":%d,"caller":"bearer %s"}`, p.mints, p.finalLifetime, bearer)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func startChain(t *testing.T) (*chain, string) {
	t.Helper()
	p := &chain{stepLifetime: 3600, finalLifetime: 900, issued: map[string]bool{}}
	e := startEndpoint(t, p.handler)
	return p, e.URL
}

var stepSecret = v1alpha1.SecretKeySelector{Name: "federation", Key: "subject"}

// chainSpec is an issuer whose step "exchange" sends a Secret's value and
// whose request sends the step's token as bearer and its project field.
func chainSpec(base string) *v1alpha1.IssuerSpec {
	return &v1alpha1.IssuerSpec{
		Credentials: []v1alpha1.Credential{
			{Name: "subject", SecretKeyRef: &stepSecret},
			{Name: "federated", Step: &v1alpha1.StepSource{Name: "exchange"}},
			{Name: "project", Step: &v1alpha1.StepSource{Name: "exchange", Value: "project"}},
		},
		Steps: []v1alpha1.IssuerStep{{
			Name: "exchange",
			Request: v1alpha1.RequestSpec{URL: base + "/exchange", Body: &v1alpha1.BodySpec{Form: []v1alpha1.FormField{
				{Name: "subject_token", ValueSource: v1alpha1.ValueSource{Credential: "subject"}}}}},
			Response: v1alpha1.ResponseSpec{Token: "access_token",
				Expiry: &v1alpha1.ExpirySpec{Path: "expires_in", Format: v1alpha1.ExpiryRelativeSeconds},
				Error:  &v1alpha1.ErrorSpec{Code: "error", Message: "error_description"},
				Copy:   []v1alpha1.CopyField{{Key: "project", Path: "project"}}},
		}},
		Request: v1alpha1.RequestSpec{URL: base + "/mint",
			Auth:    &v1alpha1.AuthSpec{Bearer: &v1alpha1.ValueSource{Credential: "federated"}},
			Headers: []v1alpha1.Header{{Name: "X-Project", ValueSource: v1alpha1.ValueSource{Credential: "project"}}}},
		Response: v1alpha1.ResponseSpec{Token: "token",
			Expiry: &v1alpha1.ExpirySpec{Path: "expires_in", Format: v1alpha1.ExpiryRelativeSeconds},
			Error:  &v1alpha1.ErrorSpec{Code: "error", Message: "error_description"}},
		AllowInsecureHTTP: true,
	}
}

func chainCall(t *testing.T, spec *v1alpha1.IssuerSpec, scope string) Call {
	return Call{Spec: spec, HTTPClient: testClient(t), StepScope: scope,
		Secrets: map[v1alpha1.SecretKeySelector]string{stepSecret: "subject-value"}}
}

func TestStepsRunInOrderAndFeedTheRequest(t *testing.T) {
	p, base := startChain(t)
	token, err := testEngine().Issue(context.Background(), chainCall(t, chainSpec(base), "TokenIssuer/team/chain/uid-1|team"))
	if err != nil {
		t.Fatal(err)
	}
	if token.Value != "final-1" {
		t.Errorf("token = %q, want final-1", token.Value)
	}
	if got := strings.Join(p.order, ","); got != "exchange,mint" {
		t.Errorf("calls = %s, want exchange,mint", got)
	}
	if len(p.sentProject) != 1 || p.sentProject[0] != "p-42" {
		t.Errorf("the request sent X-Project %q, want the step's copied field p-42", p.sentProject)
	}
	if len(token.Fields) != 0 {
		t.Errorf("the final token carries the step's fields %v; they must never reach the Secret", token.Fields)
	}
	if want := testNow.Add(900 * time.Second); token.ExpiresAt == nil || !token.ExpiresAt.Equal(want) {
		t.Errorf("expiresAt = %v, want %v", token.ExpiresAt, want)
	}
}

func TestStepResultIsReusedWhileValid(t *testing.T) {
	p, base := startChain(t)
	clk := clocktesting.NewFakePassiveClock(testNow)
	engine := &Engine{Clock: clk}
	spec := chainSpec(base)
	call := chainCall(t, spec, "TokenIssuer/team/chain/uid-1|team")
	// A one-hour step token is reused until 80% of its lifetime (48m): four
	// 15-minute final tokens within that need one exchange.
	for i, at := range []time.Duration{0, 15 * time.Minute, 30 * time.Minute, 45 * time.Minute} {
		clk.SetTime(testNow.Add(at))
		if _, err := engine.Issue(context.Background(), call); err != nil {
			t.Fatalf("mint %d: %v", i, err)
		}
	}
	if p.exchanges != 1 || p.mints != 4 {
		t.Fatalf("exchanges = %d, mints = %d; want 1 and 4", p.exchanges, p.mints)
	}
	clk.SetTime(testNow.Add(49 * time.Minute))
	if _, err := engine.Issue(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	if p.exchanges != 2 {
		t.Errorf("after 80%% of the step token's lifetime, exchanges = %d, want 2", p.exchanges)
	}

	// Another scope (issuer or namespace), other credentials or other
	// parameters never share a result.
	other := chainCall(t, spec, "TokenIssuer/team/chain/uid-2|team")
	if _, err := engine.Issue(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	changed := chainCall(t, spec, "TokenIssuer/team/chain/uid-1|team")
	changed.Secrets[stepSecret] = "rotated-subject"
	if _, err := engine.Issue(context.Background(), changed); err != nil {
		t.Fatal(err)
	}
	if p.exchanges != 4 {
		t.Errorf("exchanges = %d, want 4: a new scope and a changed credential each need their own", p.exchanges)
	}

	// Without a scope nothing is kept.
	unscoped := chainCall(t, spec, "")
	for range 2 {
		if _, err := engine.Issue(context.Background(), unscoped); err != nil {
			t.Fatal(err)
		}
	}
	if p.exchanges != 6 {
		t.Errorf("exchanges = %d, want 6: without a scope every mint calls every step", p.exchanges)
	}
}

func TestStepWithoutExpiryIsNotReused(t *testing.T) {
	p, base := startChain(t)
	spec := chainSpec(base)
	spec.Steps[0].Response.Expiry = nil
	engine := testEngine()
	call := chainCall(t, spec, "scope")
	for range 2 {
		if _, err := engine.Issue(context.Background(), call); err != nil {
			t.Fatal(err)
		}
	}
	if p.exchanges != 2 {
		t.Errorf("exchanges = %d, want 2: a step token of unknown lifetime is never reused", p.exchanges)
	}
}

func TestStepFailureNamesTheStepAndStopsTheChain(t *testing.T) {
	p, base := startChain(t)
	p.failExchange = true
	_, err := testEngine().Issue(context.Background(), chainCall(t, chainSpec(base), "scope"))
	e := asError(t, err)
	if e.Step != "exchange" || !strings.HasPrefix(err.Error(), "step exchange: ") {
		t.Errorf("error %q (step %q) does not name the step", err, e.Step)
	}
	if e.Class != ClassBadRequest || e.Code != "invalid_grant" {
		t.Errorf("class %s, code %q; want BadRequest, invalid_grant", e.Class, e.Code)
	}
	if p.mints != 0 {
		t.Errorf("the request was made %d times after its step failed", p.mints)
	}
}

func TestStepTokenIsRedactedAndForgottenWhenRefused(t *testing.T) {
	p, base := startChain(t)
	engine := testEngine()
	call := chainCall(t, chainSpec(base), "scope")
	if _, err := engine.Issue(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	p.failMint = true
	_, err := engine.Issue(context.Background(), call)
	e := asError(t, err)
	if e.Class != ClassUnauthorized || e.Step != "" {
		t.Errorf("class %s, step %q; want Unauthorized from the request itself", e.Class, e.Step)
	}
	if strings.Contains(err.Error(), "STEP-CANARY") {
		t.Fatalf("the step token leaked into the error: %q", err)
	}
	if !strings.Contains(err.Error(), "is not valid") {
		t.Errorf("error %q lost the provider's message", err)
	}
	p.failMint = false
	if _, err := engine.Issue(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	if p.exchanges != 2 {
		t.Errorf("exchanges = %d, want 2: a refused request drops the step results it sent", p.exchanges)
	}
}

func TestChainExpiryIsTheEarliestStated(t *testing.T) {
	p, base := startChain(t)
	p.stepLifetime, p.finalLifetime = 600, 3600
	token, err := testEngine().Issue(context.Background(), chainCall(t, chainSpec(base), ""))
	if err != nil {
		t.Fatal(err)
	}
	if want := testNow.Add(10 * time.Minute); token.ExpiresAt == nil || !token.ExpiresAt.Equal(want) {
		t.Errorf("expiresAt = %v, want the step token's %v", token.ExpiresAt, want)
	}

	spec := chainSpec(base)
	spec.Response.Expiry = nil
	token, err = testEngine().Issue(context.Background(), chainCall(t, spec, ""))
	if err != nil {
		t.Fatal(err)
	}
	if want := testNow.Add(10 * time.Minute); token.ExpiresAt == nil || !token.ExpiresAt.Equal(want) {
		t.Errorf("with no stated final expiry, expiresAt = %v, want the step token's %v", token.ExpiresAt, want)
	}
}

func TestValidateSteps(t *testing.T) {
	base := "https://sts.example.com"
	cases := map[string]struct {
		edit func(*v1alpha1.IssuerSpec)
		want string
	}{
		"valid":       {func(*v1alpha1.IssuerSpec) {}, ""},
		"names twice": {func(s *v1alpha1.IssuerSpec) { s.Steps = append(s.Steps, s.Steps[0]) }, "steps[exchange]: declared twice"},
		"unknown step": {func(s *v1alpha1.IssuerSpec) { s.Credentials[1].Step.Name = "later" },
			`credentials[federated]: step "later" is not one of the issuer's steps`},
		"unknown value": {func(s *v1alpha1.IssuerSpec) { s.Credentials[2].Step.Value = "region" },
			`step "exchange" copies no field "region"`},
		"own result": {func(s *v1alpha1.IssuerSpec) {
			s.Steps[0].Request.Auth = &v1alpha1.AuthSpec{Bearer: &v1alpha1.ValueSource{Credential: "federated"}}
		}, `steps[exchange].request.auth.bearer: credential "federated" is the result of step "exchange": only the steps after it, request, refresh and revoke may use it`},
		"later step's result": {func(s *v1alpha1.IssuerSpec) {
			s.Steps = append(s.Steps, v1alpha1.IssuerStep{Name: "second",
				Request:  v1alpha1.RequestSpec{URL: base + "/second"},
				Response: v1alpha1.ResponseSpec{Token: "t"}})
			s.Credentials = append(s.Credentials, v1alpha1.Credential{Name: "second", Step: &v1alpha1.StepSource{Name: "second"}})
			s.Steps[0].Request.Headers = []v1alpha1.Header{{Name: "X-A", ValueSource: v1alpha1.ValueSource{Credential: "second"}}}
		}, `steps[exchange].request.headers[X-A]: credential "second" is the result of step "second"`},
		// refresh and revoke run after the steps: they may send a step's
		// result (inherited here with request's auth).
		"in refresh and revoke": {func(s *v1alpha1.IssuerSpec) {
			s.Response.RefreshToken = &v1alpha1.RefreshTokenSpec{Path: "refresh_token"}
			s.Refresh = &v1alpha1.RequestSpec{Body: &v1alpha1.BodySpec{Form: []v1alpha1.FormField{
				{Name: "refresh_token", ValueSource: v1alpha1.ValueSource{Issued: v1alpha1.IssuedRefreshToken}}}}}
			s.Revoke = &v1alpha1.RequestSpec{URL: base + "/revoke"}
		}, ""},
		"refresh token in step": {func(s *v1alpha1.IssuerSpec) {
			s.Steps[0].Response.RefreshToken = &v1alpha1.RefreshTokenSpec{Path: "refresh_token"}
		}, "refreshToken and tokenID have no meaning"},
		"copy key Token": {func(s *v1alpha1.IssuerSpec) {
			s.Steps[0].Response.Copy = append(s.Steps[0].Response.Copy, v1alpha1.CopyField{Key: "Token", Path: "x"})
		}, `key "Token" is empty, Token or listed twice`},
		"plain http step": {func(s *v1alpha1.IssuerSpec) {
			s.AllowInsecureHTTP = false
			s.Steps[0].Request.URL = "http://sts.example.com/exchange"
		}, "steps[exchange].request.url: plain http"},
		"undeclared url parameter": {func(s *v1alpha1.IssuerSpec) {
			s.Steps[0].Request.URL = base + "/{pool}"
		}, "steps[exchange].request.url: {pool} is not a declared parameter"},
		"step field in url": {func(s *v1alpha1.IssuerSpec) {
			s.Request.URL = base + "/projects/{steps.exchange.project}/mint"
			s.Revoke = &v1alpha1.RequestSpec{URL: base + "/projects/{steps.exchange.project}/revoke"}
		}, ""},
		"step token in url": {func(s *v1alpha1.IssuerSpec) {
			s.Request.URL = base + "/mint?t={steps.exchange.Token}"
		}, "request.url: {steps.exchange.Token}: a step's token never stands in a URL"},
		"secret step field in url": {func(s *v1alpha1.IssuerSpec) {
			s.Steps[0].Response.Copy[0].Secret = true
			s.Request.URL = base + "/projects/{steps.exchange.project}/mint"
		}, `request.url: {steps.exchange.project}: step "exchange" marks "project" secret`},
		"unknown step field in url": {func(s *v1alpha1.IssuerSpec) {
			s.Request.URL = base + "/projects/{steps.exchange.region}/mint"
		}, `step "exchange" copies no field "region"`},
		"unknown step in url": {func(s *v1alpha1.IssuerSpec) {
			s.Request.URL = base + "/projects/{steps.login.project}/mint"
		}, `{steps.login.project}: "login" is not one of the issuer's steps`},
		"own step field in its url": {func(s *v1alpha1.IssuerSpec) {
			s.Steps[0].Request.URL = base + "/exchange/{steps.exchange.project}"
		}, `steps[exchange].request.url: {steps.exchange.project}: step "exchange" does not run before this call`},
		"step field in the host": {func(s *v1alpha1.IssuerSpec) {
			s.Request.URL = "https://{steps.exchange.project}.example.com/mint"
		}, "may stand only in the path or the query"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec := chainSpec(base)
			spec.AllowInsecureHTTP = false
			tc.edit(spec)
			err := Validate(spec)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want it to contain %q", err, tc.want)
			}
		})
	}

	selfSigned := &v1alpha1.IssuerSpec{SignedJWT: &v1alpha1.SignedJWT{}, Steps: chainSpec(base).Steps}
	if err := Validate(selfSigned); err == nil || !strings.Contains(err.Error(), "steps are calls") {
		t.Errorf("Validate(signedJWT with steps) = %v", err)
	}
}

func TestStepSecretsAndServiceAccountTokensAreRequested(t *testing.T) {
	spec := chainSpec("https://sts.example.com")
	sa := v1alpha1.ServiceAccountTokenSource{ServiceAccountName: "workload", Audience: "sts"}
	spec.Credentials[0] = v1alpha1.Credential{Name: "subject", ServiceAccountToken: &sa}
	if got := ServiceAccountTokenSources(spec); len(got) != 1 || got[0] != sa {
		t.Errorf("ServiceAccountTokenSources = %v, want the step's %v", got, sa)
	}
	if got := SecretRefs(chainSpec("https://sts.example.com")); len(got) != 1 || got[0] != stepSecret {
		t.Errorf("SecretRefs = %v, want the step's %v", got, stepSecret)
	}
}

func TestRenderShowsWhichStepGivesAValue(t *testing.T) {
	rendered, err := testEngine().Render(Call{Spec: chainSpec("https://iam.example.com"),
		Secrets: map[v1alpha1.SecretKeySelector]string{stepSecret: "subject-value"}})
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{}
	for _, h := range rendered.Headers {
		headers[h.Name] = h.Value
	}
	if got := headers["Authorization"]; got != "Bearer <token of step exchange>" {
		t.Errorf("Authorization = %q", got)
	}
	if got := headers["X-Project"]; got != "<project of step exchange>" {
		t.Errorf("X-Project = %q", got)
	}
	if rendered.URL != "https://iam.example.com/mint" {
		t.Errorf("URL = %q: Render shows the issuer's request", rendered.URL)
	}
}

func TestStepFieldStandsInTheURL(t *testing.T) {
	p, base := startChain(t)
	spec := chainSpec(base)
	spec.Request.URL = base + "/projects/{steps.exchange.project}/mint"
	engine := testEngine()
	call := chainCall(t, spec, "scope")
	for range 2 {
		if _, err := engine.Issue(context.Background(), call); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"/projects/p-42/mint", "/projects/p-42/mint"}; strings.Join(p.mintPaths, ",") != strings.Join(want, ",") {
		t.Errorf("mint paths = %q, want %q", p.mintPaths, want)
	}
	if p.exchanges != 1 {
		t.Errorf("exchanges = %d, want 1: the step's result, field included, is reused", p.exchanges)
	}

	// A value that would change the path is one escaped segment...
	p, base = startChain(t)
	p.project = "p/42"
	spec = chainSpec(base)
	spec.Request.URL = base + "/projects/{steps.exchange.project}/mint"
	if _, err := testEngine().Issue(context.Background(), chainCall(t, spec, "")); err != nil {
		t.Fatal(err)
	}
	if len(p.mintPaths) != 1 || p.mintPaths[0] != "/projects/p%2F42/mint" {
		t.Errorf("mint paths = %q, want the value as one escaped segment", p.mintPaths)
	}
	// ...and a dot segment is refused before any call that would send it.
	p, base = startChain(t)
	p.project = ".."
	spec = chainSpec(base)
	spec.Request.URL = base + "/projects/{steps.exchange.project}/mint"
	_, err := testEngine().Issue(context.Background(), chainCall(t, spec, ""))
	if err == nil || !strings.Contains(err.Error(), `field "project" of step "exchange" cannot stand in the URL`) {
		t.Fatalf("Issue = %v, want the step's field refused in the URL", err)
	}
	if p.mints != 0 {
		t.Errorf("mints = %d, want none", p.mints)
	}

	// Rendered without running the steps, the URL shows which step gives the value.
	rendered, err := testEngine().Render(Call{Spec: chainSpec("https://iam.example.com"),
		Secrets: map[v1alpha1.SecretKeySelector]string{stepSecret: "subject-value"}})
	if err != nil {
		t.Fatal(err)
	}
	spec = chainSpec("https://iam.example.com")
	spec.Request.URL = "https://iam.example.com/projects/{steps.exchange.project}/mint"
	if rendered, err = testEngine().Render(Call{Spec: spec, Secrets: map[v1alpha1.SecretKeySelector]string{stepSecret: "subject-value"}}); err != nil {
		t.Fatal(err)
	}
	if rendered.URL != "https://iam.example.com/projects/<project of step exchange>/mint" {
		t.Errorf("URL = %q", rendered.URL)
	}
}

func TestRevokeRunsTheStepsItsURLNames(t *testing.T) {
	// The request sends nothing of the step: revoke runs the steps only when
	// its URL names a step's field.
	spec := chainSpec("https://iam.example.com")
	spec.Request.Auth = &v1alpha1.AuthSpec{Bearer: &v1alpha1.ValueSource{Credential: "subject"}}
	spec.Request.Headers = nil
	spec.Revoke = &v1alpha1.RequestSpec{URL: "https://iam.example.com/revoke"}
	if usesSteps(spec, callRevoke) {
		t.Error("usesSteps(revoke) = true for a revoke that sends nothing of a step")
	}
	spec.Revoke.URL = "https://iam.example.com/projects/{steps.exchange.project}/revoke"
	if !usesSteps(spec, callRevoke) {
		t.Error("usesSteps(revoke) = false for a revoke URL naming a step's field")
	}
}

func TestLargeStepResultIsNotKept(t *testing.T) {
	p, base := startChain(t)
	// Copied fields are at most 4 KiB each: 5 of them pass the bound.
	p.padding = strings.Repeat("x", 4000)
	spec := chainSpec(base)
	for i := range 5 {
		spec.Steps[0].Response.Copy = append(spec.Steps[0].Response.Copy, v1alpha1.CopyField{Key: fmt.Sprintf("padding-%d", i), Path: "padding"})
	}
	engine := testEngine()
	call := chainCall(t, spec, "scope")
	for range 2 {
		if _, err := engine.Issue(context.Background(), call); err != nil {
			t.Fatal(err)
		}
	}
	if p.exchanges != 2 {
		t.Errorf("exchanges = %d, want 2: a result over %d bytes is used once and not kept", p.exchanges, maxStepResultBytes)
	}
}

// A refresh request may send a step's result: the steps run first (reused
// while valid), and only then the refresh.
func TestRefreshSendsAStepResult(t *testing.T) {
	p, base := startChain(t)
	spec := chainSpec(base)
	spec.Response.RefreshToken = &v1alpha1.RefreshTokenSpec{Path: "refresh_token"}
	// refresh inherits request's URL and its bearer, the step's token.
	spec.Refresh = &v1alpha1.RequestSpec{Body: &v1alpha1.BodySpec{Form: []v1alpha1.FormField{
		{Name: "refresh_token", ValueSource: v1alpha1.ValueSource{Issued: v1alpha1.IssuedRefreshToken}}}}}
	call := chainCall(t, spec, "TokenIssuer/team/chain/uid-1|team")
	call.RefreshToken = "refresh-canary"
	token, err := testEngine().Issue(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	if !token.Refreshed || strings.Join(p.order, ",") != "exchange,mint" {
		t.Errorf("refreshed %v, calls %v; want the step, then the refresh with its token", token.Refreshed, p.order)
	}
}

// TestStepTokenNeverReachesCopiedFields: a final answer echoing the step's
// token cannot copy it into the Secret, and every call is traced in order.
func TestStepTokenNeverReachesCopiedFields(t *testing.T) {
	_, base := startChain(t)
	spec := chainSpec(base)
	spec.Response.Copy = []v1alpha1.CopyField{{Key: "caller", Path: "caller"}}
	call := chainCall(t, spec, "")
	var calls []Exchange
	call.Trace = func(x Exchange) { calls = append(calls, x) }
	token, err := (&Engine{}).Issue(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	if got := token.Fields["caller"]; strings.Contains(got, "STEP-CANARY") || got != "bearer [redacted]" {
		t.Errorf("copied field %q holds the step token", got)
	}
	if len(calls) != 2 || calls[0].Call != "steps[exchange].request" || calls[1].Call != "request" ||
		calls[0].Status != http.StatusOK || calls[1].Status != http.StatusOK || calls[0].Method != http.MethodPost {
		t.Errorf("traced calls %+v, want the step then the request, both 200", calls)
	}
}
