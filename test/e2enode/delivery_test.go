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
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/node"
)

// Lifetimes of the tokens the fakes issue. A mounted token lives a minute and
// is renewed 40 s before it expires, so the kubelet (resyncing pods every 10-15 s
// on this node) has 40 s to deliver the renewal.
const (
	mountedLifetime    = time.Minute
	mountedRenewBefore = 40 * time.Second
	longLifetime       = time.Hour
)

var _ = Describe("tokens delivered to pods on a real node", Ordered, func() {
	var (
		mounted, env, steady, stale issuer
		mountedSecret               *secretTimeline
	)

	BeforeAll(func() {
		kubectl("create", "namespace", appNamespace)
		mounted = startIssuer(appNamespace, "mounted", mountedLifetime)
		env = startIssuer(appNamespace, "env", longLifetime)
		steady = startIssuer(appNamespace, "steady", longLifetime)
		kubectl("create", "namespace", staleNamespace)
		stale = startIssuer(staleNamespace, "stale", longLifetime)
		apply("tokens",
			mounted.accessToken("mounted", mountedRenewBefore),
			env.accessToken("env", 0, tokensv1alpha1.RestartTarget{Kind: "Deployment", Name: "env-app"}),
			steady.accessToken("steady", 0),
		)
		mountedSecret = watchSecret(appNamespace, "mounted-token", "token")
		apply("workloads", mountingApp(appNamespace, "mounted-app", "mounted-token"), envApp(appNamespace, "env-app", "env-token"))
	})

	It("gives a pod that mounts the Secret the issued token, and every renewal before the old token expires", func() {
		By("the pod reads exactly the token the provider issued")
		var pod *corev1.Pod
		Eventually(func(g Gomega) {
			var err error
			pod, err = onlyPod(appNamespace, "mounted-app")
			g.Expect(err).NotTo(HaveOccurred())
			issued := mounted.fake.Issued()
			g.Expect(issued).To(HaveLen(1))
			g.Expect(latestFingerprint(pod, "app")).To(Equal(fingerprint(issued[0].Value)))
		}, time.Minute, 200*time.Millisecond).Should(Succeed())
		old := mounted.fake.Issued()[0]

		By("the Secret is renewed before the token expires")
		var renewal secretChange
		Eventually(func(g Gomega) {
			issued := mounted.fake.Issued()
			g.Expect(len(issued)).To(BeNumerically(">=", 2))
			renewal = changeTo(g, mountedSecret, issued[1].Value)
		}, time.Until(old.ExpiresAt), 100*time.Millisecond).Should(Succeed())
		Expect(renewal.At).To(BeTemporally("<", old.ExpiresAt))

		By("the same pod reads the new token before the old one expires")
		var seen time.Time
		Eventually(func(g Gomega) {
			seen = firstSeen(g, pod, renewal.Fingerprint)
		}, time.Until(old.ExpiresAt), 100*time.Millisecond).Should(Succeed())
		Expect(seen).To(BeTemporally("<", old.ExpiresAt), "the pod read the new token only after the old one expired")
		Expect(onlyPod(appNamespace, "mounted-app")).To(HaveField("UID", pod.UID), "the pod was replaced")

		delay := seen.Sub(renewal.At)
		reportDelay(fmt.Sprintf("Secret update to file in pod: %s (the old token had %s left)",
			delay.Round(10*time.Millisecond), old.ExpiresAt.Sub(seen).Round(time.Second)))
	})

	It("restarts a Deployment that reads the token from an environment variable, whose new pod holds the new token", func() {
		By("the first pod holds the first token")
		var first *corev1.Pod
		Eventually(func(g Gomega) {
			var err error
			first, err = onlyPod(appNamespace, "env-app")
			g.Expect(err).NotTo(HaveOccurred())
			issued := env.fake.Issued()
			g.Expect(issued).NotTo(BeEmpty())
			g.Expect(latestFingerprint(first, "app")).To(Equal(fingerprint(issued[len(issued)-1].Value)))
		}, time.Minute, 200*time.Millisecond).Should(Succeed())
		before := len(env.fake.Issued())

		By("renewing the token")
		requestRenewal(appNamespace, "env")
		Eventually(func() int { return len(env.fake.Issued()) }, 30*time.Second, 100*time.Millisecond).Should(Equal(before + 1))
		renewed := env.fake.Issued()[before].Value

		By("the Deployment is restarted and its new pod holds the new token")
		Eventually(func(g Gomega) {
			d := &appsv1.Deployment{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: "env-app"}, d)).To(Succeed())
			g.Expect(d.Spec.Template.Annotations).To(HaveKey(tokensv1alpha1.AnnotationRestartedAt))
			pod, err := onlyPod(appNamespace, "env-app")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pod.UID).NotTo(Equal(first.UID))
			g.Expect(latestFingerprint(pod, "app")).To(Equal(fingerprint(renewed)))
		}, time.Minute, 200*time.Millisecond).Should(Succeed())
	})

	It("names the workloads that can never see a renewal, until restart targets cover them", func() {
		By("workloads read the Secret through env, envFrom, a subPath mount and a plain mount")
		apply("stale-consumers",
			envApp(staleNamespace, "env-forgotten", "unseen-token"),
			envFromApp(staleNamespace, "envfrom-forgotten", "unseen-token"),
			subPathApp(staleNamespace, "subpath-forgotten", "unseen-token"),
			mountingApp(staleNamespace, "mount-fine", "unseen-token"),
		)
		// Their pods wait for the Secret; the operator looks at pods.
		Eventually(func(g Gomega) {
			pods := &corev1.PodList{}
			g.Expect(k8sClient.List(ctx, pods, client.InNamespace(staleNamespace))).To(Succeed())
			g.Expect(pods.Items).To(HaveLen(4))
		}, time.Minute, 250*time.Millisecond).Should(Succeed())
		apply("unseen", stale.accessToken("unseen", 0))
		forgotten := []string{"Deployment/env-forgotten (env)", "Deployment/envfrom-forgotten (envFrom)", "Deployment/subpath-forgotten (subPath)"}

		By("a condition names each workload and how it reads the token")
		Eventually(func(g Gomega) {
			c := rotationVisible(g, staleNamespace, "unseen")
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonConsumersStale))
			for _, f := range forgotten {
				g.Expect(c.Message).To(ContainSubstring(f))
			}
			g.Expect(c.Message).NotTo(ContainSubstring("mount-fine"))
		}, 30*time.Second, 250*time.Millisecond).Should(Succeed())

		By("a Warning event says the same")
		Eventually(func(g Gomega) {
			events := &eventsv1.EventList{}
			g.Expect(k8sClient.List(ctx, events, client.InNamespace(staleNamespace))).To(Succeed())
			i := slices.IndexFunc(events.Items, func(e eventsv1.Event) bool {
				return e.Regarding.Kind == "AccessToken" && e.Regarding.Name == "unseen" && e.Reason == tokensv1alpha1.ReasonConsumersStale
			})
			g.Expect(i).NotTo(Equal(-1), "no %s event", tokensv1alpha1.ReasonConsumersStale)
			g.Expect(events.Items[i].Type).To(Equal(corev1.EventTypeWarning))
			for _, f := range forgotten {
				g.Expect(events.Items[i].Note).To(ContainSubstring(f))
			}
		}, 30*time.Second, 250*time.Millisecond).Should(Succeed())

		By("once restart targets cover them, the next token is seen by all")
		kubectl("patch", "accesstoken", "unseen", "-n", staleNamespace, "--type=merge", "-p",
			`{"spec":{"restartTargets":[{"kind":"Deployment","name":"env-forgotten"},{"kind":"Deployment","name":"envfrom-forgotten"},{"kind":"Deployment","name":"subpath-forgotten"}]}}`)
		before := len(stale.fake.Issued())
		requestRenewal(staleNamespace, "unseen")
		Eventually(func(g Gomega) {
			c := rotationVisible(g, staleNamespace, "unseen")
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonConsumersFollow))
		}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
		// The renewal asked for is made once the minimum interval since the
		// last mint has passed (10 s by default).
		Eventually(func() int { return len(stale.fake.Issued()) }, 30*time.Second, 250*time.Millisecond).Should(Equal(before + 1))
	})

	It("mints nothing when the operator's pod is deleted, and the replacement takes over through leader election", func() {
		By("giving the mounted token a long life too, so that no renewal is due; the pod reads it")
		mounted.fake.SetLifetime(longLifetime)
		before := len(mounted.fake.Issued())
		requestRenewal(appNamespace, "mounted")
		var renewal secretChange
		Eventually(func(g Gomega) {
			issued := mounted.fake.Issued()
			g.Expect(issued).To(HaveLen(before + 1))
			renewal = changeTo(g, mountedSecret, issued[before].Value)
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
		// The kubelet resyncs a pod every 10 to 15 s here; give it two rounds.
		Eventually(func(g Gomega) {
			pod, err := onlyPod(appNamespace, "mounted-app")
			g.Expect(err).NotTo(HaveOccurred())
			firstSeen(g, pod, renewal.Fingerprint)
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())

		calls := callsOf(mounted, env, steady, stale)
		oldPod, err := managerPod()
		Expect(err).NotTo(HaveOccurred())
		oldLease := lease()
		Expect(oldLease.Spec.HolderIdentity).NotTo(BeNil())

		By("deleting the operator's pod")
		kubectl("delete", "pod", "-n", operatorNamespace, oldPod.Name)

		By("a new pod starts and takes the lease")
		var newPod *corev1.Pod
		Eventually(func(g Gomega) {
			newPod, err = managerPod()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(newPod.UID).NotTo(Equal(oldPod.UID))
			g.Expect(newPod).To(beReady())
			l := lease()
			g.Expect(l.Spec.HolderIdentity).NotTo(BeNil())
			g.Expect(*l.Spec.HolderIdentity).NotTo(BeElementOf("", *oldLease.Spec.HolderIdentity))
			g.Expect(*l.Spec.LeaseTransitions).To(BeNumerically(">", *oldLease.Spec.LeaseTransitions))
		}, time.Minute, 250*time.Millisecond).Should(Succeed())
		Eventually(func() string { return containerLog(newPod, "manager") }, 10*time.Second, 250*time.Millisecond).
			Should(ContainSubstring("Successfully acquired lease"))

		By("no token is minted: they are all still good")
		Consistently(func() map[string]int { return callsOf(mounted, env, steady, stale) }, 5*time.Second, 250*time.Millisecond).
			Should(Equal(calls))

		By("the new leader serves: a renewal asked for is made")
		before = len(steady.fake.Issued())
		requestRenewal(appNamespace, "steady")
		Eventually(func(g Gomega) {
			issued := steady.fake.Issued()
			g.Expect(issued).To(HaveLen(before + 1))
			s := &corev1.Secret{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: "steady-token"}, s)).To(Succeed())
			g.Expect(string(s.Data["token"])).To(Equal(issued[before].Value))
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	})

	AfterAll(func() {
		pod, err := onlyPod(appNamespace, "mounted-app")
		if err != nil || len(mountedSecret.all()) < 2 {
			return
		}
		var delays []string
		for _, c := range mountedSecret.all()[1:] {
			seen, err := fingerprintsSeen(pod, "app")
			Expect(err).NotTo(HaveOccurred())
			if i := slices.IndexFunc(seen, func(l node.LogLine) bool { return l.Text == c.Fingerprint }); i >= 0 {
				delays = append(delays, seen[i].Time.Sub(c.At).Round(10*time.Millisecond).String())
			}
		}
		reportDelay("every Secret update to file in pod this run: " + strings.Join(delays, ", "))
	})
})

func rotationVisible(g Gomega, namespace, name string) *metav1.Condition {
	at := &tokensv1alpha1.AccessToken{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, at)).To(Succeed())
	c := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionRotationVisible)
	g.Expect(c).NotTo(BeNil(), "no %s condition", tokensv1alpha1.ConditionRotationVisible)
	return c
}

// requestRenewal asks for a renewal of an AccessToken the way users do.
func requestRenewal(namespace, name string) {
	kubectl("annotate", "accesstoken", name, "-n", namespace, "--overwrite",
		tokensv1alpha1.AnnotationRenew+"="+time.Now().Format(time.RFC3339Nano))
}

// changeTo returns the moment the Secret's watch saw token.
func changeTo(g Gomega, t *secretTimeline, token string) secretChange {
	all := t.all()
	i := slices.IndexFunc(all, func(c secretChange) bool { return c.Fingerprint == fingerprint(token) })
	g.Expect(i).NotTo(Equal(-1), "the Secret has not held the token yet")
	return all[i]
}

// firstSeen returns when the pod first printed fingerprint.
func firstSeen(g Gomega, pod *corev1.Pod, fp string) time.Time {
	seen, err := fingerprintsSeen(pod, "app")
	g.Expect(err).NotTo(HaveOccurred())
	i := slices.IndexFunc(seen, func(l node.LogLine) bool { return l.Text == fp })
	g.Expect(i).NotTo(Equal(-1), "the pod has not read the token yet")
	return seen[i].Time
}

func callsOf(issuers ...issuer) map[string]int {
	calls := map[string]int{}
	for _, iss := range issuers {
		calls[iss.sample.ClusterTokenIssuer.Name] = iss.fake.Calls()
	}
	return calls
}

// lease is the manager's leader election Lease.
func lease() *coordinationv1.Lease {
	l := &coordinationv1.Lease{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "tokenmint.tokens.tokenmint.dev"}, l)).To(Succeed())
	return l
}

// reportDelay shows a measurement in the suite's output (go test -v) and report.
func reportDelay(what string) {
	AddReportEntry(what)
	GinkgoWriter.Println(what)
	fmt.Println(what)
}
