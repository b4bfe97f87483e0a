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
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// startVaultDatabase places the Vault database credentials sample in a new
// namespace and waits until its AccessToken is Ready. Vault refuses every
// lease revocation, as it would once the login's policy is gone: whatever
// login token the operator still holds, no revocation succeeds.
func startVaultDatabase() (*samples.Sample, *fakes.VaultKubernetesAuth, *tokensv1alpha1.AccessToken) {
	ns := "vg-" + rand.String(6)
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	vault := vaultDatabaseFake(ns)
	vault.SetFaultHook(func(r *http.Request) *fakes.Fault {
		if r.URL.Path != fakes.VaultLeaseRevokePath {
			return nil
		}
		return &fakes.Fault{Status: http.StatusForbidden, Body: `{"errors":["permission denied"]}`}
	})
	s, err := samples.Load("vault-database-credentials.yaml")
	Expect(err).NotTo(HaveOccurred())
	Expect(s.PointAt(serveFake(vault, &vault.Base))).To(Succeed())
	s.Place(ns, credentialsNamespace, "")
	create(s)
	at := waitReady(s.AccessToken)
	Expect(at.Finalizers).To(ContainElement(RevokeFinalizer))
	Expect(vault.LiveLeases()).To(HaveLen(1))
	DeferCleanup(func() {
		var received []string
		for _, l := range vault.Leases() {
			received = append(received, l.Password)
		}
		addCanaries(append(received, vault.CredentialsReceived()...)...)
	})
	return s, vault, at
}

// eventMessages lists the messages of the events of reason about obj.
func eventMessages(obj client.Object, reason string) []string {
	evs := &eventsv1.EventList{}
	Expect(k8sClient.List(ctx, evs, client.InNamespace(obj.GetNamespace()))).To(Succeed())
	var out []string
	for _, ev := range evs.Items {
		if ev.Regarding.UID == obj.GetUID() && ev.Reason == reason {
			out = append(out, ev.Note)
		}
	}
	return out
}

func accessTokenGone(at *tokensv1alpha1.AccessToken) func() bool {
	return func() bool {
		return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), &tokensv1alpha1.AccessToken{}))
	}
}

var _ = Describe("deleting a sample at once", func() {
	It("lets the AccessToken go at once when its issuer is deleted with it, saying nothing was revoked", func() {
		s, vault, at := startVaultDatabase()

		By("deleting the ServiceAccount, the TokenIssuer and the AccessToken in one go, as kubectl delete -f does")
		for _, o := range []client.Object{s.ServiceAccounts[0], s.TokenIssuer, get(at)} {
			Expect(k8sClient.Delete(ctx, o)).To(Succeed())
		}
		// The injected clock stands still: the 2-minute give-up never comes.
		Eventually(accessTokenGone(at), 15*time.Second).Should(BeTrue(), "the finalizer waits for no give-up once the issuer is gone")
		Eventually(func() []string { return eventMessages(at, tokensv1alpha1.ReasonRevokeFailed) }, 10*time.Second).Should(
			ContainElement(And(ContainSubstring(`TokenIssuer "vault-database"`), ContainSubstring("is gone: nothing was revoked"))))
		Expect(vault.LiveLeases()).To(HaveLen(1), "nothing was revoked")
	})

	It("keeps retrying for a bounded time while the issuer exists but a credential it needs is gone", func() {
		s, vault, at := startVaultDatabase()

		By("deleting the ServiceAccount and the AccessToken, the TokenIssuer staying")
		Expect(k8sClient.Delete(ctx, s.ServiceAccounts[0])).To(Succeed())
		Expect(k8sClient.Delete(ctx, get(at))).To(Succeed())
		// Its login needs a token of the ServiceAccount: every revocation
		// fails, and is tried again while the credential may come back.
		Consistently(accessTokenGone(at), 5*time.Second).Should(BeFalse(), "an issuer that still exists may yet revoke")
		Expect(eventMessages(at, tokensv1alpha1.ReasonRevokeFailed)).To(BeEmpty())

		By("letting it go once the give-up time has passed")
		clk.Step(revokeOnDeleteTimeout + time.Second)
		poke(at)
		Eventually(accessTokenGone(at), 15*time.Second).Should(BeTrue())
		Expect(eventMessages(at, tokensv1alpha1.ReasonRevokeFailed)).To(ContainElement(ContainSubstring("Could not revoke the token within")))
		Expect(vault.LiveLeases()).To(HaveLen(1))
	})
})
