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
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

const (
	// dirPrefix names the nodes' default directories under os.TempDir().
	dirPrefix = "tokenmint-node-"
	// ownerFile in a node's directory holds the pid of the process that started it.
	ownerFile = "owner.pid"
	// shimSocketDir is where containerd 1.6 puts its shims' sockets, whatever its state dir.
	shimSocketDir = "/run/containerd/s"
	// legacyLogLinks is where the kubelet links every container's log.
	legacyLogLinks = "/var/log/containers"
)

// Stop stops the kubelet, the controllers, every container and containerd,
// unmounts what they mounted and removes the node's directory. It reports
// anything it could not remove.
func (n *Node) Stop() error {
	if n.Dir == "" {
		return nil
	}
	start := time.Now()
	n.logf("stopping node %q", n.Name)
	var errs []error
	for _, p := range []*process{n.kubelet, n.scheduler, n.controllerManager} {
		if p != nil {
			errs = append(errs, p.stop(10*time.Second))
		}
	}
	errs = append(errs, cleanUp(n.Dir, func() error {
		if n.containerd != nil {
			return n.containerd.stop(10 * time.Second)
		}
		return nil
	}))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stopping node %q: %w", n.Name, err)
	}
	removeHostPaths(n.createdHostPaths)
	n.logf("node %q stopped in %s; nothing left behind", n.Name, since(start))
	n.Dir = ""
	return nil
}

// cleanUp removes a node's containers, shims, mounts, log links and
// directory; stopContainerd stops its containerd once no container runs.
func cleanUp(dir string, stopContainerd func() error) error {
	socket := filepath.Join(dir, "containerd.sock")
	ids, err := removeContainers(filepath.Join(dir, "runc", criNamespace))
	errs := []error{err, killShims(socket), stopContainerd()}
	// A killed containerd leaves its own process tree behind only as shims.
	errs = append(errs, killShims(socket))
	errs = append(errs, unmountUnder(dir))
	removeShimSockets(socket, ids)
	removeLogLinks(filepath.Join(dir, "pod-logs"))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return leftovers(dir)
}

// removeContainers kills and deletes every container runc knows under root,
// and returns their ids.
func removeContainers(root string) ([]string, error) {
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	out, err := exec.Command("runc", "--root", root, "list", "--quiet").Output()
	if err != nil {
		return nil, fmt.Errorf("runc list: %w", err)
	}
	ids := strings.Fields(string(out))
	var errs []error
	for _, id := range ids {
		if out, err := exec.Command("runc", "--root", root, "delete", "--force", id).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("runc delete %s: %w: %s", id, err, bytes.TrimSpace(out)))
		}
	}
	return ids, errors.Join(errs...)
}

// killShims kills the containerd shims serving the containerd at socket.
func killShims(socket string) error {
	pids := processesWith("-address", socket)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// Not our children: there is nothing to wait() on, so poll.
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) {
			for _, pid := range pids {
				if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
					return false, nil
				}
			}
			return true, nil
		})
	if err != nil {
		return fmt.Errorf("containerd shims %v did not exit: %w", pids, err)
	}
	return nil
}

// processesWith lists the processes whose command line holds arg, followed by
// value when value is not empty.
func processesWith(arg, value string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		for i, a := range argv {
			if value == "" && strings.Contains(a, arg) || a == arg && i+1 < len(argv) && argv[i+1] == value {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return strings.HasPrefix(rest, "Z")
}

// unmountUnder unmounts every mount at or below dir, deepest first: pod
// volumes, the kubelet's root, container root filesystems and shm.
func unmountUnder(dir string) error {
	for range 5 {
		mounts, err := mountsUnder(dir)
		if err != nil || len(mounts) == 0 {
			return err
		}
		for _, m := range mounts {
			if err := syscall.Unmount(m, 0); err != nil {
				_ = syscall.Unmount(m, syscall.MNT_DETACH)
			}
		}
	}
	if mounts, _ := mountsUnder(dir); len(mounts) > 0 {
		return fmt.Errorf("still mounted: %v", mounts)
	}
	return nil
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	scan := bufio.NewScanner(f)
	for scan.Scan() {
		fields := strings.Fields(scan.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts, scan.Err()
}

// unescapeMountPath decodes mountinfo's octal escapes (\040 for a space ...).
func unescapeMountPath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeShimSockets removes the sockets containerd 1.6 names after a hash of
// its own socket, the namespace and the container (or sandbox) id.
func removeShimSockets(socket string, ids []string) {
	for _, id := range ids {
		sum := sha256.Sum256([]byte(filepath.Join(socket, criNamespace, id)))
		_ = os.Remove(filepath.Join(shimSocketDir, hex.EncodeToString(sum[:])))
	}
}

// removeLogLinks removes the kubelet's links in /var/log/containers to the
// node's pod logs.
func removeLogLinks(podLogs string) {
	entries, _ := os.ReadDir(legacyLogLinks)
	for _, e := range entries {
		link := filepath.Join(legacyLogLinks, e.Name())
		if target, err := os.Readlink(link); err == nil && strings.HasPrefix(target, podLogs+"/") {
			_ = os.Remove(link)
		}
	}
}

// hostPaths are created outside the node's directory by components that do
// not let us choose: the kubelet's device plugin socket, its default volume
// plugin directory and its links to container logs, and the directory of
// containerd 1.6's shim sockets.
var hostPaths = []string{"/var/lib/kubelet", "/usr/libexec/kubernetes", legacyLogLinks, "/run/containerd"}

// missingHostPaths returns the host paths that do not exist yet.
func missingHostPaths() []string {
	var missing []string
	for _, p := range append(hostPaths, cgroupParents()...) {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			missing = append(missing, p)
		}
	}
	return missing
}

// removeHostPaths removes the host paths a node created, unless a kubelet or
// a containerd (another node's, say) still runs and may use them.
func removeHostPaths(created []string) {
	if len(created) == 0 || len(processesNamed("kubelet", "containerd")) > 0 {
		return
	}
	for _, p := range created {
		if strings.HasPrefix(p, cgroupRoot+"/") {
			_ = os.Remove(p) // a cgroup goes with rmdir, once empty
		} else {
			_ = os.RemoveAll(p)
		}
	}
}

// cgroupRoot holds the cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupParents are the cgroups containerd puts the CRI namespace's
// containers under, in each hierarchy, when the kubelet names no parent.
func cgroupParents() []string {
	parents := []string{filepath.Join(cgroupRoot, criNamespace)}
	entries, _ := os.ReadDir(cgroupRoot)
	for _, e := range entries {
		if e.IsDir() {
			parents = append(parents, filepath.Join(cgroupRoot, e.Name(), criNamespace))
		}
	}
	return parents
}

// processesNamed lists the processes whose executable has one of names.
func processesNamed(names ...string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && slices.Contains(names, strings.TrimSpace(string(comm))) && !isZombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// leftovers reports processes still using dir and mounts still under it.
func leftovers(dir string) error {
	var errs []error
	if pids := processesWith(dir, ""); len(pids) > 0 {
		errs = append(errs, fmt.Errorf("processes still running from %s: %v", dir, pids))
	}
	if mounts, _ := mountsUnder(dir); len(mounts) > 0 {
		errs = append(errs, fmt.Errorf("still mounted: %v", mounts))
	}
	return errors.Join(errs...)
}

// sweepStale cleans up the directories of nodes whose process is gone, as
// when a test binary was killed by its timeout.
func sweepStale(logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		raw, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || syscall.Kill(pid, 0) == nil {
			continue
		}
		logf("cleaning up after a node whose process %d is gone: %s", pid, dir)
		err = cleanUp(dir, func() error {
			for _, p := range processesWith(dir, "") {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			return nil
		})
		if err != nil {
			logf("could not clean up %s: %v", dir, err)
		}
	}
}
