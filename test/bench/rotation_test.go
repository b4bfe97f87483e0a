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
	"slices"
	"testing"
	"time"
)

func TestRotationCounts(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	// Three calls within 999 ms, then one a second after the first.
	stamps := []time.Time{at(1000), at(0), at(999), at(500), at(61000), at(62500)}
	if got := maxInAnySecond(stamps); got != 3 {
		t.Errorf("maxInAnySecond = %d, want 3", got)
	}
	if got := maxInAnySecond(nil); got != 0 {
		t.Errorf("maxInAnySecond(nil) = %d, want 0", got)
	}
	if got, want := callsPerMinute(stamps, start), []int{4, 2}; !slices.Equal(got, want) {
		t.Errorf("callsPerMinute = %v, want %v", got, want)
	}
}
