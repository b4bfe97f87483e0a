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

package e2e

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/keyutil"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/samples"
)

// minted is what a chained sample's Secret must end with, read from what its
// fake issued.
type minted struct {
	// data are the Secret's keys, exactly, and what each holds.
	data map[string]types.GomegaMatcher
	// credentials are values of data (the token, secret extra values) that
	// may be nowhere but in the Secret: not in the AccessToken or its
	// issuer, an event or the manager's log.
	credentials []string
	// hidden are values that may be nowhere, the Secret included: the
	// intermediate tokens of earlier steps and the ServiceAccount tokens the
	// provider received.
	hidden []string
}

// chainedSample is a sample whose issuer has steps or a ServiceAccount token
// source, with the fake of its provider.
type chainedSample struct {
	file string
	// serve starts the provider's fake for the sample placed in namespace ns
	// (changing s where users would: the registry, the credentials) and
	// returns its URL and what the Secret must hold, from what the fake has
	// issued; an error while it has issued nothing yet.
	serve func(ns string, s *samples.Sample) (url string, issued func() (minted, error))
}

// applySample writes the sample's objects to dir/<name>.yaml and applies the
// file with kubectl, as users do; it returns the file.
func applySample(name string, s *samples.Sample) string {
	var manifest bytes.Buffer
	for _, o := range s.Objects() {
		raw, err := yaml.Marshal(o)
		Expect(err).NotTo(HaveOccurred())
		manifest.WriteString("---\n")
		manifest.Write(raw)
	}
	file := filepath.Join(dir, name+".yaml")
	Expect(os.WriteFile(file, manifest.Bytes(), 0o600)).To(Succeed())
	kubectl("apply", "-f", file)
	return file
}

// reviewed is the user a ServiceAccount token is for audience, as a provider
// that trusts the cluster asks the apiserver with a TokenReview.
func reviewed(token, audience string) (string, bool) {
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{audience}}}
	if err := k8sClient.Create(ctx, review); err != nil || !review.Status.Authenticated {
		return "", false
	}
	return review.Status.User.Username, true
}

// serviceAccountIssuer is the iss of the cluster's ServiceAccount tokens and
// the key they are signed with, as a provider that federates with the
// cluster reads them from its discovery document: read here from a token of
// a ServiceAccount made for it, and from the apiserver's signing key.
func serviceAccountIssuer(ns string) (string, crypto.PublicKey) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "issuer-probe"}}
	Expect(k8sClient.Create(ctx, sa)).To(Succeed())
	request := &authenticationv1.TokenRequest{}
	Expect(k8sClient.SubResource("token").Create(ctx, sa, request)).To(Succeed())
	claims := jwt.RegisteredClaims{}
	_, _, err := jwt.NewParser().ParseUnverified(request.Status.Token, &claims)
	Expect(err).NotTo(HaveOccurred())
	Expect(k8sClient.Delete(ctx, sa)).To(Succeed())
	keys, err := keyutil.PrivateKeyFromFile(cp.ServiceAccountKeyFile())
	Expect(err).NotTo(HaveOccurred())
	signer, ok := keys.(crypto.Signer)
	Expect(ok).To(BeTrue())
	return claims.Issuer, signer.Public()
}

// dockerAuth matches a .dockerconfigjson whose one registry is host, with
// auth (and username:password) equal to auth.
func dockerAuth(host, auth string) types.GomegaMatcher {
	return WithTransform(func(raw []byte) (string, error) {
		var config struct {
			Auths map[string]struct{ Username, Password, Auth string }
		}
		if err := json.Unmarshal(raw, &config); err != nil {
			return "", err
		}
		entry, ok := config.Auths[host]
		if !ok || len(config.Auths) != 1 {
			return "", fmt.Errorf("registries %v, want %s alone", config.Auths, host)
		}
		decoded, err := base64.StdEncoding.DecodeString(entry.Auth)
		if err != nil || string(decoded) != entry.Username+":"+entry.Password {
			return "", fmt.Errorf("auth is not base64 of username:password")
		}
		return string(decoded), nil
	}, Equal(auth))
}

func values(tokens []fakes.IssuedToken) []string {
	var out []string
	for _, t := range tokens {
		out = append(out, t.Value)
	}
	return out
}

var errNothingIssued = fmt.Errorf("nothing issued yet")

// lastOf is the last of what a fake issued, or errNothingIssued.
func lastOf[T any](items []T) (T, error) {
	if len(items) == 0 {
		var zero T
		return zero, errNothingIssued
	}
	return items[len(items)-1], nil
}

var _ = Describe("the chained samples applied with kubectl", func() {
	DescribeTable("end with the provider's values in the keys the sample documents, under the chart's RBAC",
		func(c chainedSample) {
			ns := "e2e-" + strings.TrimSuffix(c.file, ".yaml")
			if len(ns) > 63 {
				ns = ns[:63]
			}
			kubectl("create", "namespace", ns)
			s, err := samples.Load(c.file)
			Expect(err).NotTo(HaveOccurred())
			url, issued := c.serve(ns, s)
			Expect(s.PointAt(url)).To(Succeed())
			s.Place(ns, credentialsNamespace, "-"+ns)
			file := applySample(ns, s)
			// The AccessToken is deleted first, while its issuer is there and
			// the fake still answers: the revocations of deletion reach it.
			DeferCleanup(func() {
				kubectl("delete", "accesstoken", s.AccessToken.Name, "-n", ns, "--wait=true", "--timeout=60s")
				kubectl("delete", "-f", file, "--ignore-not-found", "--wait=true", "--timeout=60s")
				kubectl("delete", "namespace", ns, "--wait=false")
			})

			var want minted
			sec := &corev1.Secret{}
			Eventually(func(g Gomega) {
				at := &tokensv1alpha1.AccessToken{}
				g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(s.AccessToken), at)).To(Succeed())
				g.Expect(meta.IsStatusConditionTrue(at.Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue(), "%+v", at.Status.Conditions)
				want, err = issued()
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: at.Spec.Secret.Name}, sec)).To(Succeed())
				g.Expect(sec.Data).To(HaveLen(len(want.data)))
				for key, matcher := range want.data {
					g.Expect(sec.Data).To(HaveKey(key))
					g.Expect(sec.Data[key]).To(matcher, "Secret key %s", key)
				}
			}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
			Expect(want.credentials).NotTo(BeEmpty())

			var secretText strings.Builder
			for _, v := range sec.Data {
				secretText.Write(v)
				secretText.WriteString("\n")
			}
			elsewhere := map[string]string{
				"the AccessToken": kubectl("get", "accesstoken", s.AccessToken.Name, "-n", ns, "-o", "yaml"),
				"the events":      kubectl("get", "events", "-n", ns, "-o", "yaml"),
			}
			if s.TokenIssuer != nil {
				elsewhere["the TokenIssuer"] = kubectl("get", "tokenissuer", s.TokenIssuer.Name, "-n", ns, "-o", "yaml")
			}
			log, err := os.ReadFile(filepath.Join(dir, "manager.log"))
			Expect(err).NotTo(HaveOccurred())
			elsewhere["the manager's log"] = string(log)
			for _, v := range want.credentials {
				Expect(secretText.String()).To(ContainSubstring(v))
				for where, text := range elsewhere {
					Expect(text).NotTo(ContainSubstring(v), "a credential the Secret holds is in %s", where)
				}
			}
			Expect(want.hidden).NotTo(BeEmpty())
			elsewhere["the Secret"] = secretText.String()
			for _, v := range want.hidden {
				Expect(v).NotTo(BeEmpty())
				for where, text := range elsewhere {
					Expect(text).NotTo(ContainSubstring(v), "an intermediate token or a ServiceAccount token is in %s", where)
				}
			}
		},
		Entry("AWS ECR pull Secret, keyless: STS web identity, then a signed GetAuthorizationToken", chainedSample{
			file: "aws-ecr-pull-secret.yaml",
			serve: func(ns string, s *samples.Sample) (string, func() (minted, error)) {
				Expect(s.Secrets).To(BeEmpty(), "the sample is keyless")
				fake := fakes.NewAWSWebIdentityECR("arn:aws:iam::123456789012:role/ecr-pull")
				fake.STS.Verify = func(token string) bool {
					user, ok := reviewed(token, fakes.STSAudience)
					return ok && user == "system:serviceaccount:"+ns+":ecr-puller"
				}
				registry := s.AccessToken.Spec.Secret.DockerConfigJSON.Registries[0]
				return fakes.Start(GinkgoTB(), fake).URL, func() (minted, error) {
					passwords, sessions := fake.Passwords(), fake.STS.Issued()
					if len(passwords) == 0 || len(sessions) == 0 {
						return minted{}, errNothingIssued
					}
					last := passwords[len(passwords)-1]
					hidden := append(values(sessions), fake.STS.CredentialsReceived()...)
					for _, s := range sessions {
						hidden = append(hidden, s.Secrets...)
					}
					return minted{
						data: map[string]types.GomegaMatcher{
							corev1.DockerConfigJsonKey: dockerAuth(registry, "AWS:"+last.Password),
							"token":                    BeEquivalentTo(last.Password), // secret.key, beside the image pull entry
						},
						credentials: []string{last.Password},
						hidden:      hidden,
					}, nil
				}
			},
		}),
		Entry("AWS STS session credentials from web identity, the secret access key a secret extra value", chainedSample{
			file: "aws-sts-web-identity.yaml",
			serve: func(ns string, s *samples.Sample) (string, func() (minted, error)) {
				fake := &fakes.AWSSTS{Roles: []string{"arn:aws:iam::123456789012:role/orders-api"}}
				fake.Verify = func(token string) bool {
					user, ok := reviewed(token, fakes.STSAudience)
					return ok && user == "system:serviceaccount:"+ns+":orders-api"
				}
				return fakes.Start(GinkgoTB(), fake).URL, func() (minted, error) {
					last, err := lastOf(fake.Issued())
					if err != nil {
						return minted{}, err
					}
					return minted{
						data: map[string]types.GomegaMatcher{
							"AWS_SESSION_TOKEN":     BeEquivalentTo(last.Value),
							"AWS_ACCESS_KEY_ID":     BeEquivalentTo(last.Request["accessKeyId"].(string)),
							"AWS_SECRET_ACCESS_KEY": BeEquivalentTo(last.Secrets[0]),
						},
						credentials: []string{last.Value, last.Secrets[0]},
						hidden:      fake.CredentialsReceived(),
					}, nil
				}
			},
		}),
		Entry("Azure workload identity: a ServiceAccount token as client_assertion", chainedSample{
			file: "azure-workload-identity.yaml",
			serve: func(ns string, s *samples.Sample) (string, func() (minted, error)) {
				fake := fakes.NewEntraID(samples.EntraTenant, samples.EntraClientID, samples.TestCertificate())
				issuer, key := serviceAccountIssuer(ns)
				fake.Federated = []fakes.FederatedCredential{{Issuer: issuer,
					Subject: "system:serviceaccount:" + ns + ":orders-api", Audience: "api://AzureADTokenExchange"}}
				fake.IssuerKeys = map[string]crypto.PublicKey{issuer: key}
				return fakes.Start(GinkgoTB(), fake).URL, func() (minted, error) {
					last, err := lastOf(fake.Issued())
					if err != nil {
						return minted{}, err
					}
					return minted{
						data:        map[string]types.GomegaMatcher{"token": BeEquivalentTo(last.Value)},
						credentials: []string{last.Value},
						hidden:      fake.CredentialsReceived(),
					}, nil
				}
			},
		}),
		Entry("Google workload identity federation, then service account impersonation", chainedSample{
			file: "google-workload-identity-impersonation.yaml",
			serve: func(ns string, s *samples.Sample) (string, func() (minted, error)) {
				audience := s.Spec().Credentials[0].ServiceAccountToken.Audience
				fake := &fakes.GoogleWorkloadIdentity{Audience: strings.TrimPrefix(audience, "https:"),
					Subjects:        []string{"system:serviceaccount:" + ns + ":orders-api"},
					ServiceAccounts: []string{"orders@my-project.iam.gserviceaccount.com"}}
				fake.Verify = func(token string) (string, bool) { return reviewed(token, audience) }
				return fakes.Start(GinkgoTB(), fake).URL, func() (minted, error) {
					last, err := lastOf(fake.Issued())
					if err != nil {
						return minted{}, err
					}
					return minted{
						data:        map[string]types.GomegaMatcher{"token": BeEquivalentTo(last.Value)},
						credentials: []string{last.Value},
						hidden:      append(values(fake.STSTokens()), fake.CredentialsReceived()...),
					}, nil
				}
			},
		}),
		Entry("Vault Kubernetes login, then database credentials", chainedSample{
			file: "vault-database-credentials.yaml",
			serve: func(ns string, s *samples.Sample) (string, func() (minted, error)) {
				vault := &fakes.VaultKubernetesAuth{
					Roles: map[string]fakes.VaultRole{"app": {BoundServiceAccountNames: []string{"app"}, BoundServiceAccountNamespaces: []string{ns},
						Audience: "vault", TokenTTL: time.Hour, Policies: []string{"app-db"}}},
					DatabaseRoles: map[string]fakes.VaultDatabaseRole{"app": {DefaultTTL: 5 * time.Minute, MaxTTL: time.Hour}},
				}
				vault.Verify = func(token, audience string) (string, string, bool) {
					user, ok := reviewed(token, audience)
					parts := strings.Split(user, ":") // system:serviceaccount:<ns>:<name>
					if !ok || len(parts) != 4 {
						return "", "", false
					}
					return parts[2], parts[3], true
				}
				return fakes.Start(GinkgoTB(), vault).URL, func() (minted, error) {
					last, err := lastOf(vault.Leases())
					if err != nil {
						return minted{}, err
					}
					return minted{
						data: map[string]types.GomegaMatcher{
							"password": BeEquivalentTo(last.Password),
							"username": BeEquivalentTo(last.Username),
						},
						credentials: []string{last.Password},
						hidden:      append(values(vault.Issued()), vault.CredentialsReceived()...),
					}, nil
				}
			},
		}),
		Entry("GitLab project access token rotation", chainedSample{
			file: "gitlab-project-token-rotation.yaml",
			serve: func(ns string, s *samples.Sample) (string, func() (minted, error)) {
				s.FillCredentials()
				bootstrap := s.Secrets[0].StringData["token"]
				fake := fakes.NewGitLab("42", bootstrap, time.Now().Add(30*24*time.Hour))
				return fakes.Start(GinkgoTB(), fake).URL, func() (minted, error) {
					last, err := lastOf(fake.Issued())
					if err != nil {
						return minted{}, err
					}
					return minted{
						data: map[string]types.GomegaMatcher{
							"token":      BeEquivalentTo(last.Value),
							"expires_at": BeEquivalentTo(last.Request["expires_at"].(string)),
						},
						credentials: []string{last.Value},
						// The rotated bootstrap token is a credential the
						// user wrote, and no more than that.
						hidden: []string{bootstrap},
					}, nil
				}
			},
		}),
	)
})
