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

package e2eplugin

import (
	"encoding/json"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	kt "github.com/tokenmint/tokenmint/internal/plugin"
)

var _ = Describe("ClusterAccessToken", func() {
	It("status shows its token and its namespaces selected, written and failing; renew annotates it", func() {
		name := "shared-" + rand.String(6)
		cat := &tokensv1alpha1.ClusterAccessToken{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: tokensv1alpha1.ClusterAccessTokenSpec{
				IssuerRef:  tokensv1alpha1.ClusterIssuerReference{Name: "registry"},
				Secret:     tokensv1alpha1.SecretTemplate{Name: "registry-token"},
				Namespaces: tokensv1alpha1.TargetNamespaces{Names: []string{"team-a", "team-b", "team-x"}}}}
		Expect(k8sClient.Create(ctx, cat)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, cat)
		now := time.Now().Truncate(time.Second)
		cat.Status = tokensv1alpha1.ClusterAccessTokenStatus{
			ObservedGeneration: cat.Generation,
			IssuedAt:           ptr.To(metav1.NewTime(now.Add(-10 * time.Minute))),
			ExpiresAt:          ptr.To(metav1.NewTime(now.Add(50 * time.Minute))),
			RenewalTime:        ptr.To(metav1.NewTime(now.Add(30 * time.Minute))),
			TokenFingerprint:   fingerprint,
			Namespaces:         2, Written: 1, Failing: 2,
			Failures: []tokensv1alpha1.NamespaceFailure{
				{Name: "team-b", Message: "a Secret of that name exists and is not this ClusterAccessToken's; tokenmint will not take it over"},
				{Name: "team-x", Message: `ClusterTokenIssuer "registry" does not allow this namespace`}},
			Conditions: []metav1.Condition{{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
				Reason: "NamespacesFailing", Message: "2 namespaces could not be written; see status.failures",
				LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))}},
		}
		Expect(k8sClient.Status().Update(ctx, cat)).To(Succeed())

		r := plugin("status", "clusteraccesstoken/"+name)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(ContainSubstring("ClusterAccessToken " + name + "\n"))
		Expect(r.stdout).To(MatchRegexp(`Ready:\s+False NamespacesFailing`))
		Expect(r.stdout).To(MatchRegexp(`Namespaces:\s+2 selected, 1 written, 2 failing`))
		Expect(r.stdout).To(MatchRegexp(`Expires:\s+\S+ \(in (49|50)m\)`))
		Expect(r.stdout).To(MatchRegexp(`team-b\s+a Secret of that name exists and is not this ClusterAccessToken's`))
		Expect(r.stdout).To(MatchRegexp(`team-x\s+ClusterTokenIssuer "registry" does not allow this namespace`))
		Expect(r.stdout).To(ContainSubstring("ClusterTokenIssuer/registry (not found)"))

		r = plugin("status", "--cluster", name, "-o", "json")
		Expect(r.code).To(Equal(0), r.stderr)
		var v kt.ClusterStatusView
		Expect(json.Unmarshal([]byte(r.stdout), &v)).To(Succeed())
		Expect(v.Selected).To(BeEquivalentTo(2))
		Expect(v.Written).To(BeEquivalentTo(1))
		Expect(v.Failures).To(HaveLen(2))

		before := time.Now().Unix()
		r = plugin("renew", "clusteraccesstoken/"+name)
		Expect(r.code).To(Equal(0), r.stderr)
		cur := &tokensv1alpha1.ClusterAccessToken{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cat), cur)).To(Succeed())
		value := cur.Annotations[tokensv1alpha1.AnnotationRenew]
		Expect(r.stdout).To(Equal("clusteraccesstoken " + name + ": renewal requested (" + tokensv1alpha1.AnnotationRenew + "=" + value + ")\n"))
		unix, err := strconv.ParseInt(value, 10, 64)
		Expect(err).NotTo(HaveOccurred())
		Expect(unix).To(BeNumerically(">=", before))
		Expect(cur.Status.Failing).To(BeEquivalentTo(2), "renew touches nothing but the annotation")

		r = plugin("status", "clusteraccesstoken/missing-"+name)
		Expect(r.code).To(Equal(1))
	})
})
