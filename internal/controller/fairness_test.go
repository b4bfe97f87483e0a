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

	"k8s.io/apimachinery/pkg/types"
)

func TestFanOutPacesEachNamespaceAlone(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	f := newFanOut(10, 5)
	f.now = func() time.Time { return now }
	key := func(ns string, i int) types.NamespacedName {
		return types.NamespacedName{Namespace: ns, Name: fmt.Sprint("at-", i)}
	}

	// A churning namespace spends its burst, then its AccessTokens wait in turn.
	var last time.Duration
	for i := range 25 {
		d, queued := f.delay(key("hostile", i))
		if !queued {
			t.Fatalf("AccessToken %d was not queued", i)
		}
		if i < 5 && d != 0 {
			t.Errorf("AccessToken %d within the burst waits %s", i, d)
		}
		if i >= 5 && d <= last {
			t.Errorf("AccessToken %d waits %s, no longer than the one before (%s)", i, d, last)
		}
		last = d
	}
	if want := 2 * time.Second; last != want {
		t.Errorf("the 25th waits %s, want %s at 10/s after a burst of 5", last, want)
	}

	// Changing the object again does not charge those already waiting.
	for i := 5; i < 25; i++ {
		if _, queued := f.delay(key("hostile", i)); queued {
			t.Errorf("AccessToken %d, already waiting its turn, was queued and charged again", i)
		}
	}
	if d, _ := f.delay(key("hostile", 99)); d != last+100*time.Millisecond {
		t.Errorf("a new AccessToken waits %s, want just after the last (%s)", d, last)
	}

	// Another namespace is not held back.
	for i := range 5 {
		if d, queued := f.delay(key("honest", i)); !queued || d != 0 {
			t.Errorf("the honest namespace's AccessToken %d waits %s (queued %v)", i, d, queued)
		}
	}

	// Once due, an AccessToken is queued (and charged) again.
	now = now.Add(time.Minute)
	if d, queued := f.delay(key("hostile", 7)); !queued || d != 0 {
		t.Errorf("after the budget refilled: wait %s, queued %v", d, queued)
	}
}
