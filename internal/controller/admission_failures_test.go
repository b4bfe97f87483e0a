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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

var _ = Describe("admission of failure rules", func() {
	issuerWith := func(f *tokensv1alpha1.FailureSpec) *tokensv1alpha1.TokenIssuer {
		spec := transactionsSpec("https://tokens.example.com")
		spec.AllowInsecureHTTP = false
		spec.Response.Failures = f
		return &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{GenerateName: "failures-", Namespace: "default"}, Spec: spec}
	}
	rules := func(r ...tokensv1alpha1.FailureRule) *tokensv1alpha1.FailureSpec {
		return &tokensv1alpha1.FailureSpec{Rules: r}
	}

	It("accepts a preset and rules of every kind", func() {
		ti := issuerWith(&tokensv1alpha1.FailureSpec{Preset: tokensv1alpha1.FailurePresetGitHub, Rules: []tokensv1alpha1.FailureRule{
			{Status: []int32{403, 429}, Header: &tokensv1alpha1.HeaderMatch{Name: "x-ratelimit-remaining", Equals: ptr.To("0")},
				Meaning: tokensv1alpha1.FailureRateLimited,
				RetryAfter: &tokensv1alpha1.RetryAfterSpec{Header: "x-ratelimit-reset", Format: tokensv1alpha1.RetryAfterUnixSeconds,
					Default: &tokensv1alpha1.Duration{Duration: time.Minute}}},
			{Body: &tokensv1alpha1.BodyMatch{Path: "message", Contains: "scope not allowed"}, Meaning: tokensv1alpha1.FailurePermanent},
			{Body: &tokensv1alpha1.BodyMatch{Path: "success", Equals: ptr.To("false")}, Meaning: tokensv1alpha1.FailureRetryable},
			{Status: []int32{400}, Meaning: tokensv1alpha1.FailureRefreshRejected},
		}})
		Expect(k8sClient.Create(ctx, ti)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, ti)
		Expect(ti.Spec.Response.Failures.Rules[0].RetryAfter.Format).To(Equal(tokensv1alpha1.RetryAfterUnixSeconds))
	})

	It("defaults the format of retryAfter to SecondsOrHTTPDate", func() {
		ti := issuerWith(rules(tokensv1alpha1.FailureRule{Status: []int32{429}, Meaning: tokensv1alpha1.FailureRateLimited,
			RetryAfter: &tokensv1alpha1.RetryAfterSpec{Header: "Retry-After"}}))
		Expect(k8sClient.Create(ctx, ti)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, ti)
		Expect(ti.Spec.Response.Failures.Rules[0].RetryAfter.Format).To(Equal(tokensv1alpha1.RetryAfterSecondsOrHTTPDate))
	})

	DescribeTable("refuses",
		func(f *tokensv1alpha1.FailureSpec, message string) {
			err := k8sClient.Create(ctx, issuerWith(f))
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("a rule that matches nothing", rules(tokensv1alpha1.FailureRule{Meaning: tokensv1alpha1.FailurePermanent}),
			"a rule matches on at least one of status, code, body or header"),
		Entry("retryAfter on a meaning other than RateLimited", rules(tokensv1alpha1.FailureRule{Status: []int32{400},
			Meaning: tokensv1alpha1.FailurePermanent, RetryAfter: &tokensv1alpha1.RetryAfterSpec{Header: "Retry-After"}}),
			"retryAfter is for meaning RateLimited"),
		Entry("a code without error.code to read it from", rules(tokensv1alpha1.FailureRule{Code: []string{"invalid_grant"},
			Meaning: tokensv1alpha1.FailureRefreshRejected}),
			"a failure rule matching on code needs error.code"),
		Entry("a body match with both equals and contains", rules(tokensv1alpha1.FailureRule{
			Body: &tokensv1alpha1.BodyMatch{Path: "error", Equals: ptr.To("x"), Contains: "x"}, Meaning: tokensv1alpha1.FailurePermanent}),
			"set exactly one of equals or contains"),
		Entry("a body match with neither", rules(tokensv1alpha1.FailureRule{
			Body: &tokensv1alpha1.BodyMatch{Path: "error"}, Meaning: tokensv1alpha1.FailurePermanent}),
			"set exactly one of equals or contains"),
		Entry("retryAfter from a header and a path", rules(tokensv1alpha1.FailureRule{Status: []int32{429}, Meaning: tokensv1alpha1.FailureRateLimited,
			RetryAfter: &tokensv1alpha1.RetryAfterSpec{Header: "Retry-After", Path: "retry_after"}}),
			"set at most one of header or path"),
		Entry("a default wait over a day", rules(tokensv1alpha1.FailureRule{Status: []int32{429}, Meaning: tokensv1alpha1.FailureRateLimited,
			RetryAfter: &tokensv1alpha1.RetryAfterSpec{Default: &tokensv1alpha1.Duration{Duration: 25 * time.Hour}}}),
			"default must be at most 24h"),
		Entry("an unknown meaning", rules(tokensv1alpha1.FailureRule{Status: []int32{400}, Meaning: "Sometimes"}),
			"supported values"),
		Entry("an unknown preset", &tokensv1alpha1.FailureSpec{Preset: "Okta"}, "supported values"),
		Entry("a status that is not one", rules(tokensv1alpha1.FailureRule{Status: []int32{42}, Meaning: tokensv1alpha1.FailureRetryable}),
			"should be greater than or equal to 100"),
		Entry("more than 16 rules", rules(func() []tokensv1alpha1.FailureRule {
			r := make([]tokensv1alpha1.FailureRule, 17)
			for i := range r {
				r[i] = tokensv1alpha1.FailureRule{Status: []int32{int32(400 + i)}, Meaning: tokensv1alpha1.FailurePermanent}
			}
			return r
		}()...), "must have at most 16 items"),
	)
})
