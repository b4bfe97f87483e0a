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
	"fmt"
	"strings"
	"time"
)

// closeWithin is how close two mints of one AccessToken count as two mints for
// one renewal: half --min-mint-interval, since the endpoint sees a mint after
// its call waited its turn, which shifts the manager's own spacing.
func (r *shardsResults) closeWithin() time.Duration { return r.minMintInterval / 2 }

// failoverLimit is the longest a killed replica's ranges may go unserved.
func (r *shardsResults) failoverLimit() time.Duration { return r.leaseDuration + 30*time.Second }

func (r *shardsResults) allBalanced() bool {
	for _, ph := range r.phases {
		if !ph.balanced {
			return false
		}
	}
	return len(r.phases) > 0
}

// inFlightOK is true when the calls in flight at the issuer never exceeded
// --issuer-concurrency (unknown limits pass).
func (r *shardsResults) inFlightOK() bool {
	return r.concurrency <= 0 || r.maxInFlight <= int64(r.concurrency)
}

// passed is true when every check that has a target was met.
func (r *shardsResults) passed() bool {
	return r.account.ok() && r.neverIssued == 0 && r.burstMissing == 0 && r.unexpectedExits == 0 && r.expiredSecrets == 0 && r.unknownTokens == 0 &&
		r.failoverDone && r.failover <= r.failoverLimit() && r.allBalanced() && r.inFlightOK()
}

func (r *shardsResults) markdown() string {
	var b strings.Builder
	o := r.o
	fmt.Fprintf(&b, "# Sharding: %d AccessTokens over up to %d replicas\n\n", o.n, o.replicas)
	fmt.Fprintf(&b, "`%s` at %s on %s; %s in all.\n\n", r.command, r.revision, r.machine.summary(), r.duration.Round(time.Second))
	fmt.Fprintf(&b, "%d AccessTokens in %d namespaces, one ClusterTokenIssuer; the endpoint answers after %s with tokens of %s. "+
		"Each replica: `--shard-ranges=%d --leader-elect`, lease duration %s, `--issuer-concurrency=%s`, `--issuer-rate-limit=%s`, `--issuer-burst=%s`, `--min-mint-interval=%s`",
		o.n, r.namespaces, o.delay, o.lifetime, o.ranges, r.leaseDuration, r.settings["issuer-concurrency"], r.settings["issuer-rate-limit"],
		r.settings["issuer-burst"], r.settings["min-mint-interval"])
	b.WriteString("; the rest the manager's defaults.\n\n")
	fmt.Fprintf(&b, "Phases: 1 replica issues all; scale 1 → %d", o.replicas)
	if o.burst {
		b.WriteString("; the issuer changed (a header added to its request), which re-issues every token at once")
	}
	fmt.Fprintf(&b, "; scale %d → %d (SIGTERM); SIGKILL of the oldest replica, then a replacement; scale to %d; a rolling restart (each replica SIGTERMed, then its successor started); renewals until every token renewed on time alone; every replica SIGTERMed.\n\n",
		o.replicas, o.scaleDown, o.replicas)

	b.WriteString("| Check | Target | Result | Met |\n|---|---|---|---|\n")
	row := func(check, target, result string, met string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", check, target, result, met)
	}
	row("Time to issue all on 1 replica", "", fmt.Sprintf("%.1f s (%.0f tokens/s)", r.issueAll.Seconds(), float64(o.n)/r.issueAll.Seconds()), "")
	if o.burst {
		row(fmt.Sprintf("Issuer changed on %d replicas: time until every Secret held a re-issued token", o.replicas),
			"all re-issued", fmt.Sprintf("%.1f s (%d not re-issued)", r.burstAll.Seconds(), r.burstMissing), mark(r.burstMissing == 0))
	}
	a := r.account
	row("Tokens the endpoint issued; of them seen in their Secret", "all, but those lost with a SIGKILLed replica",
		fmt.Sprintf("%d; %d (%d issued from %s before the SIGKILL to %s after it and never written)%s", a.issued, a.stored, a.lostToKill, (5*time.Second+o.delay), o.delay+time.Second,
			neverWritten(a.wasted, r.started)),
		mark(len(a.wasted) == 0))
	shortest := "none minted twice"
	if a.shortestSubject != "" {
		shortest = fmt.Sprintf("%.1f s (%s)", a.shortest.Seconds(), a.shortestSubject)
	}
	row(fmt.Sprintf("Two mints of one AccessToken less than half --min-mint-interval (%s) apart at the endpoint (two mints for one renewal); the shortest gap", r.closeWithin()),
		"0", fmt.Sprintf("%d; %s", len(a.close), shortest), mark(len(a.close) == 0))
	row("Mints the replicas counted (tokenmint_tokens_issued_total, last scrape of each process, 2 s apart)", "= the endpoint's",
		fmt.Sprintf("%d of %d", r.managerIssued, a.issued), "")
	row("Calls per AccessToken: fewest, most; AccessTokens never issued", "never issued: 0", fmt.Sprintf("%d, %d; %d", r.minMints, r.maxMints, r.neverIssued), mark(r.neverIssued == 0))
	row("AccessTokens that renewed on time alone at least once", fmt.Sprintf("all %d", o.n), fmt.Sprint(o.n-r.unrenewed), "")
	row("Secrets that ever held an expired token (every update watched, against the expiry the endpoint sent)", "0",
		fmt.Sprintf("%d of %d (longest %s)%s", r.expiredSecrets, r.secrets, r.longestGap.Round(time.Millisecond), expiredList(r.expiredKeys)), mark(r.expiredSecrets == 0))
	row("Tokens in Secrets the endpoint never issued, or in another AccessToken's Secret", "0", fmt.Sprint(r.unknownTokens), mark(r.unknownTokens == 0))
	fo := "not all served"
	if r.failoverDone {
		fo = fmt.Sprintf("%.1f s (%d ranges of %s)", r.failover.Seconds(), r.failoverOwned, r.killedName)
	}
	row("SIGKILL: until another replica holds each of the killed replica's range Leases", fmt.Sprintf("≤ %s (lease duration + 30 s)", r.failoverLimit()),
		fo, mark(r.failoverDone && r.failover <= r.failoverLimit()))
	cached := "not seen"
	if r.failoverCached > 0 {
		cached = fmt.Sprintf("%.1f s", r.failoverCached.Seconds())
	}
	row("SIGKILL: until every live replica's cache has listed each range it holds (`tokenmint_shard_ranges_cached`)", "", cached, "")
	ho := r.handovers
	if r.handoversErr != nil {
		row("Ranges handed over warm (the next holder had listed them), after --shard-handover-timeout, and left by a stopping replica after --shard-leave-timeout (the replicas' logs)", "", "logs not read: "+r.handoversErr.Error(), "")
	} else {
		row("Ranges handed over warm (the next holder had listed them), after --shard-handover-timeout, and left by a stopping replica after --shard-leave-timeout (the replicas' logs)", "",
			fmt.Sprintf("%d; %d; %d", ho.warm, ho.timedOut, ho.leftAtStop), "")
		row("Longest list of ranges taken, by kind (`ranges taken listed into the cache`)", "", ho.loads(), "")
	}
	row("Ranges per replica differ by at most one, every range held by a live replica, after each phase", "every phase", fmt.Sprintf("%d of %d phases", countBalanced(r.phases), len(r.phases)), mark(r.allBalanced()))
	row("Replicas that exited without a SIGTERM or a SIGKILL (leader election lost, say)", "0", fmt.Sprint(r.unexpectedExits), mark(r.unexpectedExits == 0))
	row("Calls in flight at the one issuer, all replicas together, at most", fmt.Sprintf("≤ --issuer-concurrency (%d)", r.concurrency), fmt.Sprint(r.maxInFlight), mark(r.inFlightOK()))
	row("Calls answered in any one second, all replicas together, at most", "", fmt.Sprintf("%d (--issuer-rate-limit %s, burst %s, per replica)", r.maxPerSec, r.settings["issuer-rate-limit"], r.settings["issuer-burst"]), "")

	b.WriteString("\nEach phase once settled: the ranges each live replica holds by the Leases (in order of start), and the time from the last process started or stopped until they were balanced on three polls 1 s apart.\n\n")
	b.WriteString("| Phase | Ranges per replica | Balanced after | Met |\n|---|---|---|---|\n")
	for _, ph := range r.phases {
		fmt.Fprintf(&b, "| %s | %s | %.1f s | %s |\n", ph.name, ph.counts, ph.settle.Seconds(), mark(ph.balanced))
	}

	b.WriteString("\nEach replica's share once the phase settled: ranges by the Leases; `tokenmint_shard_ranges_held`; `tokenmint_shard_accesstokens`; `tokenmint_cache_objects` (– where the manager does not export it); resident memory.\n\n")
	b.WriteString("| Phase | Replica | Ranges (Leases) | Ranges (metric) | AccessTokens in its ranges | Objects cached | RSS |\n|---|---|---|---|---|---|---|\n")
	for _, ph := range r.phases {
		for _, s := range ph.shares {
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s |\n", ph.name, s.name, s.leaseRanges, optional(s.metricRanges), optional(s.tokens), optional(s.cache), mib(s.rss))
		}
	}

	b.WriteString("\nThe endpoint over each step: calls answered, most in flight at once and most in any one second (all replicas together).\n\n")
	b.WriteString("| Step | Took | Calls | Most in flight | Most in a second |\n|---|---|---|---|---|\n")
	for _, s := range r.steps {
		fmt.Fprintf(&b, "| %s | %.1f s | %d | %d | %d |\n", s.name, s.took.Seconds(), s.calls, s.maxInFlight, s.maxPerSec)
	}

	b.WriteString("\nPeak resident memory of each process (scraped every 2 s):\n\n| Replica | Peak RSS |\n|---|---|\n")
	for _, s := range r.peakRSS {
		fmt.Fprintf(&b, "| %s | %s |\n", s.name, mib(s.rss))
	}
	return b.String()
}

func expiredList(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	return "; e.g. " + strings.Join(keys, ", ") + " (from the run's start)"
}

// neverWritten names up to five mints that never reached their Secret
// otherwise, with their time from the run's start, to look up in the
// replicas' logs.
func neverWritten(wasted []mint, start time.Time) string {
	if len(wasted) == 0 {
		return ""
	}
	var names []string
	for _, m := range wasted[:min(len(wasted), 5)] {
		names = append(names, fmt.Sprintf("%s at %s", m.subject, m.at.Sub(start).Round(time.Millisecond)))
	}
	return "; never written: " + strings.Join(names, ", ") + " (from the run's start)"
}

func countBalanced(phases []*shardsPhase) int {
	n := 0
	for _, ph := range phases {
		if ph.balanced {
			n++
		}
	}
	return n
}

func optional(v float64) string {
	if v < 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", v)
}
