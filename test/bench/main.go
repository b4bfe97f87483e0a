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

// Command bench measures tokenmint at scale against the physical floor of its
// job. It starts a local control plane (etcd and kube-apiserver on loopback), a
// fast token endpoint on 127.0.0.1 and the real manager binary as a process, and
// reports, in a table: the time to issue N tokens against a plain loop doing only
// the unavoidable work, the API cost per token, a restart, memory, the spread of
// renewals and the cost of a no-op reconcile.
//
//	go run ./test/bench -n 1000 [-manager-args "--kube-api-qps=500 --kube-api-burst=1000"]
//
// With -mixed it measures tenant isolation instead (see mixed.go):
//
//	go run ./test/bench -mixed [-mixed-honest 1000 -mixed-duration 10m]
//
// With -memory-attack it measures the manager's memory under a tenant's
// largest writes, and after a restart (see memory.go).
//
// With -cluster N it measures one ClusterAccessToken written to N namespaces
// (see cluster.go).
//
// With -rotation N it measures a credential rotation behind an issuer with N
// AccessTokens (see rotation.go).
//
// With -shards N it runs N AccessTokens over several replicas that share the
// namespaces, through scaling, a SIGKILL and a rolling restart (see shards.go).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tokenmint/tokenmint/test/controlplane"
)

func main() {
	var (
		opts        options
		managerArgs string
		managerEnv  string
	)
	flag.IntVar(&opts.n, "n", 1000, "AccessTokens to issue.")
	flag.StringVar(&managerArgs, "manager-args", "", "Extra flags for the manager, space separated (default: the manager's own defaults).")
	flag.StringVar(&managerEnv, "manager-env", "", "NAME=value pairs, space separated, added to the manager's environment (e.g. GOMEMLIMIT=100MiB).")
	flag.DurationVar(&opts.lifetime, "lifetime", time.Hour, "Lifetime of the tokens the endpoint issues.")
	flag.IntVar(&opts.tokenSize, "token-size", 48, "Length of the tokens the endpoint issues (at least 48; providers' JWTs take 800 to 2,000), for memory figures with real-sized tokens.")
	flag.IntVar(&opts.creators, "creators", 16, "Concurrent clients creating AccessTokens.")
	flag.IntVar(&opts.noiseSecrets, "unrelated-secrets", 1000, "Unrelated Secrets added for the memory check (0: skip).")
	flag.IntVar(&opts.noiseSize, "unrelated-secret-size", 100<<10, "Size in bytes of each unrelated Secret.")
	flag.IntVar(&opts.spreadSample, "spread-sample", 1000, "Tokens whose renewal times are checked for spread.")
	flag.DurationVar(&opts.settle, "settle", 150*time.Second, "How long the manager settles before its memory is read (the Go runtime collects at least every 2 minutes, and returns memory to the OS after).")
	flag.DurationVar(&opts.readyTimeout, "timeout", 45*time.Minute, "Longest wait for all tokens to be Ready, or reconciled after the restart.")
	flag.BoolVar(&opts.sequence, "sequence", true, "Also time the manager's own request sequence as a plain loop (tells request cost from controller overhead).")
	flag.BoolVar(&opts.oldSequence, "old-sequence", false, "Also time the request sequence of f38efc0 (5 reads, 3 writes per token) as a plain loop.")
	flag.BoolVar(&opts.applyLoop, "apply-loop", false, "Also time the manager's sequence without its read (Secret applied, status patched) as a plain loop.")
	flag.BoolVar(&opts.loopsOnly, "loops-only", false, "Time the plain loops only, without the manager.")
	flag.StringVar(&opts.managerBin, "manager-bin", "", "Benchmark this manager binary instead of building ./cmd.")
	floor := flag.Bool("floor", true, "Time the floor (the same N through a plain loop) before and after each operator round; -floor=false measures one operator round alone (issue time, costs per token, restart, memory), for sizes where the floor runs would take too long.")
	flag.BoolVar(&opts.failover, "failover", true, "After the restart, run the manager with --leader-elect and a standby beside it, SIGKILL the leader and time the standby's takeover and its first renewals.")
	probes := flag.Bool("probes", true, "Run the status-only write and no-op reconcile probes (2N status patches and N annotations); -probes=false skips them at large N.")
	flag.IntVar(&opts.rounds, "rounds", 3, "Runs of the operator, each followed by a floor run (the floor also runs once before the first); each is compared with the floor runs either side and the median counts. The other plain loops run as often, interleaved, and their fastest run counts.")
	flag.StringVar(&opts.out, "out", "", "File to write the Markdown table to (default bin/bench-<n>.md).")
	flag.StringVar(&opts.logDir, "log-dir", "", "Directory to keep the manager's log in (default: a temporary directory, removed).")
	flag.StringVar(&opts.heapProfile, "heap-profile", "", "File to save the manager's heap profile to, after settling.")
	flag.StringVar(&opts.cpuProfile, "cpu-profile", "", "File to save the manager's CPU profile to, taken over the first 30 s of issuing.")
	flag.StringVar(&opts.apiProfile, "api-cpu-profile", "", "Prefix of files to save kube-apiserver's CPU profiles to, taken over the first 30 s of the first floor run (<prefix>-floor.pb.gz) and of issuing (<prefix>-issue.pb.gz).")
	mixed := registerMixedFlags(flag.CommandLine)
	memoryAttack := registerMemoryAttackFlags(flag.CommandLine)
	rotation := registerRotationFlags(flag.CommandLine)
	shards := registerShardsFlags(flag.CommandLine)
	cluster := flag.Int("cluster", 0, "Measure a ClusterAccessToken written to this many namespaces instead (writes bin/bench-cluster-<N>.md).")
	flag.Parse()
	opts.noFloor, opts.noProbes = !*floor, !*probes
	ctrllog.SetLogger(logr.Discard())
	opts.managerArgs = strings.Fields(managerArgs)
	opts.managerEnv = strings.Fields(managerEnv)
	opts.command = "go run ./test/bench " + strings.Join(os.Args[1:], " ")
	if mixed.enabled {
		os.Exit(mainMixed(opts, *mixed))
	}
	if memoryAttack.enabled {
		os.Exit(runMemoryAttackMode(opts, *memoryAttack))
	}
	if shards.n > 0 {
		os.Exit(runShardsMode(opts, *shards))
	}
	if *cluster > 0 {
		os.Exit(runClusterMode(opts, *cluster))
	}
	if rotation.n > 0 {
		os.Exit(runRotationMode(opts, *rotation))
	}
	if opts.out == "" {
		opts.out = filepath.Join(controlplane.RepoRoot(), "bin", fmt.Sprintf("bench-%d.md", opts.n))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, opts, os.Stdout)
	if res != nil {
		md := res.markdown()
		fmt.Println()
		fmt.Println(md)
		if err == nil {
			if werr := writeReport(opts.out, md); werr != nil {
				fmt.Fprintln(os.Stderr, werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
