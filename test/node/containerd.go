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
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// criNamespace is the containerd namespace the CRI plugin, hence the kubelet, uses.
const criNamespace = "k8s.io"

// debianPackages provide the container runtime, by the commands they install.
var debianPackages = map[string]string{
	"containerd":              "containerd",
	"containerd-shim-runc-v2": "containerd",
	"ctr":                     "containerd",
	"runc":                    "runc",
	"busybox":                 "busybox-static",
}

// ensureRuntime installs containerd, runc and a static busybox from Debian
// when any is missing.
func ensureRuntime(ctx context.Context, progress io.Writer) error {
	missing := map[string]bool{}
	for command, pkg := range debianPackages {
		if _, err := exec.LookPath(command); err != nil {
			missing[pkg] = true
		}
	}
	if _, err := staticBusybox(); err != nil {
		missing["busybox-static"] = true
	}
	if len(missing) == 0 {
		return nil
	}
	pkgs := make([]string, 0, len(missing))
	for p := range missing {
		pkgs = append(pkgs, p)
	}
	fmt.Fprintf(progress, "[node] installing %s with apt-get (first time only) ...\n", strings.Join(pkgs, " "))
	for _, args := range [][]string{{"update"}, append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = progress, progress
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w (a real node needs containerd, runc and busybox-static)", args[0], err)
		}
	}
	return nil
}

// containerdConfig keeps every path of this containerd under dir, so that it
// neither sees nor disturbs a containerd of the system or of another node.
func (n *Node) containerdConfig() string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.internal.v1.restart", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  # These machines refuse a negative oom_score_adj.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[7]q
    conf_dir = %[8]q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = %[9]q
        SystemdCgroup = false
`, n.path("containerd", "root"), n.path("containerd", "state"), n.Socket, n.Socket+".ttrpc",
		n.path("containerd", "opt"), SandboxImage, n.path("cni", "bin"), n.path("cni", "net.d"), n.runcRoot())
}

// runcRoot is where runc keeps the state of this node's containers.
func (n *Node) runcRoot() string { return n.path("runc") }

func (n *Node) startContainerd(ctx context.Context) error {
	config := n.path("containerd.toml")
	if err := os.WriteFile(config, []byte(n.containerdConfig()), 0o600); err != nil {
		return err
	}
	p, err := startProcess(n.Dir, "containerd", "containerd", "--config", config, "--log-level", "info")
	if err != nil {
		return err
	}
	n.containerd = p
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := p.exited(); err != nil {
			return false, err
		}
		_, err := n.ctr(ctx, "version")
		return err == nil, nil
	})
}

// ctr runs ctr against this node's containerd, in the CRI namespace.
func (n *Node) ctr(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", n.Socket, "--namespace", criNamespace}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Import assembles each image as an OCI layout and imports it into the
// node's containerd, where pods use it with imagePullPolicy Never.
func (n *Node) Import(ctx context.Context, images ...Image) error {
	for _, img := range images {
		start := time.Now()
		if err := n.importImage(ctx, img); err != nil {
			return err
		}
		n.logf("imported image %s in %s", img.Name, since(start))
	}
	return nil
}

func (n *Node) importImage(ctx context.Context, img Image) error {
	archive, err := os.CreateTemp(n.Dir, "image-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(archive.Name())
	defer archive.Close()
	if err := img.WriteLayout(archive, n.Dir); err != nil {
		return err
	}
	if err := archive.Close(); err != nil {
		return err
	}
	return n.ImportArchive(ctx, archive.Name())
}

// ImportArchive imports a tarball of an OCI image layout, as `make image`
// writes it, into the node's containerd: the image is named after the
// io.containerd.image.name annotation of the layout's index.
func (n *Node) ImportArchive(ctx context.Context, archive string) error {
	_, err := n.ctr(ctx, "images", "import", archive)
	return err
}

// checkContainers runs a container straight through containerd and runc: a
// machine that cannot run containers fails here, with runc's reason, rather
// than later as a pod stuck in ContainerCreating.
func (n *Node) checkContainers(ctx context.Context) error {
	fifos := n.path("preflight-fifos")
	if err := os.MkdirAll(fifos, 0o700); err != nil {
		return err
	}
	out, err := n.ctr(ctx, "run", "--rm", "--fifo-dir", fifos, "--runc-root", n.runcRoot(), BusyboxImage, "tokenmint-preflight", "/bin/echo", "containers run")
	if err == nil && !strings.Contains(out, "containers run") {
		err = fmt.Errorf("a busybox container printed %q, not %q", out, "containers run")
	}
	if err != nil {
		return fmt.Errorf("this machine cannot run containers: %w", err)
	}
	return nil
}

func (n *Node) path(elem ...string) string { return filepath.Join(append([]string{n.Dir}, elem...)...) }
