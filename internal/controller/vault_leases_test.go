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
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// vaultDatabaseFake is Vault as the vault-database-credentials sample
// expects it in namespace ns: the Kubernetes auth role "app" (ServiceAccount
// app, audience vault, one-hour login tokens) that asks the apiserver who a
// ServiceAccount token is, and the database role "app" (default_ttl 5m,
// max_ttl 1h).
func vaultDatabaseFake(ns string) *fakes.VaultKubernetesAuth {
	vault := &fakes.VaultKubernetesAuth{
		Roles: map[string]fakes.VaultRole{"app": {BoundServiceAccountNames: []string{"app"}, BoundServiceAccountNamespaces: []string{ns},
			Audience: "vault", TokenTTL: time.Hour, Policies: []string{"app-db"}}},
		DatabaseRoles: map[string]fakes.VaultDatabaseRole{"app": {DefaultTTL: 5 * time.Minute, MaxTTL: time.Hour}},
	}
	vault.Verify = func(token, audience string) (string, string, bool) {
		review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{audience}}}
		if err := k8sClient.Create(ctx, review); err != nil || !review.Status.Authenticated {
			return "", "", false
		}
		parts := strings.Split(review.Status.User.Username, ":") // system:serviceaccount:<ns>:<name>
		if len(parts) != 4 {
			return "", "", false
		}
		return parts[2], parts[3], true
	}
	return vault
}

var _ = Describe("the Vault database credentials sample", func() {
	It("renews 5-minute leases for an hour with at most two logins, revokes a lease only once no Secret holds it, and every lease after deletion", func() {
		ns := "vd-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		// Kubernetes auth role: one-hour login tokens. Database role:
		// default_ttl 5m, max_ttl 1h.
		vault := vaultDatabaseFake(ns)
		s, err := samples.Load("vault-database-credentials.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.PointAt(serveFake(vault, &vault.Base))).To(Succeed())
		s.Place(ns, credentialsNamespace, "")
		secretKey := client.ObjectKey{Namespace: ns, Name: s.AccessToken.Spec.Secret.Name}

		// Every revocation Vault receives is checked at that moment: no
		// Secret may still hold the lease's credentials.
		var mu sync.Mutex
		var violations []string
		vault.SetFaultHook(func(r *http.Request) *fakes.Fault {
			if r.URL.Path != fakes.VaultLeaseRevokePath {
				return nil
			}
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var req struct {
				LeaseID string `json:"lease_id"`
			}
			_ = json.Unmarshal(body, &req)
			sec := &corev1.Secret{}
			err := k8sClient.Get(ctx, secretKey, sec)
			for _, l := range vault.Leases() {
				if l.ID == req.LeaseID && err == nil && string(sec.Data["password"]) == l.Password {
					mu.Lock()
					violations = append(violations, l.ID)
					mu.Unlock()
				}
			}
			if err != nil && !apierrors.IsNotFound(err) {
				mu.Lock()
				violations = append(violations, "cannot tell: "+err.Error())
				mu.Unlock()
			}
			return nil
		})
		holds := func() (string, string) {
			sec := &corev1.Secret{}
			ExpectWithOffset(1, k8sClient.Get(ctx, secretKey, sec)).To(Succeed())
			return string(sec.Data["password"]), string(sec.Data["username"])
		}
		create(s)
		start := clk.Now()

		at := waitReady(s.AccessToken)
		Expect(vault.Logins()).To(Equal(1))
		Expect(vault.Reads()).To(Equal(1))
		lease := vault.Leases()[0]
		password, username := holds()
		Expect(password).To(Equal(lease.Password))
		Expect(username).To(Equal(lease.Username))
		Expect(at.Status.ExpiresAt.Time).To(BeTemporally("~", lease.ExpiresAt, time.Second))

		By("renewing the lease (or reading a new one near max_ttl) at every renewal for an hour")
		renewals := 0
		for clk.Now().Before(start.Add(time.Hour)) {
			issuedAt := at.Status.IssuedAt.Time
			clk.SetTime(at.Status.RenewalTime.Add(time.Second))
			poke(at)
			Eventually(func() time.Time { return get(at).Status.IssuedAt.Time }, 10*time.Second).Should(BeTemporally(">", issuedAt))
			at = get(at)
			renewals++
			password, _ := holds()
			Expect(vault.LeaseLive(password)).To(BeTrue(), "the Secret holds the credentials of a live lease at %s", clk.Now().Sub(start))
			current := vault.Leases()[len(vault.Leases())-1]
			Expect(password).To(Equal(current.Password))
			Expect(at.Status.ExpiresAt.Time).To(BeTemporally("~", current.ExpiresAt, time.Second))
			mu.Lock()
			Expect(violations).To(BeEmpty())
			mu.Unlock()
		}
		Expect(renewals).To(BeNumerically(">=", 15))
		Expect(vault.Logins()).To(BeNumerically("<=", 2), "logins in an hour of 5-minute leases")
		Expect(vault.Reads()).To(Equal(2), "one read, and one more when the first lease reached its max_ttl")
		Expect(vault.Renewals()).To(BeNumerically(">=", renewals-1))

		By("revoking the replaced lease after the grace period, the Secret holding the new one")
		clk.Step(2*time.Minute + time.Second)
		poke(at)
		Eventually(func() *time.Time { return vault.Leases()[0].Revoked }, 10*time.Second).ShouldNot(BeNil())
		Expect(vault.LiveLeases()).To(Equal([]string{vault.Leases()[1].ID}))

		By("reading new credentials once when the lease was revoked behind tokenmint's back")
		reads, renewed := vault.Reads(), vault.Renewals()
		vault.RevokeLeaseBehindBack(vault.Leases()[1].ID)
		issuedAt := at.Status.IssuedAt.Time
		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() time.Time { return get(at).Status.IssuedAt.Time }, 10*time.Second).Should(BeTemporally(">", issuedAt))
		at = get(at)
		Expect(vault.Reads()).To(Equal(reads + 1))
		Expect(vault.Renewals()).To(Equal(renewed))
		password, _ = holds()
		Expect(password).To(Equal(vault.Leases()[2].Password))
		Expect(vault.LeaseLive(password)).To(BeTrue())

		By("revoking every lease once the AccessToken, and its Secret, are deleted")
		Expect(k8sClient.Delete(ctx, at)).To(Succeed())
		Eventually(func() []string { return vault.LiveLeases() }, 20*time.Second).Should(BeEmpty())
		Eventually(func() bool { return apierrors.IsNotFound(k8sClient.Get(ctx, secretKey, &corev1.Secret{})) }, 10*time.Second).Should(BeTrue())
		Expect(vault.Leases()[2].Revoked).NotTo(BeNil(), "the current lease is revoked by tokenmint, not left to expire")
		mu.Lock()
		Expect(violations).To(BeEmpty(), "leases revoked while a Secret held their credentials")
		mu.Unlock()

		By("never writing a login token anywhere, nor revoking one")
		all := &corev1.SecretList{}
		Expect(k8sClient.List(ctx, all)).To(Succeed())
		for _, login := range vault.Issued() {
			Expect(login.Revoked).To(BeFalse())
			for _, sec := range all.Items {
				for key, v := range sec.Data {
					Expect(string(v)).NotTo(ContainSubstring(login.Value), "Secret %s/%s key %s", sec.Namespace, sec.Name, key)
				}
			}
		}
		received := vault.CredentialsReceived()
		for _, l := range vault.Leases() {
			received = append(received, l.Password)
		}
		addCanaries(received...)
	})
})
