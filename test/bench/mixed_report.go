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

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// admission is whether the apiserver took one object it should refuse.
type admission struct {
	what     string
	admitted bool
	reason   string // why it was refused
}

func (a admission) verdict() string {
	if a.admitted {
		return "**admitted**"
	}
	return "refused (" + a.reason + ")"
}

// mixedResults is what a mixed run measured.
type mixedResults struct {
	mo                    mixedOptions
	command, revision     string
	machine               machine
	started, finished     time.Time
	loadBefore, loadAfter string
	defaults, settings    map[string]string
	managerArgs           []string
	managerEnv            []string
	logDir                string

	honestCreate time.Duration
	readyCount   int
	firstIssue   time.Duration // until all were Ready, or until the wait ended

	windowStart, windowEnd time.Time
	inSecret, atEndpoint   renewalSummary
	honestIssuedInWindow   int
	honestCalls            int64
	honestCallsInWindow    int64
	callsAtWindowStart     int64
	notReadyEver           int
	notReadyAfter          int
	notReadyReasons        string
	wrongSecret            int
	unknownTokens          int

	hangTimeout                           string
	hangRefused                           []string
	hangCalls, hangConns, hangMaxInFlight int64
	bigBody                               int
	bigCalls, bigAnswered                 int64
	spamCalls, spamPatches, spamErrors    int64
	spamFirstErr                          string
	spamFor                               time.Duration
	undecodable                           []admission

	rssMedian, rssPeak, hwm float64
	rssSamples              int
	chartLimit              string
	chartLimitBytes         float64
	managerExited           string

	readyExpired        int           // honest AccessTokens seen Ready=True past their expiry
	readyExpiredLongest time.Duration // the longest such
	cost                costResults
}

func (r *mixedResults) window() time.Duration { return r.windowEnd.Sub(r.windowStart) }

func renewalResult(s renewalSummary) string {
	out := fmt.Sprintf("%d of %d (%.1f%%)", s.onTime, s.due, s.percent())
	if s.late > 0 || s.missing > 0 {
		out += fmt.Sprintf("; late %d, never renewed %d", s.late, s.missing)
	}
	if n := len(s.neverIssued); n > 0 {
		out += fmt.Sprintf("; %d AccessTokens never had a token", n)
	}
	return out
}

func leadResult(s renewalSummary) string {
	if s.renewed == 0 {
		return "n/a (no renewal happened)"
	}
	return fmt.Sprintf("%.2f s (%s; median %.1f s)", s.minLead.Seconds(), s.minLeadKey, s.medianLead.Seconds())
}

func (r *mixedResults) checks() []check {
	var c []check
	add := func(item, measure, target, result, met string) {
		c = append(c, check{item, measure, target, result, met})
	}
	n := r.mo.honest
	if r.readyCount >= n && n > 0 {
		add("honest", fmt.Sprintf("Time to first issue all %d honest tokens (first create to last first Ready), hostile tenant already active", n), "",
			fmt.Sprintf("%.1f s (%.0f tokens/s; created in %.1f s)", r.firstIssue.Seconds(), float64(n)/r.firstIssue.Seconds(), r.honestCreate.Seconds()), "")
	} else {
		add("honest", fmt.Sprintf("Time to first issue all %d honest tokens, hostile tenant already active", n), "",
			fmt.Sprintf("**not reached**: %d of %d Ready after %s", r.readyCount, n, r.firstIssue.Round(time.Second)), "**no**")
	}
	if r.windowStart.IsZero() {
		return c
	}
	w := r.window().Round(time.Second)
	add("honest", fmt.Sprintf("Honest renewals on time over the %s window: the new token in the Secret (seen by a watch) before the previous token's expiry (endpoint's clock)", w),
		"100%", renewalResult(r.inSecret), mark(r.inSecret.perfect()))
	add("honest", "Smallest lead: previous token's expiry − new token seen in the Secret (negative: late)", "> 0", leadResult(r.inSecret),
		mark(r.inSecret.renewed > 0 && r.inSecret.minLead > 0))
	add("honest", "Honest renewals on time by the endpoint's issue log: the new token issued before the previous one expired", "100%",
		renewalResult(r.atEndpoint), mark(r.atEndpoint.perfect()))
	add("honest", "Smallest lead by the endpoint's log: previous token's expiry − new token issued", "> 0", leadResult(r.atEndpoint),
		mark(r.atEndpoint.renewed > 0 && r.atEndpoint.minLead > 0))
	notReady := fmt.Sprintf("%d (%d after first Ready", r.notReadyEver, r.notReadyAfter)
	if r.notReadyReasons != "" {
		notReady += ": " + r.notReadyReasons
	}
	notReady += ")"
	add("honest", "Honest AccessTokens ever Ready=False", "0", notReady, mark(r.notReadyEver == 0))
	expected := float64(n) * r.window().Seconds() / (r.mo.lifetime.Seconds() * 2 / 3)
	add("honest", fmt.Sprintf("Honest endpoint calls in the window (tokens issued; at renewal at ⅔ of the %s lifetime about %.0f); in all", r.mo.lifetime, expected), "",
		fmt.Sprintf("%d (%d); %d", r.honestCallsInWindow, r.honestIssuedInWindow, r.honestCalls), "")
	if r.wrongSecret > 0 || r.unknownTokens > 0 {
		add("honest", "Honest Secrets holding another AccessToken's token / a token the honest endpoint never issued", "0 / 0",
			fmt.Sprintf("%d / %d", r.wrongSecret, r.unknownTokens), mark(false))
	}

	if r.mo.hanging > 0 {
		t := r.hangTimeout
		if len(r.hangRefused) > 0 {
			t += " (" + strings.Join(r.hangRefused, ", ") + " refused)"
		}
		add("hostile a", fmt.Sprintf("Endpoint that never answers, %d AccessTokens, timeout %s: calls received (connections; most held open at once)", r.mo.hanging, t), "",
			fmt.Sprintf("%d (%d; %d)", r.hangCalls, r.hangConns, r.hangMaxInFlight), "")
	}
	if r.mo.big > 0 {
		add("hostile b", fmt.Sprintf("Endpoint of %d-byte tokens (%d-byte answers), %d AccessTokens: calls received (answered)", r.mo.bigBytes, r.bigBody, r.mo.big), "",
			fmt.Sprintf("%d (%d)", r.bigCalls, r.bigAnswered), "")
	}
	if r.mo.spam > 0 {
		rate := 0.0
		if r.spamFor > 0 {
			rate = float64(r.spamPatches) / r.spamFor.Seconds()
		}
		res := fmt.Sprintf("%d patches (%.0f/s over %s, %d refused), %d calls", r.spamPatches, rate, r.spamFor.Round(time.Second), r.spamErrors, r.spamCalls)
		if r.spamFirstErr != "" {
			res += "; first refusal: " + r.spamFirstErr
		}
		add("hostile c", fmt.Sprintf("%s rewritten in a loop on %d AccessTokens of a fast issuer: annotation patches; calls its endpoint received", tokensv1alpha1.AnnotationRenew, r.mo.spam), "",
			res, "")
	}
	if len(r.undecodable) > 0 {
		admitted := 0
		var parts []string
		for _, a := range r.undecodable {
			if a.admitted {
				admitted++
			}
			v := "refused"
			if a.admitted {
				v = "**admitted**"
			}
			parts = append(parts, a.what+": "+v)
		}
		add("hostile d", "Undecodable objects admitted by the apiserver", "0", fmt.Sprintf("%d of %d (%s)", admitted, len(r.undecodable), strings.Join(parts, "; ")), mark(admitted == 0))
	}

	add("honest", "Honest AccessTokens seen Ready=True while the expiry their status names had passed (checked each second; longest)", "0",
		fmt.Sprintf("%d (%s)", r.readyExpired, r.readyExpiredLongest.Round(time.Second)), mark(r.readyExpired == 0))
	r.costChecks(add)

	limit := "chart limit " + r.chartLimit
	if r.chartLimit == "" {
		limit = "chart limit unknown"
	}
	if r.rssSamples > 0 {
		add("manager", fmt.Sprintf("Manager resident memory over the window (VmRSS each second, %d samples): median; peak", r.rssSamples),
			"≤ "+limit, fmt.Sprintf("%s; %s", mib(r.rssMedian), mib(r.rssPeak)), mark(r.chartLimitBytes > 0 && r.rssPeak <= r.chartLimitBytes))
	}
	if peak := max(r.hwm, r.rssPeak); peak > 0 {
		add("manager", "Manager peak resident memory over the whole run (VmHWM at the end, or the window's peak if higher)", "≤ "+limit, mib(peak),
			mark(r.chartLimitBytes > 0 && peak <= r.chartLimitBytes))
	}
	restarts := "0"
	if r.cost.restarted {
		restarts += " (and 1 by the benchmark, before the honest tenant)"
	}
	if r.managerExited != "" {
		restarts = "**" + r.managerExited + "**"
	}
	add("manager", "Manager restarts or exits not asked for", "0", restarts, mark(r.managerExited == ""))
	return c
}

func (r *mixedResults) flagSummary() string {
	keys := []string{"max-concurrent-reconciles", "kube-api-qps", "kube-api-burst", "event-qps", "event-burst", "issuer-rate-limit", "issuer-burst"}
	var parts []string
	for _, k := range keys {
		v, ok := r.settings[k]
		if !ok {
			continue
		}
		s := fmt.Sprintf("--%s=%s", k, v)
		if d, ok := r.defaults[k]; ok && d != v {
			s += fmt.Sprintf(" (default %s)", d)
		}
		parts = append(parts, s)
	}
	parts = append(parts, "run with "+strings.Join(r.managerArgs, " "))
	if len(r.managerEnv) > 0 {
		parts = append(parts, "environment "+strings.Join(r.managerEnv, " "))
	}
	return strings.Join(parts, " ")
}

// markdown renders the results as a Markdown section.
func (r *mixedResults) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### tokenmint mixed tenants: %d honest AccessTokens beside a hostile tenant\n\n", r.mo.honest)
	fmt.Fprintf(&b, "- Command: `%s`\n", r.command)
	fmt.Fprintf(&b, "- Machine: %s\n", r.machine.summary())
	fmt.Fprintf(&b, "- Load average (1, 5, 15 min) before: %s; after: %s. The control plane, the manager, the endpoints and the benchmark share these CPUs.\n", r.loadBefore, r.loadAfter)
	fmt.Fprintf(&b, "- Manager: the real binary built from %s, %s; %s\n", r.revision, r.flagSummary(), r.started.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- Honest tenant (namespace `%s`): one TokenIssuer whose endpoint answers every call after %s with a fresh token of %s (expires_in); %d AccessTokens. "+
		"The window starts once all are first Ready (or after %s) and lasts %s.\n", honestNamespace, r.mo.delay, r.mo.lifetime, r.mo.honest, r.mo.readyTimeout, r.mo.duration)
	fmt.Fprintf(&b, "- Hostile tenant (namespace `%s`, user `%s` with rights on tokenmint's kinds and Secrets in its own namespaces only, no client rate limit): "+
		"(a) %d AccessTokens on an endpoint that accepts the call and never answers; (b) %d on an endpoint of %d-byte tokens; "+
		"(c) %d on a fast issuer of its own, their renew annotation rewritten in a loop for the whole run; (d) undecodable objects attempted.\n",
		hostileNamespace, hostileUser, r.mo.hanging, r.mo.big, r.mo.bigBytes, r.mo.spam)
	b.WriteString(r.costSummary())
	b.WriteString("| Tenant | Measure | Target | Result | Met |\n|---|---|---|---|---|\n")
	for _, c := range r.checks() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.item, c.measure, c.target, c.result, c.met)
	}
	return b.String()
}
