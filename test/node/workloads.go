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

package node

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// FingerprintPrefix starts every line WatchFingerprint and PrintFingerprint
// scripts print, followed by the hex SHA-256 of the token.
const FingerprintPrefix = "token sha256:"

// WatchFingerprint is a shell script that prints the SHA-256 of file whenever
// it changes (polled every 200 ms): it shows which token a pod holds without
// revealing it.
func WatchFingerprint(file string) string {
	return `trap 'exit 0' TERM
last=
while true; do
  set -- $(sha256sum ` + file + `)
  if [ "$1" != "$last" ]; then echo "` + FingerprintPrefix + `$1"; last=$1; fi
  sleep 0.2
done`
}

// PrintFingerprint is a shell script that prints the SHA-256 of the
// environment variable env once, then sleeps.
func PrintFingerprint(env string) string {
	return `echo "` + FingerprintPrefix + `$(printf %s "$` + env + `" | sha256sum | cut -d' ' -f1)"
exec sleep 2147483647`
}

// BusyboxDeployment is a Deployment of one pod labelled app=<name> that runs
// script with sh in BusyboxImage, in a container named "app", shaped for this
// node: host network, the NotReady toleration, and a restricted security
// context (non-root, read-only root filesystem, no capabilities).
func BusyboxDeployment(namespace, name, script string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork:                   true,
					Tolerations:                   []corev1.Toleration{Toleration},
					TerminationGracePeriodSeconds: ptr.To[int64](1),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), RunAsNonRoot: ptr.To(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            "app",
						Image:           BusyboxImage,
						ImagePullPolicy: corev1.PullNever,
						Command:         []string{"sh", "-c", script},
						SecurityContext: &corev1.SecurityContext{
							ReadOnlyRootFilesystem:   ptr.To(true),
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
}

// MountSecret mounts Secret secret read-only at dir in the Deployment's
// first container.
func MountSecret(d *appsv1.Deployment, secret, dir string) {
	spec := &d.Spec.Template.Spec
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: secret, VolumeSource: corev1.VolumeSource{
		Secret: &corev1.SecretVolumeSource{SecretName: secret}}})
	c := &spec.Containers[0]
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: secret, MountPath: dir, ReadOnly: true})
}
