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
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/test/fakes"
	"github.com/tokenmint/tokenmint/test/node"
	"github.com/tokenmint/tokenmint/test/registry"
	"github.com/tokenmint/tokenmint/test/samples"
)

const (
	// registryNamespace holds the AccessToken of the image pull Secret and the
	// pods that pull with it.
	registryNamespace = "node-registry"
	// registryRepository is the image's repository in the registry.
	registryRepository = "tokenmint/busybox"
	// pullSecret is the AccessToken, and its image pull Secret.
	pullSecret = "registry-pull"
	// pullUsername is the username written beside the token.
	pullUsername = "x-access-token"
	// pulledMessage is what the image's pods print once they run.
	pulledMessage = "running the image pulled from the registry"
)

// An image pull Secret tokenmint writes (type kubernetes.io/dockerconfigjson)
// is what the kubelet hands containerd for a pull, and it keeps working across
// a renewal: the registry accepts only the token provider's valid tokens, so a
// pull succeeds only with the current token, and the replaced token, once
// revoked, pulls nothing. The registry listens on 127.0.0.1, which containerd's
// CRI plugin reaches over plain HTTP with no registry configuration.
var _ = Describe("an image pull Secret on a real node", Ordered, func() {
	var (
		provider *fakes.Base
		target   *pullTarget
	)

	BeforeAll(func() {
		createPullNamespace(registryNamespace)

		By("an OAuth2 token endpoint that revokes replaced tokens 5 s after their replacement is written")
		p := samples.Providers[slices.IndexFunc(samples.Providers, func(p samples.Provider) bool { return p.Name == "oauth2-client-credentials" })]
		fake, base := p.NewFake()
		provider = base
		s, err := samples.Load(p.File)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Spec().Revoke).NotTo(BeNil(), "the sample revokes replaced tokens")
		Expect(s.PointAt(fakes.Start(GinkgoTB(), fake).URL)).To(Succeed())
		s.Spec().RevokeGracePeriod = &tokensv1alpha1.Duration{Duration: 5 * time.Second}
		s.FillCredentials()
		s.Place(registryNamespace, credentialsNamespace, "-registry")
		objects := s.Objects()
		apply("registry-issuer", objects[:len(objects)-1]...) // all but the sample's AccessToken

		By("a registry on loopback serving a busybox image to the provider's valid tokens only")
		target = serveImage(registry.New(provider.Valid), registryNamespace, pullSecret, pullUsername)

		By("an AccessToken writing an image pull Secret for that registry")
		at := s.AccessToken.DeepCopy()
		at.Name = pullSecret
		at.Spec.Secret = tokensv1alpha1.SecretTemplate{
			Name: pullSecret,
			Type: corev1.SecretTypeDockerConfigJson,
			DockerConfigJSON: &tokensv1alpha1.DockerConfigJSONOutput{
				Registries: []string{target.host},
				Username:   tokensv1alpha1.OutputUsername{Value: pullUsername},
			},
		}
		apply("registry-pull", at)
	})

	// On failure, show what the registry saw (tokens as fingerprints).
	ReportAfterEach(func(r SpecReport) {
		if r.Failed() && target != nil {
			target.reportAttempts()
		}
	})

	It("pulls the image with the current token, and after a renewal with the new one, the old one being revoked", func() {
		By("the Secret holds the first token for the registry")
		var first string
		Eventually(func(g Gomega) {
			issued := provider.Issued()
			g.Expect(issued).To(HaveLen(1))
			first = issued[0].Value
			g.Expect(target.password(g)).To(Equal(first))
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())

		By("the registry takes that token; the image's config and layer are the blobs a pull fetches")
		config, layer := target.blobs(first)

		By("a pod pulls the image (imagePullPolicy Always) with the Secret and runs")
		seen := len(target.reg.Attempts())
		target.pullAndRun("pull-1")
		target.expectPulledWith(target.reg.Attempts()[seen:], first, config, layer)

		By("renewing the token")
		requestRenewal(registryNamespace, pullSecret)
		var second string
		Eventually(func(g Gomega) {
			issued := provider.Issued()
			g.Expect(issued).To(HaveLen(2))
			second = issued[1].Value
			g.Expect(target.password(g)).To(Equal(second))
		}, 30*time.Second, 100*time.Millisecond).Should(Succeed())

		By("the provider revokes the old token once the grace period is over; the registry refuses it")
		Eventually(func() bool { return provider.Valid(first) }, 30*time.Second, 100*time.Millisecond).Should(BeFalse())
		Expect(provider.Issued()[0].Revoked).To(BeTrue(), "the old token expired instead of being revoked")
		Expect(provider.Valid(second)).To(BeTrue())
		target.expectRefuses(first)
		accepted, _ := target.getManifest(second)
		Expect(accepted.StatusCode).To(Equal(http.StatusOK))

		By("a pod whose pull Secret still holds the old token cannot pull the image")
		stale := &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: "stale-pull", Namespace: registryNamespace},
			Type:       corev1.SecretTypeDockerConfigJson,
			StringData: map[string]string{corev1.DockerConfigJsonKey: fmt.Sprintf(`{"auths":{%q:{"username":%q,"password":%q,"auth":%q}}}`,
				target.host, pullUsername, first, base64.StdEncoding.EncodeToString([]byte(pullUsername+":"+first)))},
		}
		seen = len(target.reg.Attempts())
		apply("stale-pull", stale, target.pod("pull-stale", stale.Name))
		Eventually(func(g Gomega) {
			pod := &corev1.Pod{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: registryNamespace, Name: "pull-stale"}, pod)).To(Succeed())
			g.Expect(pod.Status.ContainerStatuses).To(HaveLen(1))
			g.Expect(pod.Status.ContainerStatuses[0].State.Waiting).NotTo(BeNil())
			g.Expect(pod.Status.ContainerStatuses[0].State.Waiting.Reason).To(BeElementOf("ErrImagePull", "ImagePullBackOff"))
		}, time.Minute, 250*time.Millisecond).Should(Succeed())
		expectRefused(target.reg.Attempts()[seen:], first)
		kubectl("delete", "pod", "pull-stale", "-n", registryNamespace, "--wait=true", "--timeout=60s")

		By("deleting the pod and the image, so that the next pod pulls everything again")
		target.forget("pull-1", config)

		By("a new pod pulls the image with the new token and runs")
		seen = len(target.reg.Attempts())
		target.pullAndRun("pull-2")
		target.expectPulledWith(target.reg.Attempts()[seen:], second, config, layer)
	})
})

// createPullNamespace creates namespace and waits for its default
// ServiceAccount, without which nothing creates a Pod in it.
func createPullNamespace(namespace string) {
	kubectl("create", "namespace", namespace)
	Eventually(func() error {
		return k8sClient.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "default"}, &corev1.ServiceAccount{})
	}, 30*time.Second, 250*time.Millisecond).Should(Succeed())
}

// pullTarget is an image a registry on loopback serves, and the image pull
// Secret the pods of a namespace pull it with.
type pullTarget struct {
	reg            *registry.Registry
	host           string // 127.0.0.1:<port>, as the image and the Secret name it
	image          string
	manifestDigest string
	namespace      string
	secret         string
	// username is the one the Secret writes beside the token.
	username string
}

// serveImage starts reg on loopback, serving the busybox image of
// registryImage, for pods of namespace pulling with Secret secret, whose
// username is username.
func serveImage(reg *registry.Registry, namespace, secret, username string) *pullTarget {
	host := registry.Host(registry.Start(GinkgoTB(), reg))
	t := &pullTarget{reg: reg, host: host, image: host + "/" + registryRepository + ":1",
		namespace: namespace, secret: secret, username: username}
	var layout bytes.Buffer
	Expect(registryImage(t.image, namespace).WriteLayout(&layout, dir)).To(Succeed())
	digests, err := reg.AddLayout(registryRepository, &layout)
	Expect(err).NotTo(HaveOccurred())
	t.manifestDigest = digests[0]
	return t
}

// reportAttempts adds what the registry saw to the report, tokens as
// fingerprints.
func (t *pullTarget) reportAttempts() {
	var b strings.Builder
	for _, a := range t.reg.Attempts() {
		fmt.Fprintf(&b, "%s %s %s credentials=%t user=%q password=%s accepted=%t\n", a.At.Format(time.RFC3339Nano),
			a.Method, a.Path, a.Credentials, a.Username, fingerprint(a.Password), a.Accepted)
	}
	AddReportEntry("registry attempts", b.String())
}

// registryImage is busybox with a shell and sleep: not the node's imported
// busybox image, so that pulling it fetches a layer the node lacks. Its
// /etc/pulled-by names namespace: the images of two specs share no layer,
// and one spec's pulls leave nothing in the node that spares the other's a
// download.
func registryImage(name, namespace string) node.Image {
	mark := filepath.Join(dir, "pulled-by-"+namespace)
	Expect(os.WriteFile(mark, []byte(namespace+"\n"), 0o644)).To(Succeed())
	busybox, err := exec.LookPath("busybox")
	Expect(err).NotTo(HaveOccurred())
	busybox, err = filepath.EvalSymlinks(busybox)
	Expect(err).NotTo(HaveOccurred())
	files := []node.File{{Path: "/bin/busybox", Mode: 0o755, Source: busybox}, {Path: "/etc/pulled-by", Mode: 0o644, Source: mark}}
	for _, applet := range []string{"sh", "echo", "sleep"} {
		files = append(files, node.File{Path: "/bin/" + applet, Mode: os.ModeSymlink, Link: "busybox"})
	}
	return node.Image{Name: name, Files: files, Cmd: []string{"sh"}}
}

// password is the password .dockerconfigjson of the pull Secret gives the
// registry, checking the username and that auth is username:password.
func (t *pullTarget) password(g Gomega) string {
	s := &corev1.Secret{}
	g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: t.namespace, Name: t.secret}, s)).To(Succeed())
	g.Expect(s.Type).To(Equal(corev1.SecretTypeDockerConfigJson))
	var config struct {
		Auths map[string]struct {
			Username, Password string
			Auth               []byte // base64 in JSON
		}
	}
	g.Expect(json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &config)).To(Succeed())
	g.Expect(config.Auths).To(HaveKey(t.host))
	entry := config.Auths[t.host]
	g.Expect(entry.Username).To(Equal(t.username))
	g.Expect(string(entry.Auth)).To(Equal(t.username + ":" + entry.Password))
	return entry.Password
}

// pod is a pod on the node running the image, pulled with imagePullPolicy
// Always and the image pull Secret secret.
func (t *pullTarget) pod(name, secret string) *corev1.Pod {
	d := node.BusyboxDeployment(t.namespace, name, `echo "`+pulledMessage+`"; exec sleep 2147483647`)
	spec := d.Spec.Template.Spec
	spec.NodeName = theNode.Name
	spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: secret}}
	spec.Containers[0].Image = t.image
	spec.Containers[0].ImagePullPolicy = corev1.PullAlways
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: t.namespace, Labels: map[string]string{"app": name}},
		Spec:       spec,
	}
}

// pullAndRun starts a pulling pod with the pull Secret and waits until it
// runs the image; it reports how long that took.
func (t *pullTarget) pullAndRun(name string) {
	start := time.Now()
	apply(t.namespace+"-"+name, t.pod(name, t.secret))
	Eventually(func(g Gomega) {
		running, err := onlyPod(t.namespace, name)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(running.Status.ContainerStatuses).To(HaveLen(1))
		g.Expect(running.Status.ContainerStatuses[0].ImageID).To(HaveSuffix("@" + t.manifestDigest))
		g.Expect(containerLog(running, "app")).To(ContainSubstring(pulledMessage))
	}, 2*time.Minute, 250*time.Millisecond).Should(Succeed())
	reportDelay(fmt.Sprintf("pod %s pulled %s and ran in %s", name, t.image, time.Since(start).Round(100*time.Millisecond)))
}

// forget deletes pod and the image from the node, so that the next pod
// pulls everything again; config is the digest of the image's config.
func (t *pullTarget) forget(pod, config string) {
	kubectl("delete", "pod", pod, "-n", t.namespace, "--wait=true", "--timeout=60s")
	// The runtime names a pulled image three times: by tag, by digest and by its config's digest.
	run("ctr", "--address", theNode.Socket, "--namespace", "k8s.io", "images", "rm", "--sync",
		t.image, t.host+"/"+registryRepository+"@"+t.manifestDigest, config)
}

// expectPulledWith checks the registry's attempts during a pull: the tag,
// the manifest and blobs were served, every request that
// carried credentials carried token and was accepted, and none carried
// another. Requests without credentials are the runtime's first tries, which
// the registry answers with its challenge.
func (t *pullTarget) expectPulledWith(attempts []registry.Attempt, token string, blobs ...string) {
	var withCredentials int
	served := map[string]bool{}
	for _, a := range attempts {
		if !a.Credentials {
			continue
		}
		withCredentials++
		Expect(a.Accepted).To(BeTrue(), "the registry refused %s %s", a.Method, a.Path)
		Expect(a.Username).To(Equal(t.username))
		Expect(fingerprint(a.Password)).To(Equal(fingerprint(token)), "%s %s was sent with another token", a.Method, a.Path)
		served[a.Path] = true
	}
	Expect(withCredentials).To(BeNumerically(">", 0), "the pull sent no credentials")
	manifests := "/v2/" + registryRepository + "/manifests/"
	Expect(served).To(HaveKey(manifests+"1"), "the tag was not resolved with the token")
	Expect(served).To(HaveKey(manifests+t.manifestDigest), "the manifest was not fetched with the token")
	for _, b := range blobs {
		Expect(served).To(HaveKey("/v2/"+registryRepository+"/blobs/"+b), "blob %s was not fetched with the token", b)
	}
	GinkgoWriter.Printf("the pull made %d requests, %d with the token: %v\n", len(attempts), withCredentials, slices.Sorted(maps.Keys(served)))
}

// getManifest asks the registry for the image's manifest as a client with
// token would.
func (t *pullTarget) getManifest(token string) (*http.Response, []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.host+"/v2/"+registryRepository+"/manifests/1", nil)
	Expect(err).NotTo(HaveOccurred())
	req.SetBasicAuth(t.username, token)
	req.Header.Set("Accept", registry.MediaTypeOCIManifest)
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp, body
}

// blobs fetches the image's manifest with token, which the registry must
// take, and returns the digests of its config and its one layer: the blobs
// a pull fetches.
func (t *pullTarget) blobs(token string) (config, layer string) {
	accepted, body := t.getManifest(token)
	Expect(accepted.StatusCode).To(Equal(http.StatusOK))
	var manifest struct {
		Config struct{ Digest string }   `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	Expect(json.Unmarshal(body, &manifest)).To(Succeed())
	Expect(manifest.Layers).To(HaveLen(1))
	return manifest.Config.Digest, manifest.Layers[0].Digest
}

// expectRefuses checks that the registry answers a client with token with
// its Basic challenge.
func (t *pullTarget) expectRefuses(token string) {
	refused, _ := t.getManifest(token)
	Expect(refused.StatusCode).To(Equal(http.StatusUnauthorized))
	Expect(refused.Header.Get("WWW-Authenticate")).To(Equal(`Basic realm="` + registry.Realm + `"`))
}

// expectRefused checks the registry's attempts during a failed pull: the
// runtime presented token, and the registry accepted nothing.
func expectRefused(attempts []registry.Attempt, token string) {
	var presented bool
	for _, a := range attempts {
		Expect(a.Accepted).To(BeFalse(), "the registry accepted %s %s", a.Method, a.Path)
		presented = presented || (a.Credentials && fingerprint(a.Password) == fingerprint(token))
	}
	Expect(presented).To(BeTrue(), "the runtime never presented the token")
	GinkgoWriter.Printf("the pull with the old token made %d requests, all refused\n", len(attempts))
}
