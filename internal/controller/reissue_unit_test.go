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
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

func TestReissueOffsetIsFixedAndSpread(t *testing.T) {
	const window = time.Hour
	const n = 1000
	buckets := make([]int, 10)
	for i := range n {
		name := fmt.Sprintf("token-%d", i)
		off := reissueOffset("team-a", name, window)
		if off < 0 || off >= window {
			t.Fatalf("offset %s of %s is outside [0, %s)", off, name, window)
		}
		if off%time.Second != 0 {
			t.Fatalf("offset %s of %s is not whole seconds", off, name)
		}
		if again := reissueOffset("team-a", name, window); again != off {
			t.Fatalf("offset of %s moved from %s to %s", name, off, again)
		}
		buckets[int(off*10/window)]++
	}
	// An even spread puts 100 in each tenth of the window.
	for i, c := range buckets {
		if c < 60 || c > 140 {
			t.Errorf("tenth %d of the window holds %d of %d offsets: %v", i, c, n, buckets)
		}
	}
	if reissueOffset("team-a", "x", window) == reissueOffset("team-b", "x", window) &&
		reissueOffset("team-a", "y", window) == reissueOffset("team-b", "y", window) {
		t.Error("the namespace does not move the offset")
	}
	if got := reissueOffset("team-a", "x", 500*time.Millisecond); got != 0 {
		t.Errorf("offset in a window under a second = %s, want 0", got)
	}
}

func TestReissueAt(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	window := &tokensv1alpha1.Duration{Duration: time.Hour}
	issued := now.Add(-10 * time.Minute)
	fresh := func() *inputs {
		at := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "api", Generation: 3}}
		at.Status.ObservedGeneration = 3
		at.Status.InputsHash = "old"
		at.Status.IssuedAt = &metav1.Time{Time: issued}
		at.Status.ExpiresAt = &metav1.Time{Time: issued.Add(24 * time.Hour)}
		return &inputs{at: at, spec: &tokensv1alpha1.IssuerSpec{ReissueWindow: window}, inputsHash: "new", secretMatches: true}
	}
	slot := now.Add(time.Second + reissueOffset("team-a", "api", time.Hour))

	in := fresh()
	got, ok := reissueAt(in, now)
	if !ok || !got.Equal(slot) {
		t.Fatalf("reissueAt = %s, %v; want the slot %s", got, ok, slot)
	}
	if d, fired := inputsChanged(in, now); fired {
		t.Fatalf("inputsChanged fired before the slot: %+v", d)
	}
	setReissueAfter(in, now) // what the reconcile writes to status
	if d, fired := inputsChanged(in, slot.Add(-time.Second)); fired {
		t.Fatalf("inputsChanged fired a second before the slot: %+v", d)
	}
	if d, fired := inputsChanged(in, slot); !fired || d.action != actionIssue {
		t.Fatalf("inputsChanged at the slot = %+v, %v; want an issue", d, fired)
	}

	// Recorded, the slot stays where it was whatever the clock says.
	in = fresh()
	setReissueAfter(in, now)
	if in.at.Status.ReissueAfter == nil || !in.at.Status.ReissueAfter.Equal(&metav1.Time{Time: slot}) {
		t.Fatalf("status.reissueAfter = %v, want %s", in.at.Status.ReissueAfter, slot)
	}
	if got, _ := reissueAt(in, now.Add(20*time.Minute)); !got.Equal(slot) {
		t.Errorf("after a restart 20m later reissueAt = %s, want the recorded %s", got, slot)
	}

	// A token whose renewal comes before its slot is renewed then.
	in = fresh()
	in.at.Status.ExpiresAt = &metav1.Time{Time: issued.Add(12 * time.Minute)}
	renew := renewalTime(in.at, 0).Time
	if !renew.Before(slot) {
		t.Fatalf("test setup: renewal %s is not before the slot %s", renew, slot)
	}
	if got, ok := reissueAt(in, now); !ok || !got.Equal(renew) {
		t.Errorf("reissueAt = %s, %v; want the renewal time %s", got, ok, renew)
	}

	cases := []struct {
		name   string
		change func(in *inputs)
	}{
		{"no window", func(in *inputs) { in.spec.ReissueWindow = nil }},
		{"a zero window", func(in *inputs) { in.spec = &tokensv1alpha1.IssuerSpec{ReissueWindow: &tokensv1alpha1.Duration{}} }},
		{"the AccessToken itself changed", func(in *inputs) { in.at.Generation = 4 }},
		{"the AccessToken moves to another issuer", func(in *inputs) { in.movingFrom = "TokenIssuer old" }},
		{"no token yet", func(in *inputs) { in.at.Status.IssuedAt = nil }},
		{"the token expired", func(in *inputs) { in.at.Status.ExpiresAt = &metav1.Time{Time: now.Add(-time.Second)} }},
		{"the last attempt failed", func(in *inputs) { in.at.Status.FailedAttempts = 1 }},
		{"the token is nowhere", func(in *inputs) { in.secretMatches = false }},
	}
	for _, c := range cases {
		t.Run(c.name+" re-issues at once", func(t *testing.T) {
			in := fresh()
			c.change(in)
			if _, ok := reissueAt(in, now); ok {
				t.Error("the re-issue is spread")
			}
			if d, fired := inputsChanged(in, now); !fired || d.action != actionIssue {
				t.Errorf("inputsChanged = %+v, %v; want an issue now", d, fired)
			}
			setReissueAfter(in, now)
			if in.at.Status.ReissueAfter != nil {
				t.Errorf("status.reissueAfter = %s, want none", in.at.Status.ReissueAfter)
			}
		})
	}

	// Nothing pending once the token carries the new inputs.
	in = fresh()
	in.at.Status.ReissueAfter = &metav1.Time{Time: slot}
	in.at.Status.InputsHash = "new"
	setReissueAfter(in, now)
	if in.at.Status.ReissueAfter != nil {
		t.Errorf("status.reissueAfter = %s after the re-issue, want none", in.at.Status.ReissueAfter)
	}
}
