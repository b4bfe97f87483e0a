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
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Images every node holds.
const (
	// BusyboxImage has a static busybox and its applets in /bin; its command is sh.
	BusyboxImage = "tokenmint.local/busybox:node"
	// SandboxImage is the pod sandbox (pause) image: busybox sleeping for ever.
	SandboxImage = "tokenmint.local/sandbox:node"
)

// busyboxFiles returns /bin/busybox, from the static busybox of this machine,
// and a link per applet.
func busyboxFiles() ([]File, error) {
	bin, err := staticBusybox()
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(bin, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("listing busybox applets: %w", err)
	}
	files := []File{
		{Path: "/bin/busybox", Mode: 0o755, Source: bin},
		{Path: "/tmp", Mode: os.ModeDir | 0o777},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" && !strings.Contains(applet, "/") {
			files = append(files, File{Path: "/bin/" + applet, Mode: os.ModeSymlink, Link: "busybox"})
		}
	}
	return files, nil
}

// staticBusybox finds busybox and checks it needs no shared libraries, which
// an image holding nothing else could not provide.
func staticBusybox() (string, error) {
	bin, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox is missing (apt-get install busybox-static): %w", err)
	}
	if bin, err = filepath.EvalSymlinks(bin); err != nil {
		return "", err
	}
	f, err := elf.Open(bin)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked: apt-get install busybox-static", bin)
		}
	}
	return bin, nil
}

// baseImages returns the busybox and sandbox images.
func baseImages() ([]Image, error) {
	files, err := busyboxFiles()
	if err != nil {
		return nil, err
	}
	return []Image{
		{Name: BusyboxImage, Files: files, Cmd: []string{"sh"}},
		{Name: SandboxImage, Files: files, Entrypoint: []string{"/bin/sleep", "2147483647"}},
	}, nil
}
