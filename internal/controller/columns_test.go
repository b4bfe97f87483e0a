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
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
)

// printedColumns returns the columns kubectl get prints for at, as the
// apiserver renders them from the CRD's printer columns.
func printedColumns(at *tokensv1alpha1.AccessToken) map[string]string {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &tokensv1alpha1.GroupVersion
	c.APIPath = "/apis"
	c.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.RESTClientFor(c)
	Expect(err).NotTo(HaveOccurred())
	table := &metav1.Table{}
	Expect(rc.Get().Namespace(at.Namespace).Resource("accesstokens").Name(at.Name).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").Do(ctx).Into(table)).To(Succeed())
	Expect(table.Rows).To(HaveLen(1))
	out := map[string]string{}
	var names []string
	for i, col := range table.ColumnDefinitions {
		out[col.Name] = fmt.Sprint(table.Rows[0].Cells[i])
		if col.Priority == 0 {
			names = append(names, col.Name)
		}
	}
	Expect(names).To(Equal([]string{"Name", "Ready", "Issuer", "Secret", "Renewing", "Expires", "Age"}),
		"the columns kubectl get shows without -o wide")
	return out
}

var _ = Describe("kubectl get accesstokens", func() {
	It("shows a failing renewal, with its reason and attempts, while the token is still valid", func() {
		e := newEnv()
		at := waitReady(e.accessToken("columns"))
		Expect(printedColumns(at)).To(And(HaveKeyWithValue("Ready", "True"), HaveKeyWithValue("Renewing", tokensv1alpha1.ReasonIssued),
			HaveKeyWithValue("Kind", string(tokensv1alpha1.TokenIssuerKind)), HaveKeyWithValue("Attempts", "<nil>")), "a first token, no failure")

		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		e.fake.FailNext(1, fakes.Fault{Status: http.StatusUnauthorized, Body: `{"message":"invalid token"}`})
		poke(at)
		Eventually(func() map[string]string { return printedColumns(at) }, 10*time.Second).Should(And(
			HaveKeyWithValue("Ready", "True"),
			HaveKeyWithValue("Renewing", tokensv1alpha1.ReasonUnauthorized),
			HaveKeyWithValue("Attempts", "1"),
			HaveKeyWithValue("Message", ContainSubstring("401"))))
	})
})
