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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// pod returns a Pod of namespace owned by a ReplicaSet of Deployment owner.
func podOf(namespace, owner string, spec corev1.PodSpec) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: owner + "-", Namespace: namespace,
			Labels: map[string]string{"pod-template-hash": "5d8f7c9b6"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet",
				Name: owner + "-5d8f7c9b6", UID: "rs-uid", Controller: ptr.To(true)}},
		},
		Spec: spec,
	}
}

var _ = Describe("consumers that cannot see a rotation", func() {
	It("are named in RotationVisible and an event, unless they are restart targets", func() {
		e := newEnv()
		secretName := "consumed-token"
		envPod := podOf(e.ns, "api", corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox",
			Env: []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Key: "token"}}}}}}})
		subPathPod := podOf(e.ns, "worker", corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secretName}}}},
			Containers: []corev1.Container{{Name: "app", Image: "busybox",
				VolumeMounts: []corev1.VolumeMount{{Name: "t", MountPath: "/token", SubPath: "token"}}}}})
		volumePod := podOf(e.ns, "fine", corev1.PodSpec{
			Volumes:    []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secretName}}}},
			Containers: []corev1.Container{{Name: "app", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: "t", MountPath: "/tokens"}}}}})
		for _, p := range []*corev1.Pod{envPod, subPathPod, volumePod} {
			Expect(k8sClient.Create(ctx, p)).To(Succeed())
		}
		// The Deployments agree to be restarted by the AccessToken; only those
		// it lists as restart targets count as following the rotation.
		for _, name := range []string{"api", "worker"} {
			createDeployment(e.ns, name, map[string]string{tokensv1alpha1.AnnotationRestartOn: "consumed"})
		}

		at := &tokensv1alpha1.AccessToken{
			ObjectMeta: metav1.ObjectMeta{Name: "consumed", Namespace: e.ns},
			Spec: tokensv1alpha1.AccessTokenSpec{
				IssuerRef:      tokensv1alpha1.IssuerReference{Name: "cable"},
				Secret:         tokensv1alpha1.SecretTemplate{Name: secretName},
				RestartTargets: []tokensv1alpha1.RestartTarget{{Kind: "Deployment", Name: "worker"}},
			},
		}
		Expect(k8sClient.Create(ctx, at)).To(Succeed())
		visible := func() *metav1.Condition {
			return meta.FindStatusCondition(get(at).Status.Conditions, tokensv1alpha1.ConditionRotationVisible)
		}
		Eventually(visible, 10*time.Second).ShouldNot(BeNil())
		c := visible()
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonConsumersStale))
		Expect(c.Message).To(ContainSubstring("Deployment/api (env)"))
		Expect(c.Message).NotTo(ContainSubstring("worker"), "a restart target is covered")
		Expect(c.Message).NotTo(ContainSubstring("fine"), "a volume mount follows rotation")
		Expect(eventReasons(e.ns)).To(ContainElement(tokensv1alpha1.ReasonConsumersStale))

		By("covering the last stale consumer with a restart target")
		cur := get(at)
		cur.Spec.RestartTargets = append(cur.Spec.RestartTargets, tokensv1alpha1.RestartTarget{Kind: "Deployment", Name: "api"})
		Expect(k8sClient.Update(ctx, cur)).To(Succeed())
		clk.Step(2 * consumerScanTTL)
		clk.SetTime(get(at).Status.RenewalTime.Add(time.Second))
		poke(at)
		Eventually(func() metav1.ConditionStatus { return visible().Status }, 10*time.Second).Should(Equal(metav1.ConditionTrue))
	})
})

func eventReasons(namespace string) []string {
	list := &corev1.EventList{}
	Expect(k8sClient.List(ctx, list, client.InNamespace(namespace))).To(Succeed())
	var reasons []string
	for _, ev := range list.Items {
		reasons = append(reasons, ev.Reason)
	}
	return reasons
}
