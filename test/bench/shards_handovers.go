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
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// handovers is what the replicas' logs say of the ranges that moved: how
// many were handed over warm (the next holder had listed them), how many
// after --shard-handover-timeout, how many a stopping replica still held at
// the end of --shard-leave-timeout, and the longest list of a range taken,
// by kind.
type handovers struct {
	warm, timedOut, leftAtStop int
	longestLoad                map[string]float64
}

// The log lines read (see internal/sharding and internal/controller).
const (
	msgWarm      = "handing a range over: the replica that takes it has it cached"
	msgTimedOut  = "handing a range over before the replica that takes it has it cached (--shard-handover-timeout)"
	msgStopping  = "stopping"
	msgRangeLoad = "ranges taken listed into the cache"
)

// readHandovers reads every replica's log in dir.
func readHandovers(dir string) (handovers, error) {
	h := handovers{longestLoad: map[string]float64{}}
	paths, err := filepath.Glob(filepath.Join(dir, "replica-*.log"))
	if err != nil {
		return h, err
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return h, err
		}
		err = h.add(f)
		_ = f.Close()
		if err != nil {
			return h, fmt.Errorf("%s: %w", p, err)
		}
	}
	return h, nil
}

// add counts the lines of one log.
func (h *handovers) add(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var e struct {
			Msg        string  `json:"msg"`
			Logger     string  `json:"logger"`
			RangesLeft []int   `json:"rangesLeft"`
			Kind       string  `json:"kind"`
			Seconds    float64 `json:"seconds"`
		}
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		switch {
		case e.Msg == msgWarm:
			h.warm++
		case e.Msg == msgTimedOut:
			h.timedOut++
		case e.Msg == msgStopping && strings.HasSuffix(e.Logger, "sharding"):
			h.leftAtStop += len(e.RangesLeft)
		case e.Msg == msgRangeLoad:
			h.longestLoad[e.Kind] = max(h.longestLoad[e.Kind], e.Seconds)
		}
	}
	return sc.Err()
}

// loads writes the longest list of each kind, "AccessToken 3.1 s, Secret 2.0 s".
func (h handovers) loads() string {
	if len(h.longestLoad) == 0 {
		return "none logged"
	}
	var parts []string
	for _, k := range []string{"AccessToken", "Secret"} {
		if s, ok := h.longestLoad[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.1f s", k, s))
		}
	}
	return strings.Join(parts, ", ")
}
