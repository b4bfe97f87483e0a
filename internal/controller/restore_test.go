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
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// removeAtEnd deletes the AccessToken when the spec ends, while its issuer's
// fake still answers, and waits until it is gone: a spec of this file leaves
// nothing that retries against a closed fake in the specs that follow.
func removeAtEnd(at *tokensv1alpha1.AccessToken) {
	key := client.ObjectKeyFromObject(at)
	DeferCleanup(func() {
		cur := &tokensv1alpha1.AccessToken{}
		if err := k8sClient.Get(ctx, key, cur); err != nil {
			return
		}
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, cur))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, key, &tokensv1alpha1.AccessToken{}))
		}, 20*time.Second).Should(BeTrue())
	})
}

// backupOf reads, as a backup tool would, the sample's credential Secrets and
// issuer, the AccessToken, its token Secret and its state Secret.
func backupOf(s *samples.Sample) []client.Object {
	var objs []client.Object
	read := func(o client.Object) {
		ExpectWithOffset(2, k8sClient.Get(ctx, client.ObjectKeyFromObject(o), o)).To(Succeed())
		objs = append(objs, o)
	}
	for _, sec := range s.Secrets {
		read(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: sec.Namespace, Name: sec.Name}})
	}
	if s.TokenIssuer != nil {
		read(&tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: s.TokenIssuer.Namespace, Name: s.TokenIssuer.Name}})
	} else {
		read(&tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: s.ClusterTokenIssuer.Name}})
	}
	at := s.AccessToken
	read(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: secret.StateName(at)}})
	read(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: at.Namespace, Name: at.Spec.Secret.Name}})
	read(&tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: at.Namespace, Name: at.Name}})
	return objs
}

// loseAll deletes the backed-up objects, as losing the cluster would: the
// AccessToken first gets revocationPolicy None, so that tokenmint revokes
// nothing when it goes, and what the garbage collector (absent here) would
// delete is deleted by hand.
func loseAll(at *tokensv1alpha1.AccessToken, objs []client.Object) {
	cur := get(at)
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.RevocationPolicy = tokensv1alpha1.RevocationPolicyNone
	ExpectWithOffset(1, k8sClient.Patch(ctx, cur, patch)).To(Succeed())
	EventuallyWithOffset(1, func() []string { return get(at).Finalizers }, 10*time.Second).ShouldNot(ContainElement(RevokeFinalizer))
	for _, o := range objs {
		ExpectWithOffset(1, client.IgnoreNotFound(k8sClient.Delete(ctx, o.DeepCopyObject().(client.Object)))).To(Succeed())
	}
	for _, o := range objs {
		EventuallyWithOffset(1, func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object)))
		}, 10*time.Second).Should(BeTrue())
	}
}

// restoreAll creates the objects again from their backup, in its order, as a
// restore does: every object gets a new UID; status is not restored.
func restoreAll(objs []client.Object, edit func(client.Object)) {
	for _, o := range objs {
		c := o.DeepCopyObject().(client.Object)
		c.SetUID("")
		c.SetResourceVersion("")
		c.SetCreationTimestamp(metav1.Time{})
		c.SetManagedFields(nil)
		c.SetGeneration(0)
		if edit != nil {
			edit(c)
		}
		ExpectWithOffset(1, k8sClient.Create(ctx, c)).To(Succeed())
		ExpectWithOffset(1, c.GetUID()).NotTo(Equal(o.GetUID()))
	}
}

// tokenSecretIn returns the token Secret among backed-up objects.
func tokenSecretIn(at *tokensv1alpha1.AccessToken, objs []client.Object) *corev1.Secret {
	for _, o := range objs {
		if s, ok := o.(*corev1.Secret); ok && s.Namespace == at.Namespace && s.Name == at.Spec.Secret.Name {
			return s
		}
	}
	Fail("no token Secret in the backup")
	return nil
}

// stateIn decodes the state Secret among backed-up objects.
func stateIn(objs []client.Object) secret.State {
	for _, o := range objs {
		if s, ok := o.(*corev1.Secret); ok && s.Namespace == operatorNamespace {
			st, err := secret.DecodeState(s)
			Expect(err).NotTo(HaveOccurred())
			return st
		}
	}
	Fail("no state Secret in the backup")
	return secret.State{}
}

// restoredOwner waits for the AccessToken to be Ready and its Secret to belong
// to it, and returns it.
func restoredOwner(at *tokensv1alpha1.AccessToken) *tokensv1alpha1.AccessToken {
	EventuallyWithOffset(1, func(g Gomega) {
		cur := &tokensv1alpha1.AccessToken{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), cur)).To(Succeed())
		s, err := secretOf(at)
		g.Expect(err).NotTo(HaveOccurred())
		ref := metav1.GetControllerOf(s)
		g.Expect(ref).NotTo(BeNil())
		g.Expect(ref.UID).To(Equal(cur.UID))
		g.Expect(s.OwnerReferences).To(HaveLen(1))
		c := ready(at)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	settle(at)
	return get(at)
}

var _ = Describe("a restore from backup", func() {
	It("adopts the token Secret and the state under new UIDs, mints nothing, and still revokes a superseded token on time", func() {
		s, fake := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)
		first := fake.Issued()[0].Value

		By("renewing once, so that the first token waits for its revocation")
		clk.SetTime(at.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() int { return len(fake.Issued()) }, 10*time.Second).Should(Equal(2))
		settle(at)
		second := fake.Issued()[1].Value
		before := get(at)

		By("backing up and losing every object")
		backup := backupOf(s)
		Expect(stateIn(backup).Superseded).To(HaveLen(1))
		revokeAt := stateIn(backup).Superseded[0].RevokeAt
		loseAll(at, backup)
		calls := fake.Calls()

		By("restoring every object from the backup, owner reference included")
		restoreAll(backup, nil)
		removeAtEnd(at)
		restored := restoredOwner(at)
		Expect(restored.UID).NotTo(Equal(before.UID))
		Expect(fake.Calls()).To(Equal(calls), "a call to the endpoint after the restore")
		sec, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(sec.Data).To(Equal(tokenSecretIn(at, backup).Data))
		Expect(string(sec.Data["token"])).To(Equal(second))
		Expect(restored.Status.TokenFingerprint).To(Equal(before.Status.TokenFingerprint))
		Expect(restored.Status.ExpiresAt.Equal(before.Status.ExpiresAt)).To(BeTrue())
		Expect(restored.Status.InputsHash).NotTo(BeEmpty())
		Expect(restored.Finalizers).To(ContainElement(RevokeFinalizer))
		Expect(reasonsAbout(restored)).To(ContainElement(reasonSecretAdopted))
		state := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: secret.StateName(at)}, state)).To(Succeed())
		Eventually(func() string {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(state), state)).To(Succeed())
			return state.Labels[secret.LabelAccessTokenUID]
		}, 10*time.Second).Should(Equal(string(restored.UID)))

		By("a reconcile later still mints nothing")
		poke(at)
		settle(at)
		Expect(fake.Calls()).To(Equal(calls))

		By("revoking the superseded token at its time")
		clk.SetTime(revokeAt.Add(time.Second))
		poke(at)
		Eventually(func() bool { return fake.Valid(first) }, 10*time.Second).Should(BeFalse())
		Expect(fake.CallsBy(fakes.OutcomeRevoked)).To(Equal(1))
		Expect(fake.Valid(second)).To(BeTrue())
		Expect(fake.Issued()).To(HaveLen(2))
	})

	It("does not take a renew annotation it answered before the backup for a new request", func() {
		s, fake := startSample("oauth2-client-credentials")
		at := waitReady(s.AccessToken)

		By("renewing with the renew annotation, as kubectl tokenmint renew does")
		clk.Step(DefaultMinMintInterval)
		cur := get(at)
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Annotations = map[string]string{tokensv1alpha1.AnnotationRenew: "2026-12-06T03:12:00Z"}
		Expect(k8sClient.Patch(ctx, cur, patch)).To(Succeed())
		Eventually(func() int { return len(fake.Issued()) }, 10*time.Second).Should(Equal(2))
		settle(at)
		Expect(get(at).Status.LastRenewalRequest).To(Equal("2026-12-06T03:12:00Z"))

		By("restoring the AccessToken with its annotation and without its status")
		backup := backupOf(s)
		loseAll(at, backup)
		calls := fake.Calls()
		restoreAll(backup, func(o client.Object) { o.SetOwnerReferences(nil) })
		removeAtEnd(at)
		restored := restoredOwner(at)
		Expect(restored.Annotations).To(HaveKeyWithValue(tokensv1alpha1.AnnotationRenew, "2026-12-06T03:12:00Z"))
		Expect(restored.Status.LastRenewalRequest).To(Equal("2026-12-06T03:12:00Z"))

		By("minting nothing once the floor between mints has passed")
		clk.Step(DefaultMinMintInterval)
		poke(at)
		settle(at)
		Expect(fake.Calls()).To(Equal(calls), "the restored renew annotation was taken for a new request")
		Expect(fake.Issued()).To(HaveLen(2))
	})

	It("keeps using the refresh token, with owner references stripped by the backup tool", func() {
		s, fake := startSample("banking-oauth-password")
		at := waitReady(s.AccessToken)
		Expect(stateOf(at).RefreshToken).NotTo(BeEmpty())

		backup := backupOf(s)
		loseAll(at, backup)
		calls := fake.Calls()
		restoreAll(backup, func(o client.Object) { o.SetOwnerReferences(nil) })
		removeAtEnd(at)
		restored := restoredOwner(at)
		Expect(fake.Calls()).To(Equal(calls), "a call to the endpoint after the restore")
		sec, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(sec.Data).To(Equal(tokenSecretIn(at, backup).Data))

		By("renewing with the refresh token, not the password")
		clk.SetTime(restored.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() int { return fake.CallsBy(fakes.OutcomeRefreshed) }, 10*time.Second).Should(Equal(1))
		Expect(fake.CallsBy(fakes.OutcomeIssued)).To(Equal(1))
		waitReady(at)
	})

	It("sends nothing it kept to an issuer of that name that sends tokens elsewhere", func() {
		s, fake := startSample("banking-oauth-password")
		at := waitReady(s.AccessToken)
		refresh := stateOf(at).RefreshToken
		Expect(refresh).NotTo(BeEmpty())

		backup := backupOf(s)
		loseAll(at, backup)
		calls := fake.Calls()

		By("creating, under the issuer's name, one that calls another endpoint")
		other, otherFake := loadSampleFake("banking-oauth-password")
		restoreAll(backup, func(o client.Object) {
			if ti, ok := o.(*tokensv1alpha1.TokenIssuer); ok {
				ti.Spec = other.TokenIssuer.Spec
			}
		})
		removeAtEnd(at)
		Eventually(func() string { return renewingReason(at)() }, 10*time.Second).ShouldNot(BeEmpty())
		settle(at)
		GinkgoWriter.Printf("after the restore: %+v\n", renewing(at))
		// The mint this restore calls for waits for the least interval
		// between two mints of an AccessToken of that name.
		clk.Step(DefaultMinMintInterval)
		poke(at)
		Eventually(func() int { return otherFake.CallsBy(fakes.OutcomeIssued) }, 10*time.Second).Should(Equal(1), func() string {
			return renewing(at).Message
		})
		waitReady(at)
		settle(at)
		Expect(otherFake.Calls()).To(Equal(1), "the other endpoint got a call that was not a fresh issue")
		Expect(otherFake.CallsBy(fakes.OutcomeRefreshed)).To(BeZero())
		Expect(fake.Calls()).To(Equal(calls))
		Expect(stateOf(at).RefreshToken).NotTo(Equal(refresh))
		sec, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(sec.Data[secret.Key(at)])).To(Equal(otherFake.Issued()[0].Value))
	})
})

// loadSampleFake starts another fake of the named sample's provider and
// returns the sample pointed at it (not created).
func loadSampleFake(name string) (*samples.Sample, *fakes.Base) {
	for _, p := range samples.Providers {
		if p.Name != name {
			continue
		}
		fake, base := p.NewFake()
		s, err := samples.Load(p.File)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.PointAt(serveFake(fake, base))).To(Succeed())
		return s, base
	}
	Fail("no sample " + name)
	return nil, nil
}

// stateOf decodes the AccessToken's state Secret.
func stateOf(at *tokensv1alpha1.AccessToken) secret.State {
	s := &corev1.Secret{}
	ExpectWithOffset(1, k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: secret.StateName(at)}, s)).To(Succeed())
	st, err := secret.DecodeState(s)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return st
}

var _ = Describe("adopting an existing Secret", func() {
	handMade := func(ns, name string, typ corev1.SecretType, adopt bool) *corev1.Secret {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"team": "payments"},
				Annotations: map[string]string{"note": "made by hand"}},
			Type: typ,
			Data: map[string][]byte{"token": []byte("HAND-MADE-TOKEN"), "notes.txt": []byte("kept")},
		}
		if typ == corev1.SecretTypeBasicAuth {
			s.Data[corev1.BasicAuthUsernameKey] = []byte("someone")
		}
		if adopt {
			s.Annotations[secret.AnnotationAdopt] = "true"
		}
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
		return s
	}

	It("leaves an unmarked Secret alone, and takes it over once marked, minting at once and keeping its other keys", func() {
		e := newEnv()
		orig := handMade(e.ns, "migrated-token", corev1.SecretTypeOpaque, false)
		at := e.accessToken("migrated")
		removeAtEnd(at)
		Eventually(renewingReason(at), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonSecretNotOwned))
		settle(at)
		Expect(e.fake.Calls()).To(BeZero())
		s, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Data).To(Equal(orig.Data))
		Expect(s.OwnerReferences).To(BeEmpty())

		By("marking it for adoption")
		patch := client.MergeFrom(s.DeepCopy())
		s.Annotations[secret.AnnotationAdopt] = "true"
		Expect(k8sClient.Patch(ctx, s, patch)).To(Succeed())
		poke(at)
		cur := waitReady(at)
		settle(at)
		Expect(e.fake.Issued()).To(HaveLen(1))
		s, err = secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(metav1.IsControlledBy(s, cur)).To(BeTrue())
		Expect(string(s.Data["token"])).To(Equal(e.fake.Issued()[0].Value))
		Expect(string(s.Data["notes.txt"])).To(Equal("kept"), "a key tokenmint does not write is kept")
		Expect(s.Labels).To(HaveKeyWithValue("team", "payments"))
		Expect(s.Annotations).To(HaveKeyWithValue("note", "made by hand"))
		Expect(s.Annotations).To(HaveKey(secret.AnnotationOwnerProof))
		Expect(s.Labels).To(HaveKeyWithValue(tokensv1alpha1.LabelManagedBy, tokensv1alpha1.ManagedByValue))
		Eventually(func() []string { return reasonsAbout(cur) }, 10*time.Second).Should(ContainElement(reasonSecretAdopted))

		By("renewing it as any other")
		clk.SetTime(cur.Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() int { return len(e.fake.Issued()) }, 10*time.Second).Should(Equal(2))
		waitReady(at)
	})

	It("refuses a marked Secret of another type than the AccessToken writes", func() {
		e := newEnv()
		orig := handMade(e.ns, "basic-token", corev1.SecretTypeBasicAuth, true)
		at := e.accessToken("basic")
		removeAtEnd(at)
		Eventually(renewingReason(at), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonSecretNotOwned))
		settle(at)
		Expect(e.fake.Calls()).To(BeZero())
		s, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Data).To(Equal(orig.Data))
		Expect(s.OwnerReferences).To(BeEmpty())
	})
})

var _ = Describe("a forged owner reference", func() {
	It("on a Secret carrying another Secret's proof takes over nothing and mints nothing", func() {
		e := newEnv()
		victim := waitReady(e.accessToken("victim"))
		removeAtEnd(victim)
		real, err := secretOf(victim)
		Expect(err).NotTo(HaveOccurred())

		By("copying the victim's Secret, proof and record included, under another name, owned by another AccessToken")
		forged := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "thief-token", Labels: real.Labels, Annotations: real.Annotations,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "AccessToken",
					Name: "thief", UID: types.UID("00000000-0000-0000-0000-000000000001"), Controller: func() *bool { b := true; return &b }()}}},
			Data: real.Data,
		}
		forged.Labels[tokensv1alpha1.LabelAccessToken] = "thief"
		Expect(k8sClient.Create(ctx, forged)).To(Succeed())
		calls := e.fake.Calls()

		thief := e.accessToken("thief")
		removeAtEnd(thief)
		Eventually(renewingReason(thief), 10*time.Second).Should(Equal(tokensv1alpha1.ReasonSecretNotOwned))
		settle(thief)
		Expect(e.fake.Calls()).To(Equal(calls))
		Expect(get(thief).Status.TokenFingerprint).To(BeEmpty(), "status was rebuilt from a forged Secret")
		s, err := secretOf(thief)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.OwnerReferences[0].UID).To(Equal(forged.OwnerReferences[0].UID))
	})
})

// installationFingerprinter is the Fingerprinter of the manager under test,
// from its key Secret.
func installationFingerprinter() *secret.Fingerprinter {
	s := &corev1.Secret{}
	ExpectWithOffset(1, k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: testConfig().FingerprintKeySecret}, s)).To(Succeed())
	return secret.NewFingerprinter(s.Data["key"])
}

var _ = Describe("what earlier versions wrote", func() {
	It("rewrites a Secret whose proof is bound to the owner's UID once, without minting", func() {
		e := newEnv()
		at := waitReady(e.accessToken("uid-proof"))
		removeAtEnd(at)
		s, err := secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		token := string(s.Data["token"])
		f := installationFingerprinter()
		Expect(f.ProvesOwner(s, "AccessToken", at.Name)).To(BeTrue())

		By("replacing the proof with the one bound to the UID")
		writes := watchSecretWrites(e.ns)
		patch := client.MergeFrom(s.DeepCopy())
		s.Annotations[secret.AnnotationOwnerProof] = f.UIDOwnerProof(s.Namespace, s.Name, at.UID)
		Expect(k8sClient.Patch(ctx, s, patch)).To(Succeed())
		poke(at)
		Eventually(func(g Gomega) {
			s, err := secretOf(at)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(f.ProvesOwner(s, "AccessToken", at.Name)).To(BeTrue())
		}, 10*time.Second).Should(Succeed())
		settle(at)
		n, _, _ := writes.get()
		Expect(n).To(Equal(2), "Secret writes: the test's, and the manager's to add the proof by name")
		Expect(e.fake.Issued()).To(HaveLen(1), "minted again for a Secret with the earlier proof")
		s, err = secretOf(at)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(s.Data["token"])).To(Equal(token))
	})

	It("moves a state Secret named by the AccessToken's UID to its name, without minting", func() {
		s, fake := startSample("banking-oauth-password")
		at := waitReady(s.AccessToken)
		removeAtEnd(at)
		state := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: secret.StateName(at)}, state)).To(Succeed())
		refresh := stateOf(at).RefreshToken

		By("keeping the state under the UID, as earlier versions named it")
		old := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: secret.UIDStateName(at),
			Labels: state.Labels, Annotations: state.Annotations}, Data: state.Data}
		Expect(k8sClient.Create(ctx, old)).To(Succeed())
		Expect(k8sClient.Delete(ctx, state)).To(Succeed())
		poke(at)
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(old), &corev1.Secret{}))
		}, 10*time.Second).Should(BeTrue())
		Expect(stateOf(at).RefreshToken).To(Equal(refresh))
		settle(at)
		Expect(fake.Calls()).To(Equal(1))

		By("renewing with the refresh token it kept")
		clk.SetTime(get(at).Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() int { return fake.CallsBy(fakes.OutcomeRefreshed) }, 10*time.Second).Should(Equal(1))
	})
})

// recreate creates at again from its manifest: a new UID, no status.
func recreate(at *tokensv1alpha1.AccessToken) *tokensv1alpha1.AccessToken {
	again := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: at.Namespace, Name: at.Name}, Spec: at.Spec}
	ExpectWithOffset(1, k8sClient.Create(ctx, again)).To(Succeed())
	return again
}

var _ = Describe("a Secret retained by a deleted AccessToken", func() {
	It("is taken back with its valid token by a new AccessToken of the same name", func() {
		e := newEnv()
		at := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: e.ns},
			Spec: tokensv1alpha1.AccessTokenSpec{
				IssuerRef:            tokensv1alpha1.IssuerReference{Name: "cable"},
				Secret:               tokensv1alpha1.SecretTemplate{Name: "kept-token"},
				SecretDeletionPolicy: tokensv1alpha1.SecretDeletionPolicyRetain,
				RevocationPolicy:     tokensv1alpha1.RevocationPolicyNone,
			},
		}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		before := waitReady(at)
		deleteAndWait(at)
		Expect(ownedBy(before)).To(BeFalse())

		again := recreate(at)
		removeAtEnd(again)
		restored := restoredOwner(again)
		Expect(restored.UID).NotTo(Equal(before.UID))
		Expect(restored.Status.TokenFingerprint).To(Equal(before.Status.TokenFingerprint))
		Expect(e.fake.Issued()).To(HaveLen(1))
	})

	It("gets a new token when the deletion revoked the one it holds", func() {
		s, fake := startSample("oauth2-client-credentials", func(s *samples.Sample) {
			s.AccessToken.Spec.SecretDeletionPolicy = tokensv1alpha1.SecretDeletionPolicyRetain
		})
		at := waitReady(s.AccessToken)
		first := fake.Issued()[0].Value
		deleteAndWait(at)
		Expect(fake.Valid(first)).To(BeFalse())

		clk.Step(DefaultMinMintInterval)
		again := recreate(s.AccessToken)
		removeAtEnd(again)
		restoredOwner(again)
		Expect(fake.Issued()).To(HaveLen(2))
		sec, err := secretOf(again)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(sec.Data[secret.Key(again)])).To(Equal(fake.Issued()[1].Value))
		Expect(fake.Valid(string(sec.Data[secret.Key(again)]))).To(BeTrue())
	})
})

var _ = Describe("a ClusterAccessToken restored from backup", func() {
	It("gets its source's Secret back by name, mints nothing, and writes its copies again", func() {
		e := newClusterEnv()
		ns := e.namespace(true)
		cat := e.clusterAccessToken()
		Eventually(func() string { return sharedToken(ns) }, 20*time.Second).ShouldNot(BeEmpty())
		token := sharedToken(ns)
		source := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: sourceName(cat)}}
		settle(source)
		calls := e.fake.Calls()

		By("backing up the ClusterAccessToken and its source's Secret, not the source AccessToken nor the copies")
		backup := []client.Object{
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: get(source).Spec.Secret.Name}},
			&tokensv1alpha1.ClusterAccessToken{ObjectMeta: metav1.ObjectMeta{Name: cat.Name}},
		}
		for _, o := range backup {
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(o), o)).To(Succeed())
		}

		By("losing them: the ClusterAccessToken goes with its source and copies")
		Expect(k8sClient.Delete(ctx, getCAT(cat))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(cat), &tokensv1alpha1.ClusterAccessToken{}))
		}, 20*time.Second).Should(BeTrue())
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, backup[0].DeepCopyObject().(client.Object)))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(backup[0]), &corev1.Secret{}))
		}, 10*time.Second).Should(BeTrue())
		Expect(sharedToken(ns)).To(BeEmpty())

		restoreAll(backup, func(o client.Object) { o.SetOwnerReferences(nil); o.SetFinalizers(nil) })
		Eventually(func() string { return sharedToken(ns) }, 20*time.Second).Should(Equal(token))
		settle(source)
		Expect(e.fake.Calls()).To(Equal(calls), "a call to the endpoint after the restore")
		restored := getCAT(cat)
		s, err := secretOf(get(source))
		Expect(err).NotTo(HaveOccurred())
		Expect(metav1.IsControlledBy(s, get(source))).To(BeTrue())
		Expect(metav1.IsControlledBy(get(source), restored)).To(BeTrue())
		DeferCleanup(k8sClient.Delete, ctx, restored)
	})
})
