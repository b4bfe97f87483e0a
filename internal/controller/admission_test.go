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

package controller

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// Every CEL rule of the CRDs, proven against the real apiserver: an invalid
// manifest is refused with a message a user can act on.
var _ = Describe("admission", func() {
	valid := func() *tokensv1alpha1.TokenIssuer {
		spec := transactionsSpec("https://tokens.example.com")
		spec.AllowInsecureHTTP = false
		return &tokensv1alpha1.TokenIssuer{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-", Namespace: "default"},
			Spec:       spec,
		}
	}
	lit := func(s string) tokensv1alpha1.ValueSource { return tokensv1alpha1.ValueSource{Value: ptr.To(s)} }

	It("accepts the valid baseline", func() {
		ti := valid()
		Expect(k8sClient.Create(ctx, ti)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, ti)
	})

	It("accepts a refresh that extends the held token without a refresh token", func() {
		ti := valid()
		ti.Spec.RefreshExtends = true
		ti.Spec.Refresh = &tokensv1alpha1.RequestSpec{URL: "https://tokens.example.com/renew"}
		Expect(ti.Spec.Response.Expiry).NotTo(BeNil())
		Expect(k8sClient.Create(ctx, ti)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, ti)
	})

	It("accepts a step's copied field in a later call's URL", func() {
		ti := valid()
		ti.Spec.Credentials = append(ti.Spec.Credentials, tokensv1alpha1.Credential{Name: "account-token", Step: &tokensv1alpha1.StepSource{Name: "account"}})
		ti.Spec.Steps = []tokensv1alpha1.IssuerStep{{Name: "account",
			Request:  tokensv1alpha1.RequestSpec{URL: "https://tokens.example.com/account"},
			Response: tokensv1alpha1.ResponseSpec{Token: "token", Copy: []tokensv1alpha1.CopyField{{Key: "account_id", Path: "id"}}}}}
		ti.Spec.Request.URL = "https://tokens.example.com/accounts/{steps.account.account_id}/token"
		Expect(k8sClient.Create(ctx, ti)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, ti)
	})

	DescribeTable("refuses an invalid issuer",
		func(mutate func(*tokensv1alpha1.IssuerSpec), message string) {
			ti := valid()
			mutate(&ti.Spec)
			err := k8sClient.Create(ctx, ti)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("plain http without allowInsecureHTTP",
			func(s *tokensv1alpha1.IssuerSpec) { s.Request.URL = "http://tokens.example.com/token" },
			"token endpoint URLs must use https; set allowInsecureHTTP to allow plain http"),
		Entry("plain http in refresh",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Response.RefreshToken = &tokensv1alpha1.RefreshTokenSpec{Path: "refresh_token"}
				s.Refresh = &tokensv1alpha1.RequestSpec{URL: "http://tokens.example.com/token"}
			},
			"token endpoint URLs must use https"),
		Entry("refresh without a refresh token to read",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Refresh = &tokensv1alpha1.RequestSpec{URL: "https://tokens.example.com/token"}
			},
			"refresh needs response.refreshToken"),
		Entry("refreshExtends without refresh",
			func(s *tokensv1alpha1.IssuerSpec) { s.RefreshExtends = true },
			"refreshExtends needs refresh and response.expiry"),
		Entry("refreshExtends with a refresh token to read",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.RefreshExtends = true
				s.Response.RefreshToken = &tokensv1alpha1.RefreshTokenSpec{Path: "refresh_token"}
				s.Refresh = &tokensv1alpha1.RequestSpec{URL: "https://tokens.example.com/renew"}
			},
			"refreshExtends needs refresh and response.expiry (the new expiry), and no response.refreshToken"),
		Entry("a URL that is not a URL",
			func(s *tokensv1alpha1.IssuerSpec) { s.Request.URL = "https://exa mple.com/%%" },
			"url must be an absolute http(s) URL"),
		Entry("a URL of another scheme",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.URL = "ftp://tokens.example.com/token"
				s.AllowInsecureHTTP = true
			},
			"url must be an absolute http(s) URL"),
		Entry("both bearer and basic",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.Auth.Basic = &tokensv1alpha1.BasicAuth{Username: lit("u"), Password: lit("p")}
			},
			"exactly one of bearer, basic or awsSigV4 must be set"),
		Entry("a json literal as a bearer token",
			func(s *tokensv1alpha1.IssuerSpec) { s.Request.Auth.Bearer = &tokensv1alpha1.ValueSource{JSON: `"x"`} },
			"json literals are for JSON body fields; use value"),
		Entry("a json literal in basic auth",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.Auth = &tokensv1alpha1.AuthSpec{Basic: &tokensv1alpha1.BasicAuth{
					Username: tokensv1alpha1.ValueSource{JSON: "1"}, Password: lit("p")}}
			},
			"json literals are for JSON body fields; use value"),
		Entry("a json literal in a header",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.Headers = []tokensv1alpha1.Header{{Name: "X-A", ValueSource: tokensv1alpha1.ValueSource{JSON: "1"}}}
			},
			"json literals are for JSON body fields; use value in headers"),
		Entry("a json literal in a form",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.Body = &tokensv1alpha1.BodySpec{Form: []tokensv1alpha1.FormField{{Name: "a", ValueSource: tokensv1alpha1.ValueSource{JSON: "1"}}}}
			},
			"json literals are for JSON body fields; use value in forms"),
		Entry("both a json and a form body",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.Body.Form = []tokensv1alpha1.FormField{{Name: "a", ValueSource: lit("b")}}
			},
			"exactly one of json or form must be set"),
		Entry("a value with two sources",
			func(s *tokensv1alpha1.IssuerSpec) { s.Request.Body.JSON[1].Generate = tokensv1alpha1.GenerateUUID },
			"exactly one of value, json, credential, generate, parameter or issued must be set"),
		Entry("a value with no source",
			func(s *tokensv1alpha1.IssuerSpec) { s.Request.Body.JSON[1].Value = nil },
			"exactly one of value, json, credential, generate, parameter or issued must be set"),
		Entry("a parameter bound to a namespace label on a TokenIssuer",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Parameters[0].Default, s.Parameters[0].FromNamespaceLabel = nil, "example.com/lifetime"
			},
			"fromNamespaceLabel is for ClusterTokenIssuers: a TokenIssuer serves only its own namespace"),
		Entry("minimum above maximum",
			func(s *tokensv1alpha1.IssuerSpec) { s.Parameters[0].Minimum = ptr.To[int64](90000) },
			"minimum must not be greater than maximum"),
		Entry("a minimum on a string",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Parameters = append(s.Parameters, tokensv1alpha1.ParameterSpec{Name: "d", Type: tokensv1alpha1.ParameterString, Minimum: ptr.To[int64](1)})
			},
			"minimum and maximum apply to Integer parameters only"),
		Entry("a pattern on an integer",
			func(s *tokensv1alpha1.IssuerSpec) { s.Parameters[0].Pattern = "^[0-9]+$" },
			"pattern and enum apply to String, StringList and StringMap parameters only"),
		Entry("an expiry without a path",
			func(s *tokensv1alpha1.IssuerSpec) { s.Response.Expiry.Path = "" },
			"path is required unless format is JWT"),
		Entry("an unknown expiry format",
			func(s *tokensv1alpha1.IssuerSpec) { s.Response.Expiry.Format = "Minutes" },
			`supported values: "UnixSeconds", "UnixMilliseconds", "RFC3339", "RelativeSeconds", "JWT"`),
		Entry("an unknown generator",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.Body.JSON[1] = tokensv1alpha1.JSONField{Path: "id", ValueSource: tokensv1alpha1.ValueSource{Generate: "Random"}}
			},
			`supported values: "UUID", "UnixSeconds", "UnixMilliseconds", "RFC3339"`),
		Entry("a header name with a space",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.Headers = []tokensv1alpha1.Header{{Name: "X A", ValueSource: lit("b")}}
			},
			"spec.request.headers[0].name"),
		Entry("a request without a URL",
			func(s *tokensv1alpha1.IssuerSpec) { s.Request.URL = "" },
			"request.url is required"),
		Entry("a reserved header",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.Headers = []tokensv1alpha1.Header{{Name: "content-type", ValueSource: lit("text/plain")}}
			},
			"Content-Type, Content-Length, Host, Transfer-Encoding and Connection are set by tokenmint"),
		Entry("a credential with two sources",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Credentials[0].ServiceAccountToken = &tokensv1alpha1.ServiceAccountTokenSource{ServiceAccountName: "a", Audience: "b"}
			},
			"exactly one of secretKeyRef, signedJWT, serviceAccountToken or step must be set"),
		Entry("a credential with no source",
			func(s *tokensv1alpha1.IssuerSpec) { s.Credentials[0].SecretKeyRef = nil },
			"exactly one of secretKeyRef, signedJWT, serviceAccountToken or step must be set"),
		Entry("a credential with a step and a Secret",
			func(s *tokensv1alpha1.IssuerSpec) { s.Credentials[0].Step = &tokensv1alpha1.StepSource{Name: "sts"} },
			"exactly one of secretKeyRef, signedJWT, serviceAccountToken or step must be set"),
		Entry("a step over plain http",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Steps = []tokensv1alpha1.IssuerStep{{Name: "sts", Request: tokensv1alpha1.RequestSpec{URL: "http://sts.example.com/token"},
					Response: tokensv1alpha1.ResponseSpec{Token: "access_token"}}}
			},
			"step URLs must use https"),
		Entry("a step without a URL",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Steps = []tokensv1alpha1.IssuerStep{{Name: "sts", Response: tokensv1alpha1.ResponseSpec{Token: "access_token"}}}
			},
			"steps[].request.url is required"),
		Entry("a step reading a refresh token",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Steps = []tokensv1alpha1.IssuerStep{{Name: "sts", Request: tokensv1alpha1.RequestSpec{URL: "https://sts.example.com/token"},
					Response: tokensv1alpha1.ResponseSpec{Token: "access_token", RefreshToken: &tokensv1alpha1.RefreshTokenSpec{Path: "refresh_token"}}}}
			},
			"refreshToken and tokenID have no meaning in a step"),
		Entry("more than four steps",
			func(s *tokensv1alpha1.IssuerSpec) {
				for _, name := range []string{"a", "b", "c", "d", "e"} {
					s.Steps = append(s.Steps, tokensv1alpha1.IssuerStep{Name: name, Request: tokensv1alpha1.RequestSpec{URL: "https://sts.example.com/token"},
						Response: tokensv1alpha1.ResponseSpec{Token: "access_token"}})
				}
			},
			"spec.steps: Too many"),
		Entry("a credential declared twice",
			func(s *tokensv1alpha1.IssuerSpec) { s.Credentials = append(s.Credentials, s.Credentials[0]) },
			"spec.credentials[1]: Duplicate value"),
		Entry("a credential name that is not a DNS label",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Credentials[0].Name = "Auth_Token"
				s.Request.Auth.Bearer.Credential = "Auth_Token"
			},
			"spec.credentials[0].name"),
		Entry("seventeen credentials",
			func(s *tokensv1alpha1.IssuerSpec) {
				for i := range 16 {
					s.Credentials = append(s.Credentials, tokensv1alpha1.Credential{Name: fmt.Sprint("c", i),
						SecretKeyRef: &tokensv1alpha1.SecretKeySelector{Name: "s", Key: "k"}})
				}
			},
			"spec.credentials: Too many: 17: must have at most 16 items"),
		Entry("{tokenID} outside revoke",
			func(s *tokensv1alpha1.IssuerSpec) { s.Request.URL = "https://tokens.example.com/token/{tokenID}" },
			"{tokenID} is only meaningful in revoke.url"),
		Entry("a copy of the refresh token into the Secret",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Response.RefreshToken = &tokensv1alpha1.RefreshTokenSpec{Path: "auth.refresh_token"}
				s.Response.Copy = append(s.Response.Copy, tokensv1alpha1.CopyField{Key: "auth", Path: "auth"})
			},
			"response.copy must not copy the refresh token"),
		Entry("a timeout of an hour",
			func(s *tokensv1alpha1.IssuerSpec) { s.Timeout = &tokensv1alpha1.Duration{Duration: time.Hour} },
			"timeout must be between 1s and 60s"),
		Entry("a timeout of zero",
			func(s *tokensv1alpha1.IssuerSpec) { s.Timeout = &tokensv1alpha1.Duration{} },
			"timeout must be between 1s and 60s"),
		Entry("a timeout in days",
			func(s *tokensv1alpha1.IssuerSpec) { s.Timeout = &tokensv1alpha1.Duration{Invalid: "1d"} },
			"spec.timeout"),
		Entry("a rate limit of no calls",
			func(s *tokensv1alpha1.IssuerSpec) { s.RateLimit = &tokensv1alpha1.RateLimit{} },
			"spec.rateLimit.calls"),
		Entry("a rate limit counted over half a second",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.RateLimit = &tokensv1alpha1.RateLimit{Calls: 1, Period: &tokensv1alpha1.Duration{Duration: 500 * time.Millisecond}}
			},
			"period must be between 1s and 24h"),
		Entry("a rate limit counted over two days",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.RateLimit = &tokensv1alpha1.RateLimit{Calls: 1, Period: &tokensv1alpha1.Duration{Duration: 48 * time.Hour}}
			},
			"period must be between 1s and 24h"),
		Entry("a rate limit whose burst exceeds its calls",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.RateLimit = &tokensv1alpha1.RateLimit{Calls: 5, Burst: ptr.To[int32](6)}
			},
			"burst must not be greater than calls"),
		Entry("a default lifetime of 30 seconds",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.DefaultLifetime = &tokensv1alpha1.Duration{Duration: 30 * time.Second}
			},
			"defaultLifetime must be between 1m and 8760h"),
		Entry("a default lifetime over a year",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.DefaultLifetime = &tokensv1alpha1.Duration{Duration: 8761 * time.Hour}
			},
			"defaultLifetime must be between 1m and 8760h"),
		Entry("a reissue window of two days",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.ReissueWindow = &tokensv1alpha1.Duration{Duration: 48 * time.Hour}
			},
			"reissueWindow must be between 0s and 24h"),
		Entry("a grace period of two days",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.RevokeGracePeriod = &tokensv1alpha1.Duration{Duration: 48 * time.Hour}
			},
			"revokeGracePeriod must be at most 24h"),
		Entry("an undeclared parameter in the URL",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.URL = "https://tokens.example.com/installations/{installation}/token"
			},
			"every {name} in a URL must be a declared parameter"),
		Entry("{tokenID} in the request URL",
			func(s *tokensv1alpha1.IssuerSpec) { s.Request.URL = "https://tokens.example.com/{tokenID}" },
			"every {name} in a URL must be a declared parameter"),
		Entry("a parameter in the host",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Parameters = append(s.Parameters, tokensv1alpha1.ParameterSpec{Name: "tenant"})
				s.Request.URL = "https://{tenant}.example.com/token"
			},
			"a {placeholder} cannot stand in the host of a URL"),
		Entry("a stray brace in the URL",
			func(s *tokensv1alpha1.IssuerSpec) { s.Request.URL = "https://tokens.example.com/token?x={a" },
			"a URL placeholder is {name}"),
		Entry("a step placeholder whose step is no step name",
			func(s *tokensv1alpha1.IssuerSpec) { s.Request.URL = "https://tokens.example.com/{steps.Bad_Step.id}" },
			"a URL placeholder is {name}, name a parameter, {steps.<step>.<key>}"),
		Entry("a parameter named tokenID",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Parameters = append(s.Parameters, tokensv1alpha1.ParameterSpec{Name: "tokenID"})
			},
			"tokenID is reserved for the token id in revoke.url"),
		Entry("keys on a String parameter",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Parameters = append(s.Parameters, tokensv1alpha1.ParameterSpec{Name: "p", Type: "String", Keys: []string{"a"}})
			},
			"keys apply to StringMap parameters only"),
		Entry("both a request and signedJWT",
			func(s *tokensv1alpha1.IssuerSpec) { s.SignedJWT = selfSignedJWT() },
			"set exactly one of request (a token endpoint), signedJWT (a token tokenmint signs itself) or awsPresignedURL"),
		Entry("neither a request nor signedJWT",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request, s.Response = tokensv1alpha1.RequestSpec{}, tokensv1alpha1.ResponseSpec{}
			},
			"set exactly one of request (a token endpoint), signedJWT (a token tokenmint signs itself) or awsPresignedURL"),
		Entry("signedJWT with a response",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request, s.SignedJWT = tokensv1alpha1.RequestSpec{}, selfSignedJWT()
			},
			"response is required with request, and has no meaning with signedJWT"),
		Entry("signedJWT with a revoke call",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request, s.Response, s.SignedJWT = tokensv1alpha1.RequestSpec{}, tokensv1alpha1.ResponseSpec{}, selfSignedJWT()
				s.Credentials = nil
				s.Revoke = &tokensv1alpha1.RequestSpec{URL: "https://tokens.example.com/revoke"}
			},
			"an issuer with signedJWT makes no call"),
		Entry("signedJWT with credentials",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request, s.Response, s.SignedJWT = tokensv1alpha1.RequestSpec{}, tokensv1alpha1.ResponseSpec{}, selfSignedJWT()
			},
			"an issuer with signedJWT makes no call"),
		Entry("a self-signed JWT of two hours",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request, s.Response, s.SignedJWT = tokensv1alpha1.RequestSpec{}, tokensv1alpha1.ResponseSpec{}, selfSignedJWT()
				s.Credentials = nil
				s.SignedJWT.Lifetime = &tokensv1alpha1.Duration{Duration: 2 * time.Hour}
			},
			"lifetime must be between 10s and 1h"),
		Entry("awsSigV4 with a literal secret access key",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.Auth = &tokensv1alpha1.AuthSpec{AWSSigV4: awsSigV4()}
				s.Request.Auth.AWSSigV4.SecretAccessKey = lit("inline-secret")
			},
			"secretAccessKey must be a credential"),
		Entry("awsSigV4 with a literal session token",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.Auth = &tokensv1alpha1.AuthSpec{AWSSigV4: awsSigV4()}
				s.Request.Auth.AWSSigV4.SessionToken = ptr.To(lit("inline-session"))
			},
			"sessionToken must be a credential"),
		Entry("awsSigV4 with bearer",
			func(s *tokensv1alpha1.IssuerSpec) { s.Request.Auth.AWSSigV4 = awsSigV4() },
			"exactly one of bearer, basic or awsSigV4 must be set"),
		Entry("awsSigV4 with a region that is not one",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.Auth = &tokensv1alpha1.AuthSpec{AWSSigV4: awsSigV4()}
				s.Request.Auth.AWSSigV4.Region = "us-east-1/../x"
			},
			"spec.request.auth.awsSigV4.region"),
		Entry("awsSigV4 with a service that is not one",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.Auth = &tokensv1alpha1.AuthSpec{AWSSigV4: awsSigV4()}
				s.Request.Auth.AWSSigV4.Service = "ECR Service"
			},
			"spec.request.auth.awsSigV4.service"),
		Entry("jsonContentType with a form body",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request.Body = &tokensv1alpha1.BodySpec{JSONContentType: "application/x-amz-json-1.1",
					Form: []tokensv1alpha1.FormField{{Name: "a", ValueSource: lit("b")}}}
			},
			"jsonContentType is for JSON bodies"),
		Entry("awsPresignedURL with a request",
			func(s *tokensv1alpha1.IssuerSpec) { s.AWSPresignedURL = awsPresigned() },
			"set exactly one of request (a token endpoint), signedJWT (a token tokenmint signs itself) or awsPresignedURL"),
		Entry("awsPresignedURL with both eks and rds",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request, s.Response, s.AWSPresignedURL = tokensv1alpha1.RequestSpec{}, tokensv1alpha1.ResponseSpec{}, awsPresigned()
				s.AWSPresignedURL.RDS = &tokensv1alpha1.AWSRDSToken{Host: "db.example.com", Port: 5432, User: "app"}
			},
			"set exactly one of eks or rds"),
		Entry("awsPresignedURL with a revoke request",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request, s.Response, s.AWSPresignedURL = tokensv1alpha1.RequestSpec{}, tokensv1alpha1.ResponseSpec{}, awsPresigned()
				s.Revoke = &tokensv1alpha1.RequestSpec{URL: "https://sts.example.com/"}
			},
			"an issuer with awsPresignedURL makes no call of its own"),
		Entry("an RDS token for a host that is not a DNS name",
			func(s *tokensv1alpha1.IssuerSpec) {
				s.Request, s.Response, s.AWSPresignedURL = tokensv1alpha1.RequestSpec{}, tokensv1alpha1.ResponseSpec{}, awsPresigned()
				s.AWSPresignedURL.EKS, s.AWSPresignedURL.RDS = nil, &tokensv1alpha1.AWSRDSToken{Host: "db.example.com/x?", Port: 5432, User: "app"}
			},
			"spec.awsPresignedURL.rds.host"),
	)

	It("accepts AWS Signature Version 4 and pre-signed URL issuers", func() {
		signed := valid()
		signed.Spec.Request.Auth = &tokensv1alpha1.AuthSpec{AWSSigV4: awsSigV4()}
		signed.Spec.Request.Body = &tokensv1alpha1.BodySpec{JSONContentType: "application/x-amz-json-1.1"}
		Expect(k8sClient.Create(ctx, signed)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, signed)
		presigned := valid()
		presigned.Spec.Request, presigned.Spec.Response, presigned.Spec.AWSPresignedURL =
			tokensv1alpha1.RequestSpec{}, tokensv1alpha1.ResponseSpec{}, awsPresigned()
		Expect(k8sClient.Create(ctx, presigned)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, presigned)
		// Its credentials may come from a step: STS's temporary credentials.
		chained := valid()
		chained.Spec.Request, chained.Spec.Response, chained.Spec.AWSPresignedURL =
			tokensv1alpha1.RequestSpec{}, tokensv1alpha1.ResponseSpec{}, awsPresigned()
		chained.Spec.Steps = []tokensv1alpha1.IssuerStep{{Name: "sts", Request: tokensv1alpha1.RequestSpec{URL: "https://sts.example.com/"},
			Response: tokensv1alpha1.ResponseSpec{Token: "token"}}}
		Expect(k8sClient.Create(ctx, chained)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, chained)
	})

	It("accepts a rate limit as providers document theirs, and defaults its period", func() {
		ti := valid()
		ti.Spec.RateLimit = &tokensv1alpha1.RateLimit{Calls: 5000, Period: &tokensv1alpha1.Duration{Duration: time.Hour}, Burst: ptr.To[int32](10)}
		Expect(k8sClient.Create(ctx, ti)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, ti)
		other := valid()
		other.Spec.RateLimit = &tokensv1alpha1.RateLimit{Calls: 2}
		Expect(k8sClient.Create(ctx, other)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, other)
		Expect(other.Spec.RateLimit.Period).NotTo(BeNil())
		Expect(other.Spec.RateLimit.Period.Duration).To(Equal(time.Second))
	})

	It("accepts an issuer whose token is a JWT it signs, with no request", func() {
		ti := valid()
		ti.Spec = tokensv1alpha1.IssuerSpec{SignedJWT: selfSignedJWT()}
		Expect(k8sClient.Create(ctx, ti)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, ti)
	})

	It("refuses a ClusterTokenIssuer whose allowedNamespaces selects nothing", func() {
		cti := &tokensv1alpha1.ClusterTokenIssuer{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-"},
			Spec: tokensv1alpha1.ClusterTokenIssuerSpec{
				IssuerSpec:        valid().Spec,
				AllowedNamespaces: &tokensv1alpha1.AllowedNamespaces{},
			},
		}
		err := k8sClient.Create(ctx, cti)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("set names, selector, or both"))
	})

	It("binds a ClusterTokenIssuer's String or Integer parameter, and nothing else, to a namespace label", func() {
		cti := func(mutate func(*tokensv1alpha1.ParameterSpec)) *tokensv1alpha1.ClusterTokenIssuer {
			spec := valid().Spec
			spec.Parameters[0].Default = nil
			mutate(&spec.Parameters[0])
			return &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-"},
				Spec: tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: spec}}
		}
		bound := cti(func(p *tokensv1alpha1.ParameterSpec) { p.FromNamespaceLabel = "example.com/lifetime" })
		Expect(k8sClient.Create(ctx, bound)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, bound)
		for message, mutate := range map[string]func(*tokensv1alpha1.ParameterSpec){
			"fromNamespaceLabel applies to String and Integer parameters only": func(p *tokensv1alpha1.ParameterSpec) {
				p.Type, p.Minimum, p.Maximum, p.FromNamespaceLabel = tokensv1alpha1.ParameterStringList, nil, nil, "example.com/scopes"
			},
			"spec.parameters[0].fromNamespaceLabel": func(p *tokensv1alpha1.ParameterSpec) { p.FromNamespaceLabel = "not a label!" },
		} {
			err := k8sClient.Create(ctx, cti(mutate))
			Expect(err).To(HaveOccurred(), message)
			Expect(err.Error()).To(ContainSubstring(message))
		}
	})

	DescribeTable("refuses an invalid AccessToken",
		func(mutate func(*tokensv1alpha1.AccessTokenSpec), message string) {
			at := &tokensv1alpha1.AccessToken{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-", Namespace: "default"},
				Spec: tokensv1alpha1.AccessTokenSpec{
					IssuerRef: tokensv1alpha1.IssuerReference{Name: "cable"},
					Secret:    tokensv1alpha1.SecretTemplate{Name: "token"},
				},
			}
			mutate(&at.Spec)
			err := k8sClient.Create(ctx, at)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("both renewBefore and renewBeforePercentage",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.RenewBefore = &tokensv1alpha1.Duration{Duration: 60e9}
				s.RenewBeforePercentage = ptr.To[int32](20)
			},
			"set at most one of renewBefore and renewBeforePercentage"),
		Entry("a percentage of 100",
			func(s *tokensv1alpha1.AccessTokenSpec) { s.RenewBeforePercentage = ptr.To[int32](100) },
			"spec.renewBeforePercentage"),
		Entry("33 parameters",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Parameters = map[string]apiextensionsv1.JSON{}
				for i := range 33 {
					s.Parameters[fmt.Sprintf("p%d", i)] = apiextensionsv1.JSON{Raw: []byte(`"v"`)}
				}
			},
			"spec.parameters: Too many: 33: must have at most 32 items"),
		Entry("an unknown issuer kind",
			func(s *tokensv1alpha1.AccessTokenSpec) { s.IssuerRef.Kind = "Issuer" },
			`supported values: "TokenIssuer", "ClusterTokenIssuer"`),
		Entry("a Secret name that is not a DNS name",
			func(s *tokensv1alpha1.AccessTokenSpec) { s.Secret.Name = "Not_A_Name" },
			"spec.secret.name"),
		Entry("an unknown restart target kind",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.RestartTargets = []tokensv1alpha1.RestartTarget{{Kind: "Pod", Name: "x"}}
			},
			`supported values: "Deployment", "StatefulSet", "DaemonSet"`),
		Entry("a maxAge in days",
			func(s *tokensv1alpha1.AccessTokenSpec) { s.MaxAge = &tokensv1alpha1.Duration{Invalid: "30d"} },
			"spec.maxAge"),
		Entry("a negative maxAge",
			func(s *tokensv1alpha1.AccessTokenSpec) { s.MaxAge = &tokensv1alpha1.Duration{Invalid: "-5m"} },
			"spec.maxAge"),
		Entry("a maxAge of a second",
			func(s *tokensv1alpha1.AccessTokenSpec) { s.MaxAge = &tokensv1alpha1.Duration{Duration: time.Second} },
			"maxAge must be between 1m and 8760h"),
		Entry("a renewBefore of unknown unit",
			func(s *tokensv1alpha1.AccessTokenSpec) { s.RenewBefore = &tokensv1alpha1.Duration{Invalid: "1x"} },
			"spec.renewBefore"),
		Entry("a ServiceAccount token Secret",
			func(s *tokensv1alpha1.AccessTokenSpec) { s.Secret.Type = "kubernetes.io/service-account-token" },
			`supported values: "Opaque", "kubernetes.io/dockerconfigjson", "kubernetes.io/basic-auth"`),
		Entry("a TLS Secret, which tokenmint cannot fill",
			func(s *tokensv1alpha1.AccessTokenSpec) { s.Secret.Type = "kubernetes.io/tls" },
			`Unsupported value: "kubernetes.io/tls"`),
		Entry("an image pull Secret without its registries",
			func(s *tokensv1alpha1.AccessTokenSpec) { s.Secret.Type = "kubernetes.io/dockerconfigjson" },
			"dockerConfigJSON goes with type kubernetes.io/dockerconfigjson, and that type needs it"),
		Entry("basicAuth in an Opaque Secret",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.BasicAuth = &tokensv1alpha1.BasicAuthOutput{Username: tokensv1alpha1.OutputUsername{Value: "x-access-token"}}
			},
			"basicAuth goes with type kubernetes.io/basic-auth"),
		Entry("a registry with a path",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.Type = "kubernetes.io/dockerconfigjson"
				s.Secret.DockerConfigJSON = &tokensv1alpha1.DockerConfigJSONOutput{Registries: []string{"ghcr.io/octo"},
					Username: tokensv1alpha1.OutputUsername{Value: "x"}}
			},
			"spec.secret.dockerConfigJSON.registries[0]"),
		Entry("a username with a colon",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.Type = "kubernetes.io/basic-auth"
				s.Secret.BasicAuth = &tokensv1alpha1.BasicAuthOutput{Username: tokensv1alpha1.OutputUsername{Value: "a:b"}}
			},
			"a username cannot contain ':'"),
		Entry("a username and a field",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.Type = "kubernetes.io/basic-auth"
				s.Secret.BasicAuth = &tokensv1alpha1.BasicAuthOutput{Username: tokensv1alpha1.OutputUsername{Value: "a", Copy: "login"}}
			},
			"set exactly one of value or copy"),
		Entry("a derived key on the token's key",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.Keys = []tokensv1alpha1.DerivedKey{{Key: "token", Template: "Bearer ${token}"}}
			},
			"keys and previousKey must differ from the token's key"),
		Entry("a derived key named password in a basic-auth Secret",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.Type = "kubernetes.io/basic-auth"
				s.Secret.BasicAuth = &tokensv1alpha1.BasicAuthOutput{Username: tokensv1alpha1.OutputUsername{Value: "a"}}
				s.Secret.Keys = []tokensv1alpha1.DerivedKey{{Key: "password", Template: "${token}"}}
			},
			"username and password are written by basicAuth"),
		Entry("an unknown placeholder",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.Keys = []tokensv1alpha1.DerivedKey{{Key: "env", Template: "HOME=${env.HOME}"}}
			},
			"the placeholders are ${token}, ${expiresAt}, ${issuedAt} and ${copy.<key>}"),
		Entry("an unclosed placeholder",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.Keys = []tokensv1alpha1.DerivedKey{{Key: "h", Template: "Bearer ${token"}}
			},
			"the placeholders are ${token}"),
		Entry("previousKey on a derived key",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.PreviousKey = "h"
				s.Secret.Keys = []tokensv1alpha1.DerivedKey{{Key: "h", Template: "Bearer ${token}"}}
			},
			"previousKey must differ from every derived key"),
		Entry("previousKeyFor of two days",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.PreviousKey = "token.previous"
				s.Secret.PreviousKeyFor = &tokensv1alpha1.Duration{Duration: 48 * time.Hour}
			},
			"previousKeyFor must be between 1s and 24h"),
		Entry("the ServiceAccount annotation",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.Annotations = map[string]string{"kubernetes.io/service-account.name": "default"}
			},
			"annotations must not use the kubernetes.io, k8s.io or tokenmint.dev prefixes"),
		Entry("a label of a kubernetes.io subdomain",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.Labels = map[string]string{"node-role.kubernetes.io/x": ""}
			},
			"labels must not use the kubernetes.io, k8s.io or tokenmint.dev prefixes"),
		Entry("tokenmint's managed-by label",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.Labels = map[string]string{"app.kubernetes.io/managed-by": "tokenmint"}
			},
			"labels must not use the kubernetes.io, k8s.io or tokenmint.dev prefixes"),
		Entry("a tokenmint annotation",
			func(s *tokensv1alpha1.AccessTokenSpec) {
				s.Secret.Annotations = map[string]string{"tokens.tokenmint.dev/token-fingerprint": "x"}
			},
			"annotations must not use the kubernetes.io, k8s.io or tokenmint.dev prefixes"),
	)

	It("accepts recommended app.kubernetes.io labels and other prefixes", func() {
		at := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-", Namespace: "default"},
			Spec: tokensv1alpha1.AccessTokenSpec{
				IssuerRef: tokensv1alpha1.IssuerReference{Name: "cable"},
				Secret: tokensv1alpha1.SecretTemplate{Name: "token",
					Labels:      map[string]string{"app.kubernetes.io/name": "payments", "team": "a"},
					Annotations: map[string]string{"example.com/owner": "team-a"}},
				RenewalPolicy: tokensv1alpha1.RenewalPolicy{MaxAge: &tokensv1alpha1.Duration{Duration: 90 * time.Minute}},
			},
		}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, at)
	})

	It("accepts typed outputs, derived keys with a literal $ and a previous key", func() {
		for _, t := range []tokensv1alpha1.SecretTemplate{
			{Name: "pull", Type: "kubernetes.io/dockerconfigjson", DockerConfigJSON: &tokensv1alpha1.DockerConfigJSONOutput{
				Registries: []string{"ghcr.io", "registry.example.com:5000"}, Username: tokensv1alpha1.OutputUsername{Value: "x-access-token"}}},
			{Name: "git", Type: "kubernetes.io/basic-auth", BasicAuth: &tokensv1alpha1.BasicAuthOutput{
				Username: tokensv1alpha1.OutputUsername{Copy: "login"}}},
			{Name: "files", PreviousKey: "token.previous", PreviousKeyFor: &tokensv1alpha1.Duration{Duration: 10 * time.Minute},
				Keys: []tokensv1alpha1.DerivedKey{{Key: "header", Template: "Authorization: Bearer ${token}"},
					{Key: "doc.json", Encoding: "JSON", Template: `{"token": ${token}, "org": ${copy.org}, "cost": "$$5", "at": ${issuedAt}, "exp": ${expiresAt}}`}}},
		} {
			at := &tokensv1alpha1.AccessToken{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-", Namespace: "default"},
				Spec:       tokensv1alpha1.AccessTokenSpec{IssuerRef: tokensv1alpha1.IssuerReference{Name: "cable"}, Secret: t},
			}
			Expect(k8sClient.Create(ctx, at)).To(Succeed(), t.Name)
			DeferCleanup(k8sClient.Delete, ctx, at)
		}
	})

	It("accepts a change of issuer, kind and parameters in one apply", func() {
		at := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-", Namespace: "default"},
			Spec: tokensv1alpha1.AccessTokenSpec{
				IssuerRef:  tokensv1alpha1.IssuerReference{Name: "cable"},
				Parameters: map[string]apiextensionsv1.JSON{"lifetimeSeconds": {Raw: []byte("3600")}},
				Secret:     tokensv1alpha1.SecretTemplate{Name: "token"},
			},
		}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, at)
		patch := client.MergeFrom(at.DeepCopy())
		at.Spec.IssuerRef = tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: "other"}
		at.Spec.Parameters = map[string]apiextensionsv1.JSON{"scopes": {Raw: []byte(`["orders.read"]`)}}
		Expect(k8sClient.Patch(ctx, at, patch)).To(Succeed())
		Expect(get(at).Spec.IssuerRef).To(Equal(at.Spec.IssuerRef))

		By("a history entry in status is bounded")
		cur := get(at)
		patch = client.MergeFrom(cur.DeepCopy())
		for range 6 {
			cur.Status.History = append(cur.Status.History, tokensv1alpha1.TokenHistoryEntry{Fingerprint: "fp",
				Issuer: cur.Spec.IssuerRef, IssuedAt: metav1.Now()})
		}
		err := k8sClient.Status().Patch(ctx, cur, patch)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("must have at most 5 items"))
	})
})

// selfSignedJWT is a minimal valid signedJWT of an issuer with no request.
func selfSignedJWT() *tokensv1alpha1.SignedJWT {
	return &tokensv1alpha1.SignedJWT{
		PrivateKey: tokensv1alpha1.JWTSecretValue{SecretKeyRef: tokensv1alpha1.SecretKeySelector{Name: "key", Key: "key.p8"}},
		Algorithm:  "ES256",
		Audience:   []string{"appstoreconnect-v1"},
	}
}

var _ = Describe("ClusterAccessToken admission", func() {
	valid := func() *tokensv1alpha1.ClusterAccessToken {
		return &tokensv1alpha1.ClusterAccessToken{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-"},
			Spec: tokensv1alpha1.ClusterAccessTokenSpec{
				IssuerRef:  tokensv1alpha1.ClusterIssuerReference{Name: "shared"},
				Secret:     tokensv1alpha1.SecretTemplate{Name: "shared-token"},
				Namespaces: tokensv1alpha1.TargetNamespaces{Names: []string{"a", "b"}},
			},
		}
	}
	DescribeTable("refuses",
		func(mutate func(*tokensv1alpha1.ClusterAccessToken), message string) {
			cat := valid()
			mutate(cat)
			err := k8sClient.Create(ctx, cat)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("no namespaces", func(c *tokensv1alpha1.ClusterAccessToken) { c.Spec.Namespaces = tokensv1alpha1.TargetNamespaces{} },
			"set names, selector, or both"),
		Entry("a name too long for its source", func(c *tokensv1alpha1.ClusterAccessToken) {
			c.GenerateName, c.Name = "", strings.Repeat("a", 64)
		}, "the name of a ClusterAccessToken is at most 63 characters"),
		Entry("a Secret type tokenmint cannot fill", func(c *tokensv1alpha1.ClusterAccessToken) { c.Spec.Secret.Type = "kubernetes.io/tls" },
			`Unsupported value: "kubernetes.io/tls"`),
	)
	It("accepts a change of issuer", func() {
		cat := valid()
		Expect(k8sClient.Create(ctx, cat)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, cat))).To(Succeed()) })
		patch := client.MergeFrom(cat.DeepCopy())
		cat.Spec.IssuerRef.Name = "other"
		Expect(k8sClient.Patch(ctx, cat, patch)).To(Succeed())
		got := &tokensv1alpha1.ClusterAccessToken{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cat), got)).To(Succeed())
		Expect(got.Spec.IssuerRef.Name).To(Equal("other"))
	})
})

// awsSigV4 is a valid awsSigV4 auth reading its secret from the baseline
// issuer's credential.
func awsSigV4() *tokensv1alpha1.AWSSigV4 {
	return &tokensv1alpha1.AWSSigV4{AWSCredentials: awsKey(), Region: "us-east-1", Service: "ecr"}
}

// awsPresigned is a valid EKS token spec.
func awsPresigned() *tokensv1alpha1.AWSPresignedURL {
	return &tokensv1alpha1.AWSPresignedURL{AWSCredentials: awsKey(), Region: "eu-west-1",
		EKS: &tokensv1alpha1.AWSEKSToken{ClusterName: "prod"}}
}

func awsKey() tokensv1alpha1.AWSCredentials {
	id := "AKIAIOSFODNN7EXAMPLE"
	return tokensv1alpha1.AWSCredentials{AccessKeyID: tokensv1alpha1.ValueSource{Value: &id},
		SecretAccessKey: tokensv1alpha1.ValueSource{Credential: "aws-secret"}}
}
