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

package fakes

import (
	"net/http"
	"strconv"
	"time"
)

// OutcomeRateLimited counts calls a fake refused under a rate limit.
const OutcomeRateLimited Outcome = "rate_limited"

// GitHubLimit is a rate limit GitHub documents ("Rate limits for the REST API").
type GitHubLimit struct {
	// Secondary chooses a secondary limit: 403 (429 with Status429) with
	// Retry-After, the seconds until the end of the window. Otherwise it is
	// a primary limit: 403 (or 429) with x-ratelimit-remaining: 0 and
	// x-ratelimit-reset, the window's end in unix seconds.
	Secondary bool
	// Status429 answers 429 instead of 403.
	Status429 bool
	// Until is when the limit is lifted, on the fake's clock.
	Until time.Time
	// Window is the length of each secondary-limit window the fake announces
	// (Retry-After); the last window ends at Until. Default one minute.
	Window time.Duration
	// OmitRetryAfter leaves Retry-After out of a secondary limit: GitHub then
	// asks clients to wait at least a minute.
	OmitRetryAfter bool
}

// SetRateLimit makes the fake answer every call before l.Until as GitHub does
// under limit l (counted as OutcomeRateLimited); the zero GitHubLimit lifts it.
func (f *GitHubApps) SetRateLimit(l GitHubLimit) {
	f.limitMu.Lock()
	defer f.limitMu.Unlock()
	f.limit = l
}

// rateLimited returns the limit's answer while it holds.
func (f *GitHubApps) rateLimited() *reply {
	f.limitMu.Lock()
	l := f.limit
	f.limitMu.Unlock()
	now := f.now()
	if !now.Before(l.Until) {
		return nil
	}
	status := http.StatusForbidden
	if l.Status429 {
		status = http.StatusTooManyRequests
	}
	header := http.Header{}
	header.Set("x-ratelimit-limit", "5000")
	if !l.Secondary {
		rep := githubFailure(status, OutcomeRateLimited, "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.")
		header.Set("x-ratelimit-remaining", "0")
		header.Set("x-ratelimit-reset", strconv.FormatInt(l.Until.Unix(), 10))
		rep.header = header
		return &rep
	}
	rep := githubFailure(status, OutcomeRateLimited, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
	header.Set("x-ratelimit-remaining", "4999")
	if !l.OmitRetryAfter {
		window := l.Window
		if window <= 0 {
			window = time.Minute
		}
		wait := min(window, l.Until.Sub(now))
		header.Set("Retry-After", strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10))
	}
	rep.header = header
	return &rep
}
