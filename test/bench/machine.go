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
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// machine describes where the benchmark ran.
type machine struct {
	cpus     int
	cpuModel string
	memTotal float64 // bytes
	kernel   string
	goVer    string
}

func machineInfo() machine {
	m := machine{cpus: runtime.NumCPU(), goVer: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(fields[1], 64)
				m.memTotal = kb * 1024
			}
		}
		_ = f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	return m
}

func (m machine) summary() string {
	return fmt.Sprintf("%d CPUs (%s), %.1f GiB memory, Linux %s, %s", m.cpus, m.cpuModel, m.memTotal/(1<<30), m.kernel, m.goVer)
}

// revision names the source the manager was built from.
func revision(root string) string {
	if out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile(filepath.Join(root, ".commit")); err == nil {
		return strings.TrimSpace(string(b))
	}
	return "unknown"
}

// loadAverage is the 1-minute load average and the number of CPUs it compares to.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// controlPlaneCPU is the CPU time (seconds) used so far by this process's
// children named kube-apiserver or etcd (the control plane of this run), and
// of it etcd's.
func controlPlaneCPU() (total, etcd float64) {
	self := strconv.Itoa(os.Getpid())
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		open, closing := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || closing < open {
			continue
		}
		comm := string(b[open+1 : closing])
		rest := strings.Fields(string(b[closing+1:]))
		if len(rest) < 2 || rest[1] != self || (comm != "kube-apiserver" && comm != "etcd") {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		cpu := procCPUSeconds(pid)
		total += cpu
		if comm == "etcd" {
			etcd += cpu
		}
	}
	return total, etcd
}
