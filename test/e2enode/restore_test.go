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
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

const (
	// restoreGrace is the issuer's revokeGracePeriod: long enough for the
	// kubelet to deliver the renewal and for the delete and restore to happen
	// while the replaced token still waits for its revocation.
	restoreGrace = 90 * time.Second
	// revokedWithin bounds how late after its time the replaced token may be
	// revoked.
	revokedWithin = 15 * time.Second
)

// A restore from backup on a real node, as docs/backup-restore.md describes
// it: the issuer, its credential Secret, the token Secret, the state Secret and
// the AccessToken are read with kubectl as YAML, deleted without revoking (the
// namespace and the pod that mounts the token stay), and created again from
// that YAML with the metadata a backup tool such as Velero keeps (name,
// namespace, labels, annotations: no UID, owner references, finalizers or
// status), in the order the doc gives. The garbage collector of the node's
// kube-controller-manager runs throughout.
var _ = Describe("a restore from backup on a real node", Ordered, func() {
	restoreDrill("node-restore", changeParameters, false)
})

// changeParameters renews an AccessToken at once through a change of its
// parameters.
func changeParameters(namespace, name string) {
	kubectl("patch", "accesstoken", name, "-n", namespace, "--type=merge", "-p",
		`{"spec":{"parameters":{"scopes":["orders.read","orders.write"]}}}`)
}

// restoreDrill is the body of an Ordered container: an AccessToken in
// namespace (created by it), its token renewed once with renew, then backed
// up, deleted and restored while a pod reads the token. The backup keeps
// owner references when keepOwnerReferences is set, as some tools do.
func restoreDrill(namespace string, renew func(namespace, name string), keepOwnerReferences bool) {
	var (
		provider *fakes.Base
		at       *tokensv1alpha1.AccessToken
	)

	BeforeAll(func() {
		kubectl("create", "namespace", namespace)

		By("a TokenIssuer that revokes (the OAuth2 sample's, in the namespace), its credential Secret and an AccessToken")
		p := samples.Providers[slices.IndexFunc(samples.Providers, func(p samples.Provider) bool { return p.Name == "oauth2-client-credentials" })]
		fake, base := p.NewFake()
		provider = base
		provider.Lifetime = longLifetime // nothing falls due during the spec but the renewal asked for
		s, err := samples.Load(p.File)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.PointAt(fakes.Start(GinkgoTB(), fake).URL)).To(Succeed())
		s.FillCredentials()
		Expect(s.Spec().Revoke).NotTo(BeNil())
		s.Spec().RevokeGracePeriod = &tokensv1alpha1.Duration{Duration: restoreGrace}
		ti := &tokensv1alpha1.TokenIssuer{
			TypeMeta:   metav1.TypeMeta{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "TokenIssuer"},
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: s.ClusterTokenIssuer.Name},
			Spec:       s.ClusterTokenIssuer.Spec.IssuerSpec,
		}
		var objs []client.Object
		for _, sec := range s.Secrets {
			sec.Namespace = namespace
			objs = append(objs, sec)
		}
		at = s.AccessToken
		at.Namespace = namespace
		at.Name = "restored"
		at.Spec.IssuerRef = tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.TokenIssuerKind, Name: ti.Name}
		at.Spec.Secret.Name = "restored-token"
		apply(namespace+"-tokens", append(objs, ti, at)...)

		By("a pod mounting the token Secret")
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "default"}, &corev1.ServiceAccount{})
		}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
		apply(namespace+"-app", mountingApp(namespace, "restore-app", at.Spec.Secret.Name))
	})

	It("mints nothing, keeps the pod reading a valid token throughout, and revokes the replaced token on time", func() {
		By("the pod reads the first token")
		var pod *corev1.Pod
		Eventually(func(g Gomega) {
			var err error
			pod, err = onlyPod(namespace, "restore-app")
			g.Expect(err).NotTo(HaveOccurred())
			issued := provider.Issued()
			g.Expect(issued).To(HaveLen(1))
			g.Expect(latestFingerprint(pod, "app")).To(Equal(fingerprint(issued[0].Value)))
		}, 2*time.Minute, 200*time.Millisecond).Should(Succeed())

		By("renewing once, so that the first token waits for its revocation; the pod reads the second")
		renew(namespace, at.Name)
		// The renewal waits for the least interval between two mints (10 s).
		Eventually(func() []fakes.IssuedToken { return provider.Issued() }, 30*time.Second, 100*time.Millisecond).Should(HaveLen(2))
		first, second := provider.Issued()[0].Value, provider.Issued()[1].Value
		// The kubelet resyncs a pod every 10 to 15 s here.
		Eventually(func(g Gomega) {
			g.Expect(latestFingerprint(pod, "app")).To(Equal(fingerprint(second)))
		}, time.Minute, 200*time.Millisecond).Should(Succeed())
		var revokeAt time.Time
		Eventually(func(g Gomega) {
			st := stateSecret(g, at)
			g.Expect(st.Superseded).To(HaveLen(1))
			revokeAt = st.Superseded[0].RevokeAt
		}, 10*time.Second, 100*time.Millisecond).Should(Succeed())
		Expect(provider.Valid(first)).To(BeTrue())
		old := getAccessToken(at)

		By("watching, from now to the end, what the pod reads and whether the provider takes it")
		reads := watchPodReads(pod, provider)
		DeferCleanup(reads.stop)

		By("backing up as YAML what docs/backup-restore.md lists")
		stateName := secret.StateName(at)
		issuerBackup := backup(namespace+"-backup-issuer", keepOwnerReferences,
			[]string{"secret", "oauth2-client", "-n", namespace},
			[]string{"tokenissuer", at.Spec.IssuerRef.Name, "-n", namespace})
		secretsBackup := backup(namespace+"-backup-secrets", keepOwnerReferences,
			[]string{"secret", stateName, "-n", operatorNamespace},
			[]string{"secret", at.Spec.Secret.Name, "-n", namespace})
		tokenBackup := backup(namespace+"-backup-accesstoken", keepOwnerReferences,
			[]string{"accesstoken", at.Name, "-n", namespace})
		backedUp := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: at.Spec.Secret.Name}, backedUp)).To(Succeed())
		Expect(string(backedUp.Data["token"])).To(Equal(second))
		issued := provider.CallsBy(fakes.OutcomeIssued)

		By("deleting every backed-up object without revoking: revocationPolicy None first, as the doc says for a drill")
		kubectl("patch", "accesstoken", at.Name, "-n", namespace, "--type=merge", "-p",
			`{"spec":{"revocationPolicy":"None"}}`)
		Eventually(func() []string { return getAccessToken(at).Finalizers }, 20*time.Second, 100*time.Millisecond).
			ShouldNot(ContainElement("tokens.tokenmint.dev/revoke"))
		deletedAt := time.Now()
		kubectl("delete", "accesstoken", at.Name, "-n", namespace, "--wait=true", "--timeout=30s")
		kubectl("delete", "secret", at.Spec.Secret.Name, "-n", namespace, "--ignore-not-found", "--wait=true", "--timeout=30s")
		kubectl("delete", "secret", stateName, "-n", operatorNamespace, "--ignore-not-found", "--wait=true", "--timeout=30s")
		kubectl("delete", "tokenissuer", at.Spec.IssuerRef.Name, "-n", namespace, "--wait=true", "--timeout=30s")
		kubectl("delete", "secret", "oauth2-client", "-n", namespace, "--wait=true", "--timeout=30s")
		Expect(provider.Valid(first)).To(BeTrue(), "the deletion revoked the replaced token")
		Expect(provider.Valid(second)).To(BeTrue(), "the deletion revoked the current token")

		By("restoring in the doc's order: issuer and credentials, then state and token Secrets, then the AccessToken")
		kubectl("create", "-f", issuerBackup)
		kubectl("create", "-f", secretsBackup)
		kubectl("create", "-f", tokenBackup)
		restoredAt := time.Now()

		By("the restored AccessToken is Ready and owns the restored Secret, under its new UID")
		var restored *tokensv1alpha1.AccessToken
		Eventually(func(g Gomega) {
			restored = &tokensv1alpha1.AccessToken{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(at), restored)).To(Succeed())
			g.Expect(restored.UID).NotTo(Equal(old.UID))
			c := meta.FindStatusCondition(restored.Status.Conditions, tokensv1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "%s: %s", c.Reason, c.Message)
			s := &corev1.Secret{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: at.Spec.Secret.Name}, s)).To(Succeed())
			g.Expect(s.OwnerReferences).To(HaveLen(1))
			g.Expect(metav1.IsControlledBy(s, restored)).To(BeTrue(), "owner references %v", s.OwnerReferences)
			g.Expect(string(s.Data["token"])).To(Equal(second))
			g.Expect(stateSecret(g, at).Superseded).To(HaveLen(1))
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
		reportDelay(fmt.Sprintf("restore: deleted to Ready again %s, created to Ready %s",
			time.Since(deletedAt).Round(10*time.Millisecond), time.Since(restoredAt).Round(10*time.Millisecond)))
		Expect(restored.Status.TokenFingerprint).To(Equal(old.Status.TokenFingerprint))
		Expect(restored.Status.ExpiresAt.Equal(old.Status.ExpiresAt)).To(BeTrue())
		Expect(restored.Spec.RevocationPolicy).To(BeEmpty(), "the backup was taken before the drill's patch")
		Expect(provider.CallsBy(fakes.OutcomeIssued)).To(Equal(issued))
		// A mint the restore called for would wait for --min-mint-interval
		// (10 s) after the last one: watch longer than that.
		Consistently(func() []fakes.IssuedToken { return provider.Issued() }, 12*time.Second, 100*time.Millisecond).
			Should(HaveLen(2), "a token was minted on restore")
		Expect(time.Now()).To(BeTemporally("<", revokeAt),
			"the restore took so long that the replaced token was due before it ended: raise restoreGrace")
		Expect(provider.Valid(first)).To(BeTrue(), "the replaced token was revoked before its time")

		By("the replaced token is revoked at its time, not before, through the restored issuer")
		var revokedSeen time.Time
		Eventually(func() bool {
			if provider.Valid(first) {
				return false
			}
			revokedSeen = time.Now()
			return true
		}, time.Until(revokeAt)+revokedWithin, 100*time.Millisecond).Should(BeTrue(), "the replaced token was not revoked")
		reportDelay(fmt.Sprintf("restore: the replaced token was revoked %s after its time",
			revokedSeen.Sub(revokeAt).Round(10*time.Millisecond)))
		Expect(revokedSeen).To(BeTemporally(">=", revokeAt.Add(-time.Second)), "revoked before its grace period ended")
		Expect(provider.CallsBy(fakes.OutcomeRevoked)).To(Equal(1))
		Expect(provider.Valid(second)).To(BeTrue())
		Eventually(func(g Gomega) { g.Expect(stateSecret(g, at).Superseded).To(BeEmpty()) }, 10*time.Second, 100*time.Millisecond).Should(Succeed())

		By("the pod, the same one, read the second token, valid, throughout")
		reads.stop()
		Expect(reads.problems()).To(BeEmpty())
		Expect(reads.count()).To(BeNumerically(">=", int(time.Since(deletedAt)/time.Second)),
			"the pod's reads were polled too rarely to say")
		now, err := onlyPod(namespace, "restore-app")
		Expect(err).NotTo(HaveOccurred())
		Expect(now.UID).To(Equal(pod.UID), "the pod was replaced")
		Expect(now.Status.ContainerStatuses).To(HaveLen(1))
		Expect(now.Status.ContainerStatuses[0].RestartCount).To(BeZero(), "the pod's container restarted")
		Expect(provider.Issued()).To(HaveLen(2), "a token was minted after the restore")
	})

	AfterAll(func() {
		// The AccessToken first, revoking its token while the provider still
		// answers and the issuer and its credential Secret are still there,
		// so that nothing is left retrying against them; then the rest.
		for _, args := range [][]string{
			{"delete", "accesstokens", "--all", "-n", namespace, "--wait=true", "--timeout=30s"},
			{"delete", "namespace", namespace, "--wait=true", "--timeout=60s"},
		} {
			if out, err := execOutput(cp.Kubectl(), append([]string{"--kubeconfig", admin}, args...)...); err != nil {
				AddReportEntry("kubectl "+args[0]+" "+args[1], out)
			}
		}
	})
}

// backup writes, as a backup tool does, the objects kubectl reads (each given
// as its `kubectl get` arguments) to one manifest, and returns its path. Of the
// metadata, only what Velero restores is kept: name, namespace, labels and
// annotations, and owner references when keepOwnerReferences is set; status is
// dropped.
func backup(name string, keepOwnerReferences bool, objects ...[]string) string {
	var manifest bytes.Buffer
	for _, args := range objects {
		raw := kubectl(append([]string{"get", "-o", "yaml"}, args...)...)
		var obj map[string]any
		Expect(yaml.Unmarshal([]byte(raw), &obj)).To(Succeed())
		md, _ := obj["metadata"].(map[string]any)
		Expect(md).NotTo(BeNil())
		kept := map[string]any{}
		keep := []string{"name", "namespace", "labels", "annotations"}
		if keepOwnerReferences {
			keep = append(keep, "ownerReferences")
		}
		for _, k := range keep {
			if v, ok := md[k]; ok {
				kept[k] = v
			}
		}
		obj["metadata"] = kept
		delete(obj, "status")
		out, err := yaml.Marshal(obj)
		Expect(err).NotTo(HaveOccurred())
		manifest.WriteString("---\n")
		manifest.Write(out)
	}
	file := filepath.Join(dir, name+".yaml")
	Expect(os.WriteFile(file, manifest.Bytes(), 0o600)).To(Succeed())
	return file
}

func getAccessToken(at *tokensv1alpha1.AccessToken) *tokensv1alpha1.AccessToken {
	cur := &tokensv1alpha1.AccessToken{}
	ExpectWithOffset(1, k8sClient.Get(ctx, client.ObjectKeyFromObject(at), cur)).To(Succeed())
	return cur
}

// stateSecret decodes the AccessToken's state Secret in the operator namespace.
func stateSecret(g Gomega, at *tokensv1alpha1.AccessToken) secret.State {
	s := &corev1.Secret{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: secret.StateName(at)}, s)).To(Succeed())
	st, err := secret.DecodeState(s)
	g.Expect(err).NotTo(HaveOccurred())
	return st
}

// podReads polls, every 200 ms, the last token a pod read from its mounted
// file and checks that the provider takes it at that moment: a token it
// issued, neither revoked nor expired.
type podReads struct {
	mu     sync.Mutex
	reads  int
	issues []string
	done   chan struct{}
	once   sync.Once
	ended  chan struct{}
}

func watchPodReads(pod *corev1.Pod, provider *fakes.Base) *podReads {
	r := &podReads{done: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer GinkgoRecover()
		defer close(r.ended)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-tick.C:
			}
			at := time.Now()
			fp, err := latestFingerprint(pod, "app")
			r.check(at, fp, err, provider)
		}
	}()
	return r
}

func (r *podReads) check(at time.Time, fp string, err error, provider *fakes.Base) {
	problem := ""
	switch {
	case err != nil:
		problem = "reading the pod's log: " + err.Error()
	case fp == "":
		problem = "the pod read no token"
	case fp == fingerprint(""):
		problem = "the pod read an empty file"
	default:
		issued := provider.Issued()
		i := slices.IndexFunc(issued, func(t fakes.IssuedToken) bool { return fingerprint(t.Value) == fp })
		switch {
		case i < 0:
			problem = "the pod read a token the provider never issued: " + fp
		case !provider.Valid(issued[i].Value):
			problem = fmt.Sprintf("the pod read token #%d, which the provider no longer takes (revoked %t)", i+1, issued[i].Revoked)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads++
	if problem != "" {
		r.issues = append(r.issues, at.Format("15:04:05.000")+" "+problem)
	}
}

// stop ends the polling and waits for it.
func (r *podReads) stop() {
	r.once.Do(func() { close(r.done) })
	<-r.ended
}

func (r *podReads) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.issues)
}

func (r *podReads) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads
}
