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
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// TestSmoke runs the whole benchmark at a small N and checks what must hold at
// any size (not timings, which need the full run): exactly one endpoint call per
// token, nothing minted or written on restart or on a no-op reconcile, no
// reconcile from status-only writes, and a complete table.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and the manager")
	}
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const n = 50
	var out bytes.Buffer
	res, err := run(ctx, options{n: n, lifetime: time.Hour, creators: 8, spreadSample: n, settle: time.Second,
		readyTimeout: 3 * time.Minute, command: "go test ./test/bench", quick: true, rounds: 2, failover: true}, &out)
	if err != nil {
		t.Fatalf("benchmark failed: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String() + "\n" + res.markdown())

	if res.issue.calls != n || res.issue.issued != n {
		t.Errorf("issuing %d tokens made %.0f endpoint calls and %.0f issued tokens; want %d", n, res.issue.calls, res.issue.issued, n)
	}
	if res.floorCalls != n {
		t.Errorf("the floor made %d endpoint calls; want %d", res.floorCalls, n)
	}
	if len(res.issueTimes) != 2 || len(res.floorTimes) != 3 {
		t.Errorf("timed %d operator rounds and %d floor runs; want 2 between 3", len(res.issueTimes), len(res.floorTimes))
	}
	for i, d := range append(res.issueTimes, res.floorTimes...) {
		if d <= 0 {
			t.Errorf("run %d not timed: %s", i, d)
		}
	}
	if res.restart.calls != 0 || res.restart.writes != 0 {
		t.Errorf("the restart made %.0f endpoint calls and %.0f writes; want none", res.restart.calls, res.restart.writes)
	}
	if res.restart.reconciles < n {
		t.Errorf("after the restart %.0f reconciles; want at least %d", res.restart.reconciles, n)
	}
	if f := res.failover; f == nil || !f.warm || f.leader <= 0 || f.firstCall < f.leader || f.allRenewed < f.firstCall ||
		f.callsMeanwhile != int64(f.renewals) || f.renewals != 20 {
		t.Errorf("failover: %+v; want a warm standby leading, then exactly 20 calls for the 20 renewals asked", f)
	}
	if res.poke.calls != 0 || res.poke.writes != 0 || res.poke.reconciles < n {
		t.Errorf("no-op reconciles: %.0f reconciles, %.0f endpoint calls, %.0f writes; want ≥ %d, 0, 0",
			res.poke.reconciles, res.poke.calls, res.poke.writes, n)
	}
	if res.statusOnly.reconciles != 0 {
		t.Errorf("%d status-only writes caused %.0f reconciles; want 0", res.statusWrites, res.statusOnly.reconciles)
	}
	if res.spread == nil || res.spread.sample != n {
		t.Errorf("spread measured on %v tokens; want %d", res.spread, n)
	}
	if res.mem.rss <= 0 || res.mem.rssMax < res.mem.rss || res.mem.file <= 0 || res.mem.file >= res.mem.rssMax || res.mem.heap <= 0 || res.mem.tokenmintSeries < 4*n-n {
		t.Errorf("memory not measured: %+v", res.mem)
	}
	md := res.markdown()
	for _, want := range []string{"Operator / floor", "writes per issued token", "Restart", "Failover", "Resident memory", "Renewal spread", "No-op reconcile median", "status-only writes"} {
		if !strings.Contains(md, want) {
			t.Errorf("the table has no %q row", want)
		}
	}
}
