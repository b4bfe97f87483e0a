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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// LogLine is one line a container wrote, as the container runtime recorded it.
type LogLine struct {
	// Time is when the runtime read the line from the container.
	Time time.Time
	// Stream is stdout or stderr.
	Stream string
	Text   string
}

// ContainerLog returns what a container of pod wrote, across its restarts,
// oldest first, or nothing before it starts. It reads the kubelet's log files:
// `kubectl logs` reaches the kubelet through the node's address, which a node
// on loopback does not have.
func (n *Node) ContainerLog(pod *corev1.Pod, container string) ([]LogLine, error) {
	dir := filepath.Join(n.PodLogsDir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID), container)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var files []int
	for _, e := range entries {
		if restart, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".log")); err == nil && strings.HasSuffix(e.Name(), ".log") {
			files = append(files, restart)
		}
	}
	sort.Ints(files)
	var lines []LogLine
	for _, restart := range files {
		more, err := readCRILog(filepath.Join(dir, strconv.Itoa(restart)+".log"))
		if err != nil {
			return nil, err
		}
		lines = append(lines, more...)
	}
	return lines, nil
}

// readCRILog parses the kubelet's log format: "<RFC 3339 time> <stream> <P|F> <text>",
// where P marks a partial line continued by the next.
func readCRILog(path string) ([]LogLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []LogLine
	var partial strings.Builder
	scan := bufio.NewScanner(f)
	scan.Buffer(make([]byte, 64*1024), 1024*1024)
	for scan.Scan() {
		fields := strings.SplitN(scan.Text(), " ", 4)
		if len(fields) < 4 {
			continue // a line still being written
		}
		t, err := time.Parse(time.RFC3339Nano, fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		partial.WriteString(fields[3])
		if fields[2] == "P" {
			continue
		}
		lines = append(lines, LogLine{Time: t, Stream: fields[1], Text: partial.String()})
		partial.Reset()
	}
	return lines, scan.Err()
}
