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

package controller

import (
	"hash/fnv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// reissueOffset is where in an issuer's reissueWindow the AccessToken
// namespace/name is re-issued after a change of the issuer's spec or
// credentials: fixed by its name, so that a restart does not move it, and
// spread evenly over the window across AccessTokens. It is whole seconds,
// as status stores them, and less than window (0 when window is under a
// second).
func reissueOffset(namespace, name string, window time.Duration) time.Duration {
	secs := uint64(window / time.Second)
	if secs == 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(namespace))
	_, _ = h.Write([]byte{'/'})
	_, _ = h.Write([]byte(name))
	return time.Duration(h.Sum64()%secs) * time.Second
}

// reissueAt is when the AccessToken's token is re-issued after its inputs
// changed, when the issuer spreads such re-issues (spec.reissueWindow) and the
// change may wait: it is the issuer's spec, a credential Secret or the bound
// namespace labels that changed, not the AccessToken (whose change is served
// at once), and the current token is valid. The time is status.reissueAfter
// once recorded (so that a restart neither forgets nor moves it), otherwise
// now plus the AccessToken's offset in the window; never later than the
// current token's normal renewal time, so that no token expires waiting for
// its slot. ok is false when the re-issue is not spread: it is due at once.
func reissueAt(in *inputs, now time.Time) (t time.Time, ok bool) {
	at, st := in.at, in.at.Status
	if in.spec == nil || in.spec.ReissueWindow == nil || in.spec.ReissueWindow.Duration <= 0 {
		return time.Time{}, false
	}
	if st.InputsHash == "" || st.InputsHash == in.inputsHash || in.movingFrom != "" ||
		at.Generation != st.ObservedGeneration {
		return time.Time{}, false
	}
	if st.IssuedAt == nil || st.FailedAttempts > 0 || tokenExpired(at, now) || !(in.secretMatches || in.stateMatches) {
		return time.Time{}, false
	}
	if st.ReissueAfter != nil {
		t = st.ReissueAfter.Time
	} else {
		t = now.Truncate(time.Second).Add(time.Second + reissueOffset(at.Namespace, at.Name, in.spec.ReissueWindow.Duration))
	}
	if rt := renewalTime(at, in.renewalFloor); rt != nil && rt.Before(&metav1.Time{Time: t}) {
		t = rt.Time
	}
	return t, true
}

// setReissueAfter records in status the pending spread re-issue, or clears it
// when none is pending.
func setReissueAfter(in *inputs, now time.Time) {
	t, ok := reissueAt(in, now)
	if !ok {
		in.at.Status.ReissueAfter = nil
		return
	}
	in.at.Status.ReissueAfter = &metav1.Time{Time: t}
}
