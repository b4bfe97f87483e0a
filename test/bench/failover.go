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
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// failoverRenewals is how many AccessTokens are asked to renew at the
// leader's SIGKILL: at most the per-namespace burst of mints asked for ahead
// of schedule (--forced-renewal-burst, 20), so that none waits for its rate.
const failoverRenewals = 20

// leaderFailover is what the failover phase measured.
type leaderFailover struct {
	// warm tells whether the standby's cache held every AccessToken before
	// the leader was killed; warmAfter is how long after its start it did.
	warm      bool
	warmAfter time.Duration
	// From the leader's SIGKILL: until the standby reported itself leader,
	// until the endpoint answered its first call, until every asked renewal
	// was served (status.lastRenewalRequest) with a new token.
	leader, firstCall, allRenewed time.Duration
	renewals                      int
	// callsMeanwhile is the endpoint's calls from the SIGKILL until all were
	// renewed: exactly renewals when nothing else was minted.
	callsMeanwhile int64
}

// phaseFailover measures what a second replica buys without sharding: the
// manager is restarted with --leader-elect and a standby started beside it,
// with the same flags; once the standby's cache holds every AccessToken, the
// leader is SIGKILLed and, at that moment, renewals are asked for (the renew
// annotation) on a few AccessTokens. It reports how long until the standby
// leads, until the endpoint sees its first call, and until every renewal asked
// for is in its Secret; the standby then serves the phases that follow.
func (b *bench) phaseFailover(ctx context.Context) error {
	if !b.opts.failover {
		return nil
	}
	b.p.printf("failover: restarting the manager with --leader-elect, and a standby beside it")
	if err := b.mgr.stop(60 * time.Second); err != nil {
		return fmt.Errorf("stopping the manager: %w", err)
	}
	args := append([]string{"--operator-namespace", operatorNamespace, "--leader-elect"}, b.opts.managerArgs...)
	leader, err := startManager(b.bin, b.kubeconfig, filepath.Join(b.opts.logDir, "manager.log"), args, b.opts.managerEnv)
	if err != nil {
		return err
	}
	b.mgr = leader
	if _, err := b.waitReconciled(ctx, "failover, leader"); err != nil {
		return err
	}
	standby, err := startManager(b.bin, b.kubeconfig, filepath.Join(b.opts.logDir, "standby.log"), args, b.opts.managerEnv)
	if err != nil {
		return err
	}
	if err := standby.waitReady(ctx, 60*time.Second); err != nil {
		_ = standby.stop(10 * time.Second)
		return err
	}
	f := &leaderFailover{renewals: min(failoverRenewals, b.opts.n)}
	b.r.failover = f
	// The standby's caches fill before it leads (controller-runtime starts
	// them apart from the leader's work): wait for them, up to a while.
	warmBy := time.Now().Add(5 * time.Minute)
	for time.Now().Before(warmBy) {
		if s, err := standby.metrics(ctx); err == nil && s.sum("tokenmint_cache_objects", "kind", "AccessToken") >= float64(b.opts.n) {
			f.warm, f.warmAfter = true, time.Since(standby.started)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.p.printf("failover: standby's cache %s; SIGKILL to the leader, renewal asked of %d AccessTokens",
		map[bool]string{true: "holds every AccessToken after " + f.warmAfter.Round(100*time.Millisecond).String(), false: "not full after 5 minutes"}[f.warm], f.renewals)

	items, err := b.tracker.list(ctx, tokensNamespace)
	if err != nil {
		return err
	}
	if len(items) < f.renewals {
		return fmt.Errorf("failover: %d AccessTokens listed, want at least %d", len(items), f.renewals)
	}
	calls := b.endpoint.Calls()
	killed := time.Now()
	if err := leader.cmd.Process.Kill(); err != nil {
		return err
	}
	leader.done <- <-leader.done
	_ = leader.log.Close()
	b.mgr = standby
	stamp := "failover-" + strconv.FormatInt(killed.UnixNano(), 10)
	asked := make([]types.NamespacedName, 0, f.renewals)
	for _, at := range items[:f.renewals] {
		patch := []byte(`{"metadata":{"annotations":{"` + tokensv1alpha1.AnnotationRenew + `":"` + stamp + `"}}}`)
		obj := at.DeepCopy()
		if err := b.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return err
		}
		b.count("PATCH", "accesstokens")
		asked = append(asked, client.ObjectKeyFromObject(obj))
	}

	deadline := killed.Add(5 * time.Minute)
	for {
		now := time.Since(killed)
		if f.leader == 0 {
			if s, err := standby.metrics(ctx); err == nil && s.sum("leader_election_master_status") >= 1 {
				f.leader = now
			}
		}
		if f.firstCall == 0 && b.endpoint.Calls() > calls {
			f.firstCall = now
		}
		if f.firstCall > 0 {
			done := 0
			for _, key := range asked {
				at := &tokensv1alpha1.AccessToken{}
				if err := b.client.Get(ctx, key, at); err == nil && at.Status.LastRenewalRequest == stamp {
					done++
				}
			}
			if done == len(asked) {
				f.allRenewed = time.Since(killed)
				f.callsMeanwhile = b.endpoint.Calls() - calls
				break
			}
		}
		if standby.exited() {
			return fmt.Errorf("failover: the standby exited; see %s", standby.log.Name())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("failover: the asked renewals were not all served 5 minutes after the leader's SIGKILL (leader after %s, first call after %s)", f.leader, f.firstCall)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	b.p.printf("failover: standby leads %s after the SIGKILL, first call after %s, all %d renewals after %s (%d calls)",
		f.leader.Round(100*time.Millisecond), f.firstCall.Round(100*time.Millisecond), f.renewals,
		f.allRenewed.Round(100*time.Millisecond), f.callsMeanwhile)
	_, err = b.waitQuiet(ctx, 3*time.Second, 5*time.Minute)
	return err
}
