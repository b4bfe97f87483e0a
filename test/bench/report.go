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
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// results is everything a run measured.
type results struct {
	n                     int
	machine               machine
	command               string
	revision              string
	started, finished     time.Time
	loadBefore, loadAfter string
	defaults, settings    map[string]string
	managerArgs           []string
	managerEnv            []string
	workers               int

	loops                  []*loopResult
	floorCreate, floorTime time.Duration
	floorTimes             []time.Duration // every floor run in order: before the operator, then after each of its rounds
	issueTimes             []time.Duration // the operator's rounds
	floorCalls             int64
	floorAPICPU            float64
	floorEtcdCPU           float64

	issueCreate, issueTime time.Duration
	issue                  *costs
	issuePeakRSS           float64

	spread *spread

	statusOnly   *costs
	statusWrites int
	poke         *costs

	stopTime, restartTime time.Duration
	restart               *costs
	failover              *leaderFailover

	mem, noiseMem settled
	noise         bool
}

// roundRatio is the i-th operator round's time over the mean of the floor runs
// just before and just after it, so that a drift of the machine's speed over
// the minutes of a run weighs on both sides.
func (r *results) roundRatio(i int) float64 {
	if i+1 >= len(r.floorTimes) {
		return r.issueTimes[i].Seconds() / r.floorTimes[len(r.floorTimes)-1].Seconds()
	}
	return r.issueTimes[i].Seconds() / ((r.floorTimes[i] + r.floorTimes[i+1]) / 2).Seconds()
}

// roundRatios lists every round's ratio.
func (r *results) roundRatios() string {
	var v []string
	for i := range r.issueTimes {
		v = append(v, fmt.Sprintf("%.2f", r.roundRatio(i)))
	}
	return strings.Join(v, ", ")
}

// ratio is the operator's time over the floor's: the median of the rounds'.
func (r *results) ratio() float64 {
	if len(r.issueTimes) == 0 {
		return r.issueTime.Seconds() / r.floorTime.Seconds()
	}
	var v []float64
	for i := range r.issueTimes {
		v = append(v, r.roundRatio(i))
	}
	return median(v)
}

// floor is the median floor run, for comparing the other loops with.
func (r *results) floor() time.Duration {
	if len(r.floorTimes) == 0 {
		return r.floorTime
	}
	var v []float64
	for _, d := range r.floorTimes {
		v = append(v, d.Seconds())
	}
	return time.Duration(median(v) * float64(time.Second))
}

func seconds(ds []time.Duration) string {
	var v []string
	for _, d := range ds {
		v = append(v, fmt.Sprintf("%.1f", d.Seconds()))
	}
	return strings.Join(v, ", ") + " s"
}

func (r *results) writesPerToken() float64 { return r.issue.writes / float64(r.n) }

// writesAt returns the writes the apiserver counted in c (less the
// benchmark's own) to events, and to everything else.
func writesAt(c *costs) (objects, events float64) {
	for k, v := range c.byResource {
		f := strings.Fields(k)
		if len(f) < 2 || !isWrite(f[0]) {
			continue
		}
		if f[1] == "events" {
			events += v
		} else {
			objects += v
		}
	}
	return objects, events
}

func mark(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// check is one row of the table.
type check struct {
	item, measure, target, result, met string
}

func (r *results) checks() []check {
	n := float64(r.n)
	var c []check
	add := func(item, measure, target, result, met string) {
		c = append(c, check{item, measure, target, result, met})
	}
	rate := func(d time.Duration) string {
		return fmt.Sprintf("%.1f s (%.0f tokens/s)", d.Seconds(), n/d.Seconds())
	}
	if r.issue != nil {
		add("1", "Issue: create N AccessTokens, time until all Ready (operator, last round; the costs below are its)", "", rate(r.issueTime), "")
		if len(r.floorTimes) == 0 {
			add("1", "Floor", "", "not timed (-floor=false)", "")
		} else {
			if len(r.issueTimes) > 1 || len(r.floorTimes) > 1 {
				add("1", "Issue, every round (operator runs between floor runs)", "", "operator "+seconds(r.issueTimes)+"; floor "+seconds(r.floorTimes), "")
			}
			add("1", fmt.Sprintf("Floor: the same N through endpoint call + Secret create + status write, %d workers, no client rate limit", r.workers), "",
				rate(r.floor())+" (median run)", "")
			add("1", "Operator / floor (each round against the mean of the floor runs either side; the median round)", "≤ 1.3 at N=10,000",
				fmt.Sprintf("%.2f (rounds: %s)", r.ratio(), r.roundRatios()), mark(r.ratio() <= 1.3))
		}
		add("2", "Endpoint calls while issuing", fmt.Sprintf("= N (%d)", r.n), fmt.Sprintf("%.0f", r.issue.calls), mark(r.issue.calls == n))
		objects, events := writesAt(r.issue)
		add("2", "Kubernetes API writes per issued token but events (apiserver, less the benchmark's own)", "≤ 2", fmt.Sprintf("%.2f", objects/n), mark(math.Round(objects/n*100) <= 200))
		add("2", "Events per issued token (apiserver; a client and budget of their own, --event-qps)", "", fmt.Sprintf("%.2f", events/n), "")
		add("2", "Kubernetes API writes per issued token (manager's clients, events included)", "", fmt.Sprintf("%.2f (%s)", r.writesPerToken(), r.writeBreakdown()), "")
		add("2", "Kubernetes API reads per issued token (manager's client)", "", fmt.Sprintf("%.2f (%s)", r.issue.reads/n, r.readBreakdown()), "")
		add("2", "Reconciles per issued token", "", fmt.Sprintf("%.2f", r.issue.reconciles/n), "")
		add("2", "CPU per 1,000 issued tokens: manager; control plane, of it etcd (last operator round vs the mean of the floor runs either side)", "",
			fmt.Sprintf("%.2f s; %.1f s vs %.1f s, etcd %.1f s vs %.1f s", r.issue.cpu/n*1000, r.issue.apiCPU/n*1000, r.floorAPICPU/n*1000,
				r.issue.etcdCPU/n*1000, r.floorEtcdCPU/n*1000), "")
		if h := r.issue.hist; h != nil {
			add("2", "Reconcile time while issuing: median, p90, mean", "", fmt.Sprintf("%s, %s, %s", fmtSeconds(h.quantile(0.5)), fmtSeconds(h.quantile(0.9)), fmtSeconds(h.sum/h.count)), "")
		}
		if r.issue.endpointCount > 0 {
			add("2", "Endpoint call time, mean (tokenmint_issuer_request_duration_seconds)", "", fmtSeconds(r.issue.endpointSum/r.issue.endpointCount), "")
		}
	}
	if r.restart != nil {
		add("3", "Restart: process start until every AccessToken reconciled and the queue empty", "≤ 60 s", fmt.Sprintf("%.1f s", r.restartTime.Seconds()), mark(r.restartTime <= time.Minute && r.restart.reconciles >= n))
		add("3", "Restart: endpoint calls / API writes", "0 / 0", fmt.Sprintf("%.0f / %.0f%s", r.restart.calls, r.restart.writes, writesNamed(r.restart)), mark(r.restart.calls == 0 && r.restart.writes == 0))
		add("3", "Restart: API reads (lists, watches, gets)", "", fmt.Sprintf("%.0f", r.restart.reads), "")
	}
	if f := r.failover; f != nil && f.allRenewed > 0 {
		warm := "not full 5 min after its start"
		if f.warm {
			warm = fmt.Sprintf("full %.1f s after its start", f.warmAfter.Seconds())
		}
		add("3", "Failover (--leader-elect, a standby beside the leader): the standby's cache before the SIGKILL", "", warm, "")
		add("3", fmt.Sprintf("Failover: from the leader's SIGKILL until the standby leads; its first endpoint call; all %d renewals asked at the SIGKILL in their Secrets", f.renewals),
			"all ≤ 45 s (lease duration + 30 s)", fmt.Sprintf("%.1f s; %.1f s; %.1f s", f.leader.Seconds(), f.firstCall.Seconds(), f.allRenewed.Seconds()), mark(f.allRenewed <= 45*time.Second))
		add("3", "Failover: endpoint calls meanwhile", fmt.Sprintf("%d", f.renewals), fmt.Sprintf("%d", f.callsMeanwhile), mark(f.callsMeanwhile == int64(f.renewals)))
	}
	if m := r.mem; m.rss > 0 {
		add("4", fmt.Sprintf("Resident memory after settling (VmRSS, metrics scraped every %s): median; highest over one scrape interval", scrapeInterval),
			"≤ 128 MiB at N=10,000", fmt.Sprintf("%s; %s", mib(m.rss), mib(m.rssMax)), mark(m.rssMax <= 128<<20))
		add("4", "Of it, pages mapped from files (RssFile: the binary)", "", mib(m.file), "")
		add("4", "Go heap after settling: allocated (go_memstats_heap_alloc_bytes); in use; held from the OS (sys − released)", "",
			fmt.Sprintf("%s; %s; %s", mib(m.heap), mib(m.heapInuse), mib(m.heapHeld)), "")
		add("4", "Metric series the manager exports (of which tokenmint_*)", "", fmt.Sprintf("%d (%d)", m.series, m.tokenmintSeries), "")
		if r.issuePeakRSS > 0 {
			add("4", "Peak resident memory while issuing (VmHWM)", "", mib(r.issuePeakRSS), "")
		}
		if r.noise {
			nm := r.noiseMem
			g := pct(nm.rss, m.rss)
			add("4", "Growth after 1,000 unrelated 100 KiB Secrets: RSS (median)", "< 10%", fmt.Sprintf("%s → %s (%+.1f%%)", mib(m.rss), mib(nm.rss), g), mark(g < 10))
			add("4", "Growth after 1,000 unrelated 100 KiB Secrets: Go heap", "", fmt.Sprintf("%s → %s (%+.1f%%)", mib(m.heap), mib(nm.heap), pct(nm.heap, m.heap)), "")
		}
	}
	if sp := r.spread; sp != nil {
		add("5", fmt.Sprintf("Renewal spread of %d tokens (renewal − issue, %s lifetime)", sp.sample, sp.lifetime.Round(time.Second)), "≥ 10% of the lifetime",
			fmt.Sprintf("%.1f%% (%s … %s after issue)", sp.widthFraction*100, sp.minOffset.Round(time.Second), sp.maxOffset.Round(time.Second)), mark(sp.widthFraction >= 0.10))
		add("5", "Busiest minute / mean minute", "≤ 2", fmt.Sprintf("%.2f (%d in the busiest of %d minutes)", sp.peakOverMean, sp.peak, sp.minutes), mark(sp.peakOverMean <= 2))
		add("5", "Most renewals due in one wall-clock second (all tokens)", "", fmt.Sprintf("%d (issued over %s)", sp.maxPerSecond, sp.issueWindow.Round(time.Second)), "")
	}
	if r.poke != nil && r.poke.hist != nil {
		q := r.poke.hist.quantile(0.5)
		add("6", fmt.Sprintf("No-op reconcile median (%.0f reconciles after an unrelated annotation change; p90 %s)", r.poke.reconciles, fmtSeconds(r.poke.hist.quantile(0.9))),
			"< 1 ms", fmt.Sprintf("%s (±%.0f%%)", fmtSeconds(q), r.poke.hist.bucketWidth()*100), mark(q < 1e-3))
		add("6", "No-op reconciles: API writes / endpoint calls", "0 / 0", fmt.Sprintf("%.0f / %.0f", r.poke.writes, r.poke.calls), mark(r.poke.writes == 0 && r.poke.calls == 0))
	}
	if r.restart != nil && r.restart.hist != nil {
		add("6", fmt.Sprintf("No-op reconcile median, all N at once after the restart (p90 %s)", fmtSeconds(r.restart.hist.quantile(0.9))),
			"", fmt.Sprintf("%s (±%.0f%%)", fmtSeconds(r.restart.hist.quantile(0.5)), r.restart.hist.bucketWidth()*100), "")
	}
	if r.statusOnly != nil {
		add("6", fmt.Sprintf("Reconciles caused by %d status-only writes", r.statusWrites), "0", fmt.Sprintf("%.0f", r.statusOnly.reconciles), mark(r.statusOnly.reconciles == 0))
	}
	return c
}

func perToken(m map[string]float64, n int, keep func(string) bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if keep(k) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, m[k]/float64(n)))
	}
	return strings.Join(parts, ", ")
}

func (r *results) writeBreakdown() string {
	return perToken(r.issue.byMethod, r.n, isWrite)
}

func (r *results) readBreakdown() string {
	return perToken(r.issue.byMethod, r.n, func(k string) bool { return !isWrite(k) })
}

func cpuSum(n int, api, mgr, bench float64) string {
	k := 1000 / float64(n)
	return fmt.Sprintf("%.1f + %.1f + %.1f = %.1f", api*k, mgr*k, bench*k, (api+mgr+bench)*k)
}

// markdown renders the results as a Markdown section.
func (r *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### tokenmint benchmark, N = %d\n\n", r.n)
	fmt.Fprintf(&b, "- Command: `%s`\n", r.command)
	fmt.Fprintf(&b, "- Machine: %s\n", r.machine.summary())
	fmt.Fprintf(&b, "- Load average (1, 5, 15 min) before: %s; after: %s. The control plane, the manager, the token endpoint and the benchmark share these CPUs.\n", r.loadBefore, r.loadAfter)
	fmt.Fprintf(&b, "- Manager: the real binary built from %s, %s; %s\n", r.revision, r.flagSummary(), r.started.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- Floor: %d workers (the manager's --max-concurrent-reconciles), client without rate limit: the floor is the apiserver's and the endpoint's capacity, and the client limits are knobs under test.\n\n", r.workers)
	b.WriteString("| # | Measure | Target | Result | Met |\n|---|---|---|---|---|\n")
	for _, c := range r.checks() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.item, c.measure, c.target, c.result, c.met)
	}
	if len(r.loops) > 1 && r.issue == nil {
		b.WriteString("\nPlain loops only (same workers, no client rate limit; fastest of the runs, the slowest in brackets):\n\n")
		b.WriteString("| Run | Requests per token | Time | Tokens/s | × floor | CPU s per 1,000 tokens: control plane + benchmark |\n|---|---|---|---|---|---|\n")
		for _, l := range r.loops {
			fmt.Fprintf(&b, "| %s | %s | %.1f s (%.1f s) | %.0f | %.2f | %.1f + %.1f |\n", l.loop, perToken(l.own, r.n, func(k string) bool { return k != "POST accesstokens" }),
				l.elapsed.Seconds(), l.slowest.Seconds(), float64(r.n)/l.elapsed.Seconds(), l.elapsed.Seconds()/r.floorTime.Seconds(),
				l.apiCPU/float64(r.n)*1000, l.benchCPU/float64(r.n)*1000)
		}
	}
	if len(r.loops) > 1 && r.issue != nil {
		b.WriteString("\nThe same N through plain loops (same workers, no client rate limit, manager stopped; fastest of the runs, the slowest in brackets), beside the operator:\n\n")
		b.WriteString("| Run | Requests per token | Time | Tokens/s | × floor | CPU s per 1,000 tokens: control plane + manager + benchmark = total |\n|---|---|---|---|---|---|\n")
		for _, l := range r.loops {
			slow := ""
			if l.runs > 1 {
				slow = fmt.Sprintf(" (%.1f s)", l.slowest.Seconds())
			}
			fmt.Fprintf(&b, "| %s | %s | %.1f s%s | %.0f | %.2f | %s |\n", l.loop, perToken(l.own, r.n, func(k string) bool { return k != "POST accesstokens" }),
				l.elapsed.Seconds(), slow, float64(r.n)/l.elapsed.Seconds(), l.elapsed.Seconds()/r.floor().Seconds(), cpuSum(r.n, l.apiCPU, 0, l.benchCPU))
		}
		fmt.Fprintf(&b, "| operator | %s | %.1f s | %.0f | %.2f | %s |\n", perToken(r.issue.byResource, r.n, func(k string) bool {
			return r.issue.byResource[k]/float64(r.n) >= 0.05
		}), r.issueTime.Seconds(), float64(r.n)/r.issueTime.Seconds(), r.ratio(), cpuSum(r.n, r.issue.apiCPU, r.issue.cpu, r.issue.benchCPU))
		b.WriteString("\nfloor: the unavoidable work (Secret created, status patched). sequence: the manager's own requests for a first issue, in its order " +
			"(the Secret read live, applied, the status patched). f38efc0-sequence: the requests of the manager at f38efc0 (5 reads, an event). apply: sequence without the read.\n")
	}
	if r.issue != nil && len(r.issue.byResource) > 0 {
		b.WriteString("\nRequests per issued token at the apiserver (apiserver_request_total, less the benchmark's own requests), by verb and resource:\n\n")
		b.WriteString("| Verb and resource | Per token |\n|---|---|\n")
		keys := make([]string, 0, len(r.issue.byResource))
		for k := range r.issue.byResource {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if v := r.issue.byResource[k] / float64(r.n); math.Abs(v) >= 0.005 {
				fmt.Fprintf(&b, "| %s | %.2f |\n", k, v)
			}
		}
	}
	return b.String()
}

func (r *results) flagSummary() string {
	keys := []string{"max-concurrent-reconciles", "kube-api-qps", "kube-api-burst", "event-qps", "event-burst", "issuer-rate-limit", "issuer-burst"}
	var parts []string
	for _, k := range keys {
		v := r.settings[k]
		s := fmt.Sprintf("--%s=%s", k, v)
		if d, ok := r.defaults[k]; ok && d != v {
			s += fmt.Sprintf(" (default %s)", d)
		}
		parts = append(parts, s)
	}
	if len(r.managerEnv) > 0 {
		parts = append(parts, "environment "+strings.Join(r.managerEnv, " "))
	}
	return strings.Join(parts, " ")
}

// writesNamed lists the writes the apiserver counted in c by verb and
// resource, as " (PATCH secrets 1)", or "" when there were none. Leases are
// left out: the API server renews its own every ten seconds.
func writesNamed(c *costs) string {
	var parts []string
	for k, v := range c.byResource {
		if f := strings.Fields(k); len(f) >= 2 && isWrite(f[0]) && f[1] != "leases" && v >= 1 {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, v))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	slices.Sort(parts)
	return " (" + strings.Join(parts, ", ") + ")"
}
