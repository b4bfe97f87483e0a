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

// Package sharding splits the namespaced work of several manager replicas
// into a fixed number of hash ranges of namespaces, each guarded by a
// coordination.k8s.io Lease held with leader election's guarantees, and
// balances the ranges over the live replicas (see docs/sharding.md).
package sharding

import (
	"hash/fnv"
	"slices"
)

// RangeOf returns the range of namespace among ranges: the 64-bit FNV-1a
// hash of its name modulo ranges. FNV-1a's low bits spread names that differ
// only at their end (team-1, team-2 ...) evenly; its high bits, which the API
// server's sharded list and watch compares (contiguous intervals of the hash),
// do not (see docs/sharding.md).
func RangeOf(namespace string, ranges int) int {
	if ranges <= 1 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(namespace))
	return int(h.Sum64() % uint64(ranges))
}

// Targets returns how many ranges each of members should hold: ranges
// divided as evenly as possible, the first members in sorted order taking
// one more, so that two members' counts differ by at most one and no member
// holds more than ceil(ranges/members). Every replica computes the same
// answer from the same members.
func Targets(members []string, ranges int) map[string]int {
	ids := slices.Clone(members)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make(map[string]int, len(ids))
	if len(ids) == 0 {
		return out
	}
	q, r := ranges/len(ids), ranges%len(ids)
	for i, id := range ids {
		out[id] = q
		if i < r {
			out[id]++
		}
	}
	return out
}
