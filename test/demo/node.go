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

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenmint/tokenmint/test/controlplane"
	"github.com/tokenmint/tokenmint/test/node"
)

// nodeFlag is -node: unset means on when running as root, which a kubelet needs.
type nodeFlag struct{ set, value bool }

func (f *nodeFlag) String() string   { return strconv.FormatBool(f.value) }
func (f *nodeFlag) IsBoolFlag() bool { return true }
func (f *nodeFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	f.set, f.value = true, v
	return err
}

var withNode nodeFlag

func init() {
	flag.Var(&withNode, "node", "run a real node (kubelet, containerd, runc) with a pod that prints a fingerprint of the token it holds; "+
		"default: on when running as root, which it needs")
}

// nodeRequested is -node given explicitly.
func nodeRequested() bool { return withNode.set && withNode.value }

// nodeEnabled tells whether the local control plane gets a node.
func nodeEnabled() bool {
	if withNode.set {
		return withNode.value
	}
	return os.Geteuid() == 0
}

// errNodeNeedsLocalControlPlane refuses -node with -use-kubeconfig: the node
// joins the demo's own control plane.
var errNodeNeedsLocalControlPlane = errors.New("-node needs the demo's local control plane: leave out -use-kubeconfig")

const (
	readerName = "token-reader"
	// readerSecret is the Secret of the first provider's AccessToken.
	readerSecret = "cable-transactions-token"
	readerMount  = "/var/run/tokens"
)

var (
	// demoNode is the running node, if -node.
	demoNode *node.Node
	// secretSeen is when the demo first saw each token of readerSecret, by
	// the token's hex SHA-256.
	secretSeen   = map[string]time.Time{}
	secretSeenMu sync.Mutex
)

// nodeAPIServerFlags are the apiserver flags a node needs, with -node.
func nodeAPIServerFlags() map[string]string {
	if !nodeEnabled() {
		return nil
	}
	return node.APIServerFlags()
}

// startNode, with -node, starts a node joined to cp and a Deployment on it
// that mounts readerSecret and prints the token's SHA-256 whenever it
// changes. It returns the function that stops the node.
func startNode(cp *controlplane.ControlPlane) (func(), error) {
	if !nodeEnabled() {
		if !withNode.set {
			step("no real node: it needs root (-node=false hides this)")
		}
		return func() {}, nil
	}
	step("starting a real node: containerd, runc, kubelet, kube-controller-manager and kube-scheduler on 127.0.0.1 (needs root)")
	ctx := context.Background()
	n, err := node.Start(ctx, cp, node.Options{})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := func() {
		cancel()
		step("stopping the node")
		if err := n.Stop(); err != nil {
			step("%v", err)
		}
	}
	c, err := client.New(cp.Config, client.Options{})
	if err == nil {
		err = startReader(ctx, c)
	}
	if err != nil {
		stop()
		return nil, err
	}
	go watchSecret(ctx, c)
	step("pod %s on node %s mounts Secret %s and prints the SHA-256 of its token whenever it changes",
		readerName, n.Name, readerSecret)
	demoNode = n
	return stop, nil
}

// startReader creates the namespace and the reader Deployment, which waits
// for its Secret.
func startReader(ctx context.Context, c client.Client) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	reader := node.BusyboxDeployment(demoNamespace, readerName, node.WatchFingerprint(readerMount+"/token"))
	node.MountSecret(reader, readerSecret, readerMount)
	// The pod needs no access to the Kubernetes API.
	reader.Spec.Template.Spec.AutomountServiceAccountToken = ptr.To(false)
	return c.Create(ctx, reader)
}

// renderNode shows the fingerprints the pod printed, how long after the
// Secret changed, and whether it holds the token the Secret holds now.
func (d *demo) renderNode(ctx context.Context, w io.Writer) {
	if demoNode == nil {
		return
	}
	fmt.Fprintf(w, "\npod on node %s mounting Secret %s prints the SHA-256 of the token it reads:\n", demoNode.Name, readerSecret)
	pod, err := d.readerPod(ctx)
	if err != nil {
		fmt.Fprintf(w, "  (%v)\n", err)
		return
	}
	lines, err := demoNode.ContainerLog(pod, "app")
	if err != nil || len(lines) == 0 {
		fmt.Fprintln(w, "  (nothing printed yet)")
		return
	}
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	var held string
	for _, l := range lines {
		held = strings.TrimPrefix(l.Text, node.FingerprintPrefix)
		fmt.Fprintf(w, "  %s  token %s%s\n", l.Time.Local().Format("15:04:05.000"), short8(held), sinceSecretChanged(held, l.Time))
	}
	switch current := currentSecretFingerprint(); {
	case current == "":
	case current == held:
		fmt.Fprintln(w, "  the pod holds the token the Secret holds")
	default:
		fmt.Fprintf(w, "  the Secret holds token %s since %s; the kubelet delivers it at its next sync of the pod\n",
			short8(current), secretSeenAt(current).Local().Format("15:04:05"))
	}
}

// watchSecret records when each token of readerSecret first appears, until
// ctx ends.
func watchSecret(ctx context.Context, c client.Client) {
	_ = wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: demoNamespace, Name: readerSecret}, s); err == nil {
			sum := sha256.Sum256(s.Data["token"])
			fp := hex.EncodeToString(sum[:])
			secretSeenMu.Lock()
			if _, ok := secretSeen[fp]; !ok {
				secretSeen[fp] = time.Now()
			}
			secretSeenMu.Unlock()
		}
		return false, nil
	})
}

func secretSeenAt(fp string) time.Time {
	secretSeenMu.Lock()
	defer secretSeenMu.Unlock()
	return secretSeen[fp]
}

// currentSecretFingerprint is the fingerprint of the token the Secret holds now.
func currentSecretFingerprint() string {
	secretSeenMu.Lock()
	defer secretSeenMu.Unlock()
	var latest string
	for fp, t := range secretSeen {
		if latest == "" || t.After(secretSeen[latest]) {
			latest = fp
		}
	}
	return latest
}

func sinceSecretChanged(fp string, printed time.Time) string {
	seen := secretSeenAt(fp)
	if seen.IsZero() {
		return ""
	}
	return fmt.Sprintf("  (%s after the Secret changed)", printed.Sub(seen).Round(100*time.Millisecond))
}

func short8(hex string) string {
	if len(hex) > 8 {
		return hex[:8]
	}
	return hex
}

// readerPod is the reader Deployment's running pod.
func (d *demo) readerPod(ctx context.Context) (*corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := d.client.List(ctx, pods, client.InNamespace(demoNamespace), client.MatchingLabels{"app": readerName}); err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if p := &pods.Items[i]; p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			return p, nil
		}
	}
	return nil, errors.New("the pod is starting")
}
