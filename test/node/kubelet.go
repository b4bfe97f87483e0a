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
	"context"
	"net"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// kubeletConfig is a KubeletConfiguration for a node bound to loopback on a
// machine with cgroup v1, no swap accounting, and a VM that refuses negative
// oom_score_adj. Authentication and authorization are open: nothing but this
// machine can reach the kubelet.
func (n *Node) kubeletConfig() ([]byte, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(map[string]any{
		"apiVersion":                    "kubelet.config.k8s.io/v1beta1",
		"kind":                          "KubeletConfiguration",
		"address":                       "127.0.0.1",
		"port":                          port,
		"readOnlyPort":                  0,
		"healthzBindAddress":            "127.0.0.1",
		"healthzPort":                   0,
		"failCgroupV1":                  false,
		"cgroupDriver":                  "cgroupfs",
		"cgroupsPerQOS":                 false,
		"enforceNodeAllocatable":        []string{},
		"failSwapOn":                    false,
		"localStorageCapacityIsolation": false,
		"oomScoreAdj":                   0,
		"containerRuntimeEndpoint":      "unix://" + n.Socket,
		"podLogsDir":                    n.PodLogsDir,
		"volumePluginDir":               n.path("volume-plugins"),
		"syncFrequency":                 n.syncFrequency.String(),
		"clusterDomain":                 "cluster.local",
		"serializeImagePulls":           false,
		// The node's images are imported, never pulled: keep them whatever the disk says.
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"evictionHard":                map[string]string{"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": true},
			"webhook":   map[string]any{"enabled": false},
		},
		"authorization": map[string]any{"mode": "AlwaysAllow"},
	})
}

func (n *Node) startKubelet(ctx context.Context, binary string) error {
	config, err := n.kubeletConfig()
	if err != nil {
		return err
	}
	configPath := n.path("kubelet.yaml")
	if err := os.WriteFile(configPath, config, 0o600); err != nil {
		return err
	}
	p, err := startProcess(n.Dir, "kubelet", binary,
		"--config", configPath,
		"--kubeconfig", n.kubeconfig,
		"--root-dir", n.KubeletRootDir,
		"--cert-dir", n.path("kubelet-pki"),
		"--hostname-override", n.Name,
		"--node-ip", "127.0.0.1",
		"--v", "2",
	)
	if err != nil {
		return err
	}
	n.kubelet = p
	return n.waitForNode(ctx)
}

// waitForNode waits until the kubelet has registered the node.
func (n *Node) waitForNode(ctx context.Context) error {
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := n.kubelet.exited(); err != nil {
			return false, err
		}
		err := n.client.Get(ctx, client.ObjectKey{Name: n.Name}, &corev1.Node{})
		return err == nil, client.IgnoreNotFound(err)
	})
}

// startControllers runs kube-controller-manager (Deployments, ReplicaSets,
// ServiceAccounts, their tokens' signing key, the kube-root-ca.crt ConfigMap)
// and kube-scheduler, both serving nothing.
func (n *Node) startControllers(ctx context.Context, assets string) error {
	ca := n.path("ca.crt")
	if err := os.WriteFile(ca, n.cp.Config.CAData, 0o600); err != nil {
		return err
	}
	kcm, err := startProcess(n.Dir, "kube-controller-manager", filepath.Join(assets, "kube-controller-manager"),
		"--kubeconfig", n.kubeconfig,
		"--bind-address", "127.0.0.1",
		"--secure-port", "0",
		"--leader-elect=false",
		"--service-account-private-key-file", n.cp.ServiceAccountKeyFile(),
		"--root-ca-file", ca,
		"--use-service-account-credentials=false",
		"--v", "1",
	)
	if err != nil {
		return err
	}
	n.controllerManager = kcm
	scheduler, err := startProcess(n.Dir, "kube-scheduler", filepath.Join(assets, "kube-scheduler"),
		"--kubeconfig", n.kubeconfig,
		"--bind-address", "127.0.0.1",
		"--secure-port", "0",
		"--leader-elect=false",
		"--v", "1",
	)
	if err != nil {
		return err
	}
	n.scheduler = scheduler
	// The root CA ConfigMap, which every service account token volume needs,
	// shows that the controller manager runs and is configured.
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, p := range []*process{kcm, scheduler} {
			if err := p.exited(); err != nil {
				return false, err
			}
		}
		err := n.client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kube-root-ca.crt"}, &corev1.ConfigMap{})
		return err == nil, client.IgnoreNotFound(err)
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
