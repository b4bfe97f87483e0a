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

import (
	"math/rand/v2"
	"testing"
)

// sums returns the concurrency and rate shares of replicas holding held
// ranges each, added up.
func sums(limit int, rate float64, burst int, held []int, total int) (int, float64, int) {
	var c, b int
	var r float64
	for _, h := range held {
		c += Share(limit, h, total)
		hr, hb := ShareRate(rate, burst, h, total)
		r += hr
		b += hb
	}
	return c, r, b
}

// TestSharesNeverExceedTheLimitForAnySplit tries every split of up to 16
// ranges over one to five replicas (some ranges possibly held by nobody, as
// between a release and the next take) with every limit up to 40.
func TestSharesNeverExceedTheLimitForAnySplit(t *testing.T) {
	splits := 0
	for total := 1; total <= 16; total++ {
		for replicas := 1; replicas <= 5; replicas++ {
			held := make([]int, replicas)
			var walk func(i, left int)
			walk = func(i, left int) {
				if i == replicas {
					splits++
					for limit := 1; limit <= 40; limit++ {
						c, r, b := sums(limit, float64(limit)/3, limit, held, total)
						if c > limit {
							t.Fatalf("limit %d, %d ranges split %v: shares add up to %d", limit, total, held, c)
						}
						if r > float64(limit)/3*(1+1e-9) {
							t.Fatalf("rate %v, %d ranges split %v: rates add up to %v", float64(limit)/3, total, held, r)
						}
						if limit >= total && b > limit {
							t.Fatalf("burst %d, %d ranges split %v: bursts add up to %d", limit, total, held, b)
						}
						for _, h := range held {
							if h > 0 && limit >= total && Share(limit, h, total) < 1 {
								t.Fatalf("limit %d >= %d ranges, but a replica holding %d gets nothing", limit, total, h)
							}
						}
					}
					return
				}
				for h := 0; h <= left; h++ {
					held[i] = h
					walk(i+1, left-h)
				}
			}
			walk(0, total)
		}
	}
	if splits < 10000 {
		t.Fatalf("only %d splits tried", splits)
	}
}

// TestSharesPropertyOverRandomSplits assigns each range of a random number
// of ranges to a random replica (or to none) many times over, with random
// limits, rates and bursts.
func TestSharesPropertyOverRandomSplits(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		total := 1 + rnd.IntN(256)
		replicas := 1 + rnd.IntN(12)
		limit := 1 + rnd.IntN(500)
		rate := rnd.Float64() * 1000
		burst := total + rnd.IntN(500)
		held := make([]int, replicas)
		for range total {
			if k := rnd.IntN(replicas + 1); k < replicas {
				held[k]++
			}
		}
		c, r, b := sums(limit, rate, burst, held, total)
		if c > limit || r > rate*(1+1e-9) || b > burst {
			t.Fatalf("limit %d rate %v burst %d, %d ranges split %v: shares add up to %d, %v, %d", limit, rate, burst, total, held, c, r, b)
		}
	}
}

// TestShareHandoverOrdering moves ranges one at a time between replicas in
// the order the coordinator does (the giver lowers its share and its calls
// before it releases; the taker raises its share only once it holds the
// range) and checks, at every step, that the calls the replicas may have in
// flight add up to at most the limit.
func TestShareHandoverOrdering(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	const total = 16
	for _, limit := range []int{16, 17, 20, 33, 100} {
		held := []int{total, 0, 0, 0}
		running := []int{Share(limit, total, total), 0, 0, 0}
		check := func(step string) {
			sum := 0
			for _, r := range running {
				sum += r
			}
			if sum > limit {
				t.Fatalf("limit %d, %s: %v ranges, %v calls in flight, %d in all", limit, step, held, running, sum)
			}
		}
		for range 2000 {
			from, to := rnd.IntN(len(held)), rnd.IntN(len(held))
			if from == to || held[from] == 0 {
				continue
			}
			// Draining: the giver starts nothing above the share of what it keeps,
			// and releases only once its calls fit in it.
			keep := Share(limit, held[from]-1, total)
			running[from] = min(running[from], keep)
			check("drained")
			held[from]--
			check("released")
			held[to]++
			check("taken")
			// The taker fills its raised share at once, and so does every other.
			for i := range held {
				running[i] = Share(limit, held[i], total)
			}
			check("filled")
		}
	}
}
