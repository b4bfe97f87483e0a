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
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gcustom"
	"github.com/onsi/gomega/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tokenmint/tokenmint/test/controlplane"
	"github.com/tokenmint/tokenmint/test/node"
)

// helmBinary is bin/helm, installed by `make test` (or $HELM).
func helmBinary() string {
	helm, err := controlplane.Helm()
	Expect(err).NotTo(HaveOccurred())
	return helm
}

// run runs a command, failing the spec with its output when it fails.
func run(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "%s %v:\n%s", filepath.Base(name), args, out)
	return string(out)
}

func kubectl(args ...string) string {
	return run(cp.Kubectl(), append([]string{"--kubeconfig", admin}, args...)...)
}

// execOutput runs a command and returns its output, whether or not it fails.
func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// apply writes objects to a manifest and applies it with kubectl, as users do.
func apply(name string, objects ...client.Object) {
	var manifest bytes.Buffer
	for _, o := range objects {
		raw, err := yaml.Marshal(o)
		Expect(err).NotTo(HaveOccurred())
		manifest.WriteString("---\n")
		manifest.Write(raw)
	}
	file := filepath.Join(dir, name+".yaml")
	Expect(os.WriteFile(file, manifest.Bytes(), 0o600)).To(Succeed())
	kubectl("apply", "-f", file)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// fingerprint is what the workloads print instead of the token: its SHA-256.
func fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// runningPods returns the pods labelled app=<app> in namespace that run and
// are not being deleted.
func runningPods(namespace, app string) ([]corev1.Pod, error) {
	list := &corev1.PodList{}
	if err := k8sClient.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{"app": app}); err != nil {
		return nil, err
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			pods = append(pods, p)
		}
	}
	return pods, nil
}

// onlyPod returns the one running pod of app, or an error.
func onlyPod(namespace, app string) (*corev1.Pod, error) {
	pods, err := runningPods(namespace, app)
	if err != nil {
		return nil, err
	}
	if len(pods) != 1 {
		return nil, fmt.Errorf("%d running pods of %s, want 1", len(pods), app)
	}
	return &pods[0], nil
}

// managerPod returns the operator's running pod.
func managerPod() (*corev1.Pod, error) {
	list := &corev1.PodList{}
	if err := k8sClient.List(ctx, list, client.InNamespace(operatorNamespace),
		client.MatchingLabels{"app.kubernetes.io/name": "tokenmint"}); err != nil {
		return nil, err
	}
	var live []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) != 1 {
		return nil, fmt.Errorf("%d manager pods, want 1", len(live))
	}
	return &live[0], nil
}

// beReady matches a pod whose Ready condition is True.
func beReady() types.GomegaMatcher {
	return gcustom.MakeMatcher(func(p *corev1.Pod) (bool, error) {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	}).WithTemplate("Expected pod {{.Actual.Name}} to be Ready; its status:\n{{format .Actual.Status 1}}")
}

// fingerprintsSeen returns the token fingerprints a workload container
// printed ("token sha256:..."), with the time the runtime logged each.
func fingerprintsSeen(pod *corev1.Pod, container string) ([]node.LogLine, error) {
	lines, err := theNode.ContainerLog(pod, container)
	if err != nil {
		return nil, err
	}
	var seen []node.LogLine
	for _, l := range lines {
		if hex, ok := strings.CutPrefix(l.Text, node.FingerprintPrefix); ok {
			l.Text = "sha256:" + hex
			seen = append(seen, l)
		}
	}
	return seen, nil
}

// latestFingerprint is the last fingerprint the container printed.
func latestFingerprint(pod *corev1.Pod, container string) (string, error) {
	seen, err := fingerprintsSeen(pod, container)
	if err != nil || len(seen) == 0 {
		return "", err
	}
	return seen[len(seen)-1].Text, nil
}

func containerLog(pod *corev1.Pod, container string) string {
	lines, err := theNode.ContainerLog(pod, container)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// secretChange is a new token seen in a Secret, and when the watch saw it.
type secretChange struct {
	At          time.Time
	Fingerprint string
}

// secretTimeline records every token a Secret holds, as it changes, from a
// watch: the reference the pods' views are measured against.
type secretTimeline struct {
	mu      sync.Mutex
	changes []secretChange
}

// watchSecret records the tokens of Secret namespace/name under key until the
// suite's context ends.
func watchSecret(namespace, name, key string) *secretTimeline {
	t := &secretTimeline{}
	list := &corev1.SecretList{}
	w, err := k8sClient.Watch(ctx, list, client.InNamespace(namespace),
		client.MatchingFields{"metadata.name": name})
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer GinkgoRecover()
		for ev := range w.ResultChan() {
			if s, ok := ev.Object.(*corev1.Secret); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				t.record(fingerprint(string(s.Data[key])))
			}
		}
	}()
	DeferCleanup(w.Stop)
	return t
}

func (t *secretTimeline) record(fp string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.changes); n == 0 || t.changes[n-1].Fingerprint != fp {
		t.changes = append(t.changes, secretChange{At: time.Now(), Fingerprint: fp})
	}
}

// all returns every change so far.
func (t *secretTimeline) all() []secretChange {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]secretChange(nil), t.changes...)
}

// current returns the latest change, if any.
func (t *secretTimeline) current() (secretChange, bool) {
	all := t.all()
	if len(all) == 0 {
		return secretChange{}, false
	}
	return all[len(all)-1], true
}
