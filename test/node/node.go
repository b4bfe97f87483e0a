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

// Package node adds a real node to a local control plane: containerd and runc
// from Debian, and kubelet, kube-controller-manager and kube-scheduler built
// from the same Go modules as the kube-apiserver. Images are assembled as OCI
// layouts and imported, with no registry and no container engine. Everything
// listens on loopback or on sockets under one temporary directory, and Stop
// leaves no process, container or mount behind.
//
// The node has no CNI plugin, so it stays NotReady: pods run with
// hostNetwork: true and tolerate the node.kubernetes.io/not-ready taint
// (Toleration). The kubelet refuses 127.0.0.1 as the node's IP, so the node
// has no address and host-network pods no IP: HTTP probes, which then have no
// host, reach the pod's ports on loopback, while kubectl logs and exec, which
// go through the node's address, do not work (ContainerLog reads the logs).
// It needs root, as a kubelet does.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenmint/tokenmint/test/controlplane"
)

// Options configure Start.
type Options struct {
	// Name of the node; default "tokenmint-node". It is never resolved: the
	// node's address is 127.0.0.1.
	Name string
	// Dir holds everything the node writes; default a new directory under
	// os.TempDir(). Stop removes it.
	Dir string
	// KubeletSyncFrequency is how often the kubelet resyncs each pod (plus up
	// to half again as jitter), which bounds how long a Secret update takes to
	// reach a mounted volume. Default 10s; a kubelet's own default is 1m.
	KubeletSyncFrequency time.Duration
	// Progress receives a line per step; default os.Stderr.
	Progress io.Writer
}

// Node is a running kubelet with its container runtime and the controllers
// that make Deployments work.
type Node struct {
	// Name is the node's name.
	Name string
	// Dir holds the node's configuration, state and logs.
	Dir string
	// Socket is containerd's socket.
	Socket string
	// KubeletRootDir is the kubelet's --root-dir, where pod volumes are mounted.
	KubeletRootDir string
	// PodLogsDir holds the containers' logs, as <namespace>_<pod>_<uid>/<container>/<n>.log.
	PodLogsDir string

	cp            *controlplane.ControlPlane
	client        client.Client
	kubeconfig    string
	syncFrequency time.Duration
	progress      io.Writer
	started       time.Time
	// createdHostPaths are the paths outside Dir this node's components create.
	createdHostPaths []string

	containerd, kubelet, controllerManager, scheduler *process
}

// APIServerFlags are the kube-apiserver flags a node needs, for
// controlplane.Options.APIServerFlags: the ServiceAccount admission plugin
// (which envtest turns off) gives pods their service account token.
func APIServerFlags() map[string]string {
	return map[string]string{"disable-admission-plugins": ""}
}

// Toleration lets a pod run on the node, which stays NotReady without a CNI plugin.
var Toleration = corev1.Toleration{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists}

// Start starts containerd, kube-controller-manager, kube-scheduler and a
// kubelet registered with cp, building and installing what is missing, and
// imports BusyboxImage and SandboxImage. cp must run with APIServerFlags. On
// failure everything started is stopped again; a machine that cannot run
// containers fails with the reason.
func Start(ctx context.Context, cp *controlplane.ControlPlane, opts Options) (_ *Node, err error) {
	if uid := os.Geteuid(); uid != 0 {
		return nil, fmt.Errorf("a real node needs root for the kubelet, containerd and runc; this process runs as uid %d", uid)
	}
	n := &Node{Name: opts.Name, syncFrequency: opts.KubeletSyncFrequency, progress: opts.Progress, cp: cp, started: time.Now()}
	n.defaults()
	sweepStale(n.logf)
	if err := n.makeDir(opts.Dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if stopErr := n.Stop(); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
		}
	}()
	n.logf("starting a node %q on 127.0.0.1 in %s", n.Name, n.Dir)
	if err := ensureRuntime(ctx, n.progress); err != nil {
		return nil, err
	}
	n.logf("building (first time only, a few minutes) or reusing kubelet, kube-controller-manager and kube-scheduler")
	assets, err := controlplane.Assets("kubelet", "kube-controller-manager", "kube-scheduler")
	if err != nil {
		return nil, err
	}
	if err := n.connect(); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		what string
		run  func(context.Context) error
	}{
		{"starting containerd", n.startContainerd},
		{"importing the busybox and sandbox images", n.importBaseImages},
		{"running a container through containerd and runc", n.checkContainers},
		{"starting kube-controller-manager and kube-scheduler", func(ctx context.Context) error { return n.startControllers(ctx, assets) }},
		{"starting the kubelet", func(ctx context.Context) error { return n.startKubelet(ctx, assets+"/kubelet") }},
	} {
		n.logf("%s", s.what)
		if err := s.run(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
	}
	n.logf("node %q is up (logs in %s)", n.Name, n.Dir)
	return n, nil
}

func (n *Node) defaults() {
	if n.Name == "" {
		n.Name = "tokenmint-node"
	}
	if n.syncFrequency == 0 {
		n.syncFrequency = 10 * time.Second
	}
	if n.progress == nil {
		n.progress = os.Stderr
	}
}

// makeDir creates the node's directory and marks it as this process's, so
// that a later Start can clean up after a process that was killed.
func (n *Node) makeDir(dir string) error {
	var err error
	if dir == "" {
		dir, err = os.MkdirTemp("", dirPrefix)
	} else {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return err
	}
	n.Dir = dir
	n.createdHostPaths = missingHostPaths()
	n.Socket = n.path("containerd.sock")
	n.KubeletRootDir = n.path("kubelet")
	n.PodLogsDir = n.path("pod-logs")
	return os.WriteFile(n.path(ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600)
}

// connect writes the kubeconfig the node's components use and a client for
// waiting on them.
func (n *Node) connect() error {
	n.kubeconfig = n.path("kubeconfig")
	if err := n.cp.WriteKubeconfig(n.kubeconfig); err != nil {
		return err
	}
	var err error
	n.client, err = client.New(n.cp.Config, client.Options{})
	return err
}

func (n *Node) importBaseImages(ctx context.Context) error {
	images, err := baseImages()
	if err != nil {
		return err
	}
	return n.Import(ctx, images...)
}

func (n *Node) logf(format string, args ...any) {
	fmt.Fprintf(n.progress, "[node %6s] %s\n", since(n.started), fmt.Sprintf(format, args...))
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }
