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

package e2enode

import (
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/node"
	"github.com/tokenmint/tokenmint/test/samples"
)

const (
	// sharedToken is the ClusterAccessToken; its source AccessToken is
	// cluster-<sharedToken> in the operator namespace.
	sharedToken = "node-shared"
	// sharedByName is selected by its name, sharedByLabel by its label.
	sharedByName  = "node-shared-a"
	sharedByLabel = "node-shared-b"
	// sharedLabel marks the namespaces the ClusterAccessToken selects by label.
	sharedLabel = "e2enode.tokenmint.dev/shared"
	// sharedReader is the pod, in each namespace, that reads the token.
	sharedReader = "shared-reader"
)

// A ClusterAccessToken mints one token for many namespaces: the pods of two
// namespaces mount the Secret it writes in each and read the same token, and
// after a renewal (one more mint, not one per namespace) both read the same new
// one, through the kubelet's refresh of Secret volumes.
var _ = Describe("a ClusterAccessToken on a real node", Ordered, func() {
	var (
		provider   *fakes.Base
		secretName string // the Secret written in each namespace
		namespaces = []string{sharedByName, sharedByLabel}
	)

	BeforeAll(func() {
		kubectl("create", "namespace", sharedByName)
		kubectl("create", "namespace", sharedByLabel)
		kubectl("label", "namespace", sharedByLabel, sharedLabel+"=true")

		By("an OAuth2 ClusterTokenIssuer, the sample's, served by its fake")
		p := samples.Providers[slices.IndexFunc(samples.Providers, func(p samples.Provider) bool { return p.Name == "oauth2-client-credentials" })]
		fake, base := p.NewFake()
		provider = base
		provider.Lifetime = longLifetime // no renewal falls due during the spec: each is asked for
		issuerSample, err := samples.Load(p.File)
		Expect(err).NotTo(HaveOccurred())
		Expect(issuerSample.PointAt(fakes.Start(GinkgoTB(), fake).URL)).To(Succeed())
		issuerSample.FillCredentials()
		issuerSample.Place(operatorNamespace, credentialsNamespace, "-shared")
		objects := issuerSample.Objects()
		apply("shared-issuer", objects[:len(objects)-1]...) // all but the sample's AccessToken

		By("the sample's ClusterAccessToken, selecting one namespace by name and one by label")
		s, err := samples.Load("cluster-access-token.yaml")
		Expect(err).NotTo(HaveOccurred())
		cat := s.ClusterAccessToken
		cat.Name = sharedToken
		cat.Spec.IssuerRef.Name = issuerSample.ClusterTokenIssuer.Name
		cat.Spec.Namespaces = tokensv1alpha1.TargetNamespaces{
			Names:    []string{sharedByName},
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{sharedLabel: "true"}},
		}
		secretName = cat.Spec.Secret.Name
		apply("shared-token", cat)

		By("a pod in each namespace mounting the Secret, printing the fingerprint of the token it reads")
		for _, ns := range namespaces {
			// Nothing creates a Pod in a namespace before its default ServiceAccount exists.
			Eventually(func() error {
				return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "default"}, &corev1.ServiceAccount{})
			}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
		}
		apply("shared-readers", readingPod(sharedByName, secretName), readingPod(sharedByLabel, secretName))
	})

	It("writes one token to both namespaces, which both pods read, and one renewal rewrites both", func() {
		By("both pods read the same token, the only one the provider issued")
		pods := map[string]*corev1.Pod{}
		Eventually(func(g Gomega) {
			issued := provider.Issued()
			g.Expect(issued).To(HaveLen(1))
			for _, ns := range namespaces {
				pod, err := onlyPod(ns, sharedReader)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(latestFingerprint(pod, "app")).To(Equal(fingerprint(issued[0].Value)), "the pod in %s", ns)
				pods[ns] = pod
			}
		}, 2*time.Minute, 200*time.Millisecond).Should(Succeed())
		first := provider.Issued()[0]

		By("the ClusterAccessToken reports 2 namespaces, 2 written, Ready")
		firstFingerprint := expectClusterReady(2, "")

		By("asking the source AccessToken in the operator namespace for a renewal")
		// The renewal is made once the manager's minimum interval between two
		// mints (10 s by default) has passed since the first one.
		requested := time.Now()
		requestRenewal(operatorNamespace, "cluster-"+sharedToken)
		Eventually(func() []fakes.IssuedToken { return provider.Issued() }, 30*time.Second, 100*time.Millisecond).Should(HaveLen(2))
		second := provider.Issued()[1]
		Expect(second.Value).NotTo(Equal(first.Value))
		minted := time.Now()
		reportDelay(fmt.Sprintf("ClusterAccessToken renewal: minted %s after it was asked for, %s after the first mint",
			minted.Sub(requested).Round(100*time.Millisecond), minted.Sub(first.IssuedAt).Round(100*time.Millisecond)))

		By("both Secrets hold the new token")
		Eventually(func(g Gomega) {
			for _, ns := range namespaces {
				s := &corev1.Secret{}
				g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: secretName}, s)).To(Succeed())
				g.Expect(fingerprint(string(s.Data["token"]))).To(Equal(fingerprint(second.Value)), "the Secret in %s", ns)
			}
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
		written := time.Now()

		By("the same pods read the new token, through the kubelet's refresh of the Secret volume")
		seen := map[string]time.Time{}
		// The kubelet resyncs a pod every 10 to 15 s here; give it several rounds.
		Eventually(func(g Gomega) {
			for _, ns := range namespaces {
				g.Expect(latestFingerprint(pods[ns], "app")).To(Equal(fingerprint(second.Value)), "the pod in %s", ns)
				seen[ns] = firstSeen(g, pods[ns], fingerprint(second.Value))
			}
		}, time.Minute, 200*time.Millisecond).Should(Succeed())
		for _, ns := range namespaces {
			Expect(onlyPod(ns, sharedReader)).To(HaveField("UID", pods[ns].UID), "the pod in %s was replaced", ns)
			reportDelay(fmt.Sprintf("ClusterAccessToken Secret rewritten to file in the pod of %s: %s", ns,
				seen[ns].Sub(written).Round(10*time.Millisecond)))
		}

		By("one mint served both namespaces: the provider issued exactly one more token")
		Expect(provider.Issued()).To(HaveLen(2))

		By("the ClusterAccessToken still reports 2 namespaces, 2 written, Ready, with the new token")
		expectClusterReady(2, firstFingerprint)
	})

	It("deletes the Secret of both namespaces and revokes the token when the ClusterAccessToken is deleted", func() {
		current := provider.Issued()[len(provider.Issued())-1]
		kubectl("delete", "clusteraccesstoken", sharedToken, "--wait=true", "--timeout=60s")

		By("the Secrets of both namespaces are gone, and so are the source AccessToken and its Secret")
		Eventually(func(g Gomega) {
			for _, key := range []types.NamespacedName{
				{Namespace: sharedByName, Name: secretName},
				{Namespace: sharedByLabel, Name: secretName},
				{Namespace: operatorNamespace, Name: "cluster-" + sharedToken},
			} {
				err := k8sClient.Get(ctx, key, &corev1.Secret{})
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "Secret %s: %v", key, err)
			}
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "cluster-" + sharedToken}, &tokensv1alpha1.AccessToken{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the source AccessToken: %v", err)
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())

		By("the provider revoked the current token and the one it replaced")
		Eventually(func() bool { return provider.Valid(current.Value) }, 30*time.Second, 100*time.Millisecond).Should(BeFalse())
		for _, t := range provider.Issued() {
			// The replaced token too, before its grace period is over.
			Expect(t.Revoked).To(BeTrue(), "a token issued at %s was not revoked", t.IssuedAt)
		}
		Expect(provider.Issued()).To(HaveLen(2), "a token was minted after the renewal")

		By("deleting the pods")
		for _, ns := range namespaces {
			kubectl("delete", "pod", sharedReader, "-n", ns, "--wait=true", "--timeout=60s")
		}
	})

	// After a failure, leave nothing behind that mints or mounts.
	AfterAll(func() {
		kubectl("delete", "clusteraccesstoken", sharedToken, "--ignore-not-found", "--wait=false")
		for _, ns := range namespaces {
			kubectl("delete", "pod", sharedReader, "-n", ns, "--ignore-not-found", "--wait=false")
		}
	})

	// On failure, show what the ClusterAccessTokens say.
	ReportAfterEach(func(r SpecReport) {
		if !r.Failed() || cp == nil {
			return
		}
		out, _ := execOutput(cp.Kubectl(), "--kubeconfig", admin, "get", "clusteraccesstokens", "-o", "yaml")
		AddReportEntry("kubectl get clusteraccesstokens", out)
	})
})

// readingPod is a pod on the node, labelled app=shared-reader, mounting Secret
// secret and printing the fingerprint of its token whenever it changes.
func readingPod(namespace, secret string) *corev1.Pod {
	d := node.BusyboxDeployment(namespace, sharedReader, node.WatchFingerprint(tokenMount+"/token"))
	node.MountSecret(d, secret, tokenMount)
	spec := d.Spec.Template.Spec
	spec.NodeName = theNode.Name
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: sharedReader, Namespace: namespace, Labels: map[string]string{"app": sharedReader}},
		Spec:       spec,
	}
}

// expectClusterReady waits until the ClusterAccessToken reports namespaces
// selected and written, none failing, Ready True, and the fingerprint of its
// source AccessToken's token, other than previous; it returns that fingerprint.
func expectClusterReady(namespaces int32, previous string) string {
	var fp string
	Eventually(func(g Gomega) {
		cat := &tokensv1alpha1.ClusterAccessToken{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: sharedToken}, cat)).To(Succeed())
		st := cat.Status
		g.Expect(st.Namespaces).To(Equal(namespaces))
		g.Expect(st.Written).To(Equal(namespaces))
		g.Expect(st.Failing).To(BeZero())
		ready := meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil(), "no Ready condition")
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "Ready: %s", ready.Message)
		source := &tokensv1alpha1.AccessToken{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "cluster-" + sharedToken}, source)).To(Succeed())
		g.Expect(st.TokenFingerprint).NotTo(BeElementOf("", previous))
		g.Expect(st.TokenFingerprint).To(Equal(source.Status.TokenFingerprint))
		fp = st.TokenFingerprint
	}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
	return fp
}
