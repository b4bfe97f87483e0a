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
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/node"
	"github.com/tokenmint/tokenmint/test/samples"
)

const appNamespace = "node-apps"

// tokenMount is where workloads mount their token's Secret.
const tokenMount = "/var/run/tokens"

// Scripts of the busybox workloads. They print the token's SHA-256, never the
// token: the first whenever the mounted file changes (polled every 200 ms),
// the second once, from the environment, at start.
const (
	watchMountedToken = `trap 'exit 0' TERM
last=
while true; do
  set -- $(sha256sum ` + tokenMount + `/token)
  if [ "$1" != "$last" ]; then echo "token sha256:$1"; last=$1; fi
  sleep 0.2
done`
	printEnvToken = `echo "token sha256:$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)"
exec sleep 2147483647`
)

// issuer is a ClusterTokenIssuer from the cable-transactions sample, served
// by its own fake so that each AccessToken's mints can be told apart.
type issuer struct {
	fake   *fakes.Base
	sample *samples.Sample
}

// startIssuer serves a fake issuing tokens that live lifetime and applies the
// sample's issuer, named cable-transactions-<suffix>, pointed at it.
func startIssuer(suffix string, lifetime time.Duration) issuer {
	p := samples.Providers[0]
	Expect(p.Name).To(Equal("cable-transactions"))
	fake, base := p.NewFake()
	base.Lifetime = lifetime
	url := fakes.Start(GinkgoTB(), fake).URL
	s, err := samples.Load(p.File)
	Expect(err).NotTo(HaveOccurred())
	Expect(s.PointAt(url)).To(Succeed())
	s.FillCredentials()
	s.Place(appNamespace, operatorNamespace, "-"+suffix)
	objects := s.Objects()
	apply("issuer-"+suffix, objects[:len(objects)-1]...) // all but the sample's AccessToken
	return issuer{fake: base, sample: s}
}

// accessToken is the sample's AccessToken, named name, writing Secret
// <name>-token from iss, renewed renewBefore its expiry when set.
func (iss issuer) accessToken(name string, renewBefore time.Duration, restart ...tokensv1alpha1.RestartTarget) *tokensv1alpha1.AccessToken {
	at := iss.sample.AccessToken.DeepCopy()
	at.Name = name
	at.Spec.Secret.Name = name + "-token"
	if renewBefore > 0 {
		at.Spec.RenewBefore = &metav1.Duration{Duration: renewBefore}
	}
	at.Spec.RestartTargets = restart
	return at
}

// deployment is one busybox pod running script as a non-root user, on the
// node's network, with the Secret volumes given.
func deployment(name, script string, mutate func(*corev1.PodSpec)) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	spec := corev1.PodSpec{
		HostNetwork:                   true,
		Tolerations:                   []corev1.Toleration{node.Toleration},
		TerminationGracePeriodSeconds: ptr.To[int64](1),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), RunAsNonRoot: ptr.To(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:            "app",
			Image:           node.BusyboxImage,
			ImagePullPolicy: corev1.PullNever,
			Command:         []string{"sh", "-c", script},
			SecurityContext: &corev1.SecurityContext{
				ReadOnlyRootFilesystem:   ptr.To(true),
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
	}
	if mutate != nil {
		mutate(&spec)
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

// mountingApp reads the token from the Secret mounted as a volume, as the
// kubelet keeps it up to date.
func mountingApp(name, secret string) *appsv1.Deployment {
	return deployment(name, watchMountedToken, func(spec *corev1.PodSpec) {
		spec.Volumes = []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: secret}}}}
		spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "token", MountPath: tokenMount, ReadOnly: true}}
	})
}

// envApp reads the token once, from an environment variable.
func envApp(name, secret string) *appsv1.Deployment {
	return deployment(name, printEnvToken, func(spec *corev1.PodSpec) {
		spec.Containers[0].Env = []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "token"}}}}
	})
}

// envFromApp takes every key of the Secret as environment variables.
func envFromApp(name, secret string) *appsv1.Deployment {
	return deployment(name, printEnvToken, func(spec *corev1.PodSpec) {
		spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}
		spec.Containers[0].Env = []corev1.EnvVar{{Name: "TOKEN", Value: "$(token)"}}
	})
}

// subPathApp mounts the token file alone with subPath, which the kubelet
// never updates.
func subPathApp(name, secret string) *appsv1.Deployment {
	return deployment(name, watchMountedToken, func(spec *corev1.PodSpec) {
		spec.Volumes = []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: secret}}}}
		spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "token", MountPath: tokenMount + "/token", SubPath: "token", ReadOnly: true}}
	})
}
