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
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/node"
	"github.com/tokenmint/tokenmint/test/samples"
)

const (
	// appNamespace holds the workloads and their AccessTokens.
	appNamespace = "node-apps"
	// staleNamespace holds the workloads that cannot see a renewal: its own
	// namespace, since the operator scans a namespace's Pods at most once a minute.
	staleNamespace = "node-stale"
)

// tokenMount is where workloads mount their token's Secret.
const tokenMount = "/var/run/tokens"

// issuer is a ClusterTokenIssuer from the cable-transactions sample, served
// by its own fake so that each AccessToken's mints can be told apart.
type issuer struct {
	fake   *fakes.Base
	sample *samples.Sample
}

// startIssuer serves a fake issuing tokens that live lifetime and applies the
// sample's issuer, named cable-transactions-<suffix>, pointed at it and
// serving namespace.
func startIssuer(namespace, suffix string, lifetime time.Duration) issuer {
	p := samples.Providers[0]
	Expect(p.Name).To(Equal("cable-transactions"))
	fake, base := p.NewFake()
	base.Lifetime = lifetime
	url := fakes.Start(GinkgoTB(), fake).URL
	s, err := samples.Load(p.File)
	Expect(err).NotTo(HaveOccurred())
	Expect(s.PointAt(url)).To(Succeed())
	s.FillCredentials()
	s.Place(namespace, credentialsNamespace, "-"+suffix)
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
		at.Spec.RenewBefore = &tokensv1alpha1.Duration{Duration: renewBefore}
	}
	at.Spec.RestartTargets = restart
	return at
}

// The workloads print the token's SHA-256, never the token: whenever the
// mounted file changes, or once at start from the environment.

// mountingApp reads the token from the Secret mounted as a volume, which the
// kubelet keeps up to date.
func mountingApp(namespace, name, secret string) *appsv1.Deployment {
	d := node.BusyboxDeployment(namespace, name, node.WatchFingerprint(tokenMount+"/token"))
	node.MountSecret(d, secret, tokenMount)
	return d
}

// envApp reads the token once, from an environment variable.
func envApp(namespace, name, secret string) *appsv1.Deployment {
	d := node.BusyboxDeployment(namespace, name, node.PrintFingerprint("TOKEN"))
	restartableBy(d, secret)
	d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "token"}}}}
	return d
}

// envFromApp takes every key of the Secret as environment variables.
func envFromApp(namespace, name, secret string) *appsv1.Deployment {
	d := node.BusyboxDeployment(namespace, name, node.PrintFingerprint("token"))
	restartableBy(d, secret)
	d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}
	return d
}

// subPathApp mounts the token file alone with subPath, which the kubelet
// never updates.
func subPathApp(namespace, name, secret string) *appsv1.Deployment {
	d := node.BusyboxDeployment(namespace, name, node.WatchFingerprint(tokenMount+"/token"))
	node.MountSecret(d, secret, tokenMount+"/token")
	d.Spec.Template.Spec.Containers[0].VolumeMounts[0].SubPath = "token"
	restartableBy(d, secret)
	return d
}

// restartableBy lets the AccessToken that writes secret (named as the
// sample's AccessTokens are: <name>-token) restart d through restartTargets.
func restartableBy(d *appsv1.Deployment, secret string) {
	d.Annotations = map[string]string{tokensv1alpha1.AnnotationRestartOn: strings.TrimSuffix(secret, "-token")}
}
