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

package sharding

// Share returns the part of limit that a replica holding held of total
// ranges may use: floor(limit × held / total). Ranges are held by one
// replica at a time, so the parts of all replicas add up to at most limit
// (the sum of floors is at most the floor of the sum) at every moment, as
// long as a replica lowers what it uses before it releases a range and
// raises it only after it has taken one. When limit is at least total,
// every replica that holds a range gets at least one.
func Share(limit, held, total int) int {
	if total <= 0 {
		return limit
	}
	held = min(max(held, 0), total)
	return int(int64(limit) * int64(held) / int64(total))
}

// ShareRate returns the part of a rate (events per second) and its burst
// that a replica holding held of total ranges may use: the rate in
// proportion, which adds up to at most rate over the replicas, and the
// burst in proportion rounded down but at least one while the replica holds
// a range (a token bucket with no burst refuses everything), so the bursts
// add up to at most burst when burst is at least total. Holding nothing is
// no rate and no burst.
func ShareRate(rate float64, burst, held, total int) (float64, int) {
	if total <= 0 {
		return rate, burst
	}
	held = min(max(held, 0), total)
	if held == 0 {
		return 0, 0
	}
	return rate * float64(held) / float64(total), max(1, Share(burst, held, total))
}
