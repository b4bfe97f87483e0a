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
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tokenmint/tokenmint/test/controlplane"
)

// buildManager builds the manager binary the way the image does.
func buildManager(dir string) (string, error) {
	bin := filepath.Join(dir, "manager")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd")
	cmd.Dir = controlplane.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the manager: %v\n%s", err, out)
	}
	return bin, nil
}

// flagDefaults reads the manager's flag defaults from its --help, so the bench
// reports (and the floor copies) what the binary really uses.
func flagDefaults(bin string) (map[string]string, error) {
	out, _ := exec.Command(bin, "--help").CombinedOutput() // exits 0 or 2 depending on the flag package
	re := regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)(?: [a-z0-9]+)?\n\s+.*?\(default "?([^")]*)"?\)`)
	d := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		d[m[1]] = m[2]
	}
	if len(d) == 0 {
		return nil, fmt.Errorf("could not read flag defaults from %s --help:\n%s", bin, out)
	}
	return d, nil
}

// manager is the manager binary running as a process.
type manager struct {
	cmd        *exec.Cmd
	done       chan error // receives the exit once, then is put back for exited()
	metricsURL string
	readyURL   string
	pprofURL   string
	started    time.Time
	log        *os.File
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startManager(bin, kubeconfig, logPath string, args, env []string) (*manager, error) {
	mp, err := freePort()
	if err != nil {
		return nil, err
	}
	hp, err := freePort()
	if err != nil {
		return nil, err
	}
	pp, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	all := append([]string{
		"--kubeconfig", kubeconfig,
		"--metrics-secure=false",
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", mp),
		"--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", hp),
		"--pprof-bind-address", fmt.Sprintf("127.0.0.1:%d", pp),
	}, args...)
	fmt.Fprintf(logFile, "--- %s %s\n", time.Now().Format(time.RFC3339), strings.Join(all, " "))
	cmd := exec.Command(bin, all...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	m := &manager{cmd: cmd, done: make(chan error, 1), log: logFile,
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", mp),
		readyURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", hp),
		pprofURL:   fmt.Sprintf("http://127.0.0.1:%d/debug/pprof", pp)}
	m.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { m.done <- cmd.Wait() }()
	return m, nil
}

// waitReady waits for the readiness probe.
func (m *manager) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-m.done:
			m.done <- err
			return fmt.Errorf("the manager exited: %v; see %s", err, m.log.Name())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := http.Get(m.readyURL); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the manager was not ready within %s; see %s", timeout, m.log.Name())
}

// stop sends SIGTERM, as the kubelet does, and waits for the exit.
func (m *manager) stop(timeout time.Duration) error {
	if m == nil || m.cmd.Process == nil || m.exited() {
		return nil
	}
	defer m.log.Close()
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-m.done:
		m.done <- err
		return err
	case <-time.After(timeout):
		_ = m.cmd.Process.Kill()
		m.done <- <-m.done
		return fmt.Errorf("the manager did not exit within %s of SIGTERM", timeout)
	}
}

func (m *manager) exited() bool {
	select {
	case err := <-m.done:
		m.done <- err
		return true
	default:
		return false
	}
}

// metrics scrapes the manager: every family, or only those named. A
// replica holding 100,000 AccessTokens exports 400,000 series of them; a
// scrape naming its families (the name[] parameter of the Prometheus
// handler) spares the manager encoding them, and this process decoding them,
// every 2 s.
func (m *manager) metrics(ctx context.Context, families ...string) (scrape, error) {
	u := m.metricsURL
	if len(families) > 0 {
		q := url.Values{"name[]": families}
		u += "?" + q.Encode()
	}
	return fetchMetrics(ctx, http.DefaultClient, u)
}

// saveHeapProfile writes the manager's heap profile, after a garbage
// collection, to path (read it with go tool pprof).
func (m *manager) saveHeapProfile(ctx context.Context, path string) error {
	return m.saveProfile(ctx, "/heap?gc=1", path)
}

// saveCPUProfile profiles the manager's CPU for d and writes the profile to path.
func (m *manager) saveCPUProfile(ctx context.Context, d time.Duration, path string) error {
	return m.saveProfile(ctx, fmt.Sprintf("/profile?seconds=%d", int(d.Seconds())), path)
}

func (m *manager) saveProfile(ctx context.Context, query, path string) error {
	return saveProfile(ctx, http.DefaultClient, m.pprofURL+query, path)
}

// saveProfile fetches a pprof profile from url with hc and writes it to path.
func saveProfile(ctx context.Context, hc *http.Client, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// memory is the process's resident memory now and at its peak, and the part of
// it mapped from files (the binary), in bytes.
type memory struct{ rss, hwm, file float64 }

func (m *manager) memory() (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var out memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			out.rss = kb * 1024
		case "VmHWM:":
			out.hwm = kb * 1024
		case "RssFile:":
			out.file = kb * 1024
		}
	}
	return out, sc.Err()
}

// cpuSeconds is the user and system CPU time the process has used.
func (m *manager) cpuSeconds() float64 {
	return procCPUSeconds(m.cmd.Process.Pid)
}

func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}
