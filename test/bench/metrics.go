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
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protodelim"
)

// protoAccept asks a Prometheus endpoint for the delimited protobuf format, the
// only one that carries native (sparse) histograms.
const protoAccept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"

// scrape is one read of a Prometheus endpoint.
type scrape map[string]*dto.MetricFamily

func fetchMetrics(ctx context.Context, c *http.Client, url string) (scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", protoAccept)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	r := bufio.NewReader(resp.Body)
	s := scrape{}
	for {
		mf := &dto.MetricFamily{}
		if err := (protodelim.UnmarshalOptions{MaxSize: -1}).UnmarshalFrom(r, mf); err != nil {
			if errors.Is(err, io.EOF) {
				return s, nil
			}
			return nil, fmt.Errorf("decoding metrics of %s: %w", url, err)
		}
		s[mf.GetName()] = mf
	}
}

func labelsOf(m *dto.Metric) map[string]string {
	l := make(map[string]string, len(m.GetLabel()))
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// sum adds the values of name's series whose labels match every pair of match.
func (s scrape) sum(name string, match ...string) float64 {
	total := 0.0
	for _, m := range s.series(name, match...) {
		total += value(m)
	}
	return total
}

func (s scrape) series(name string, match ...string) []*dto.Metric {
	mf := s[name]
	if mf == nil {
		return nil
	}
	var out []*dto.Metric
	for _, m := range mf.GetMetric() {
		l := labelsOf(m)
		ok := true
		for i := 0; i+1 < len(match); i += 2 {
			if l[match[i]] != match[i+1] {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// by sums name's series grouped by the values of the given labels.
func (s scrape) by(name string, keys []string, match ...string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range s.series(name, match...) {
		l := labelsOf(m)
		k := ""
		for i, key := range keys {
			if i > 0 {
				k += " "
			}
			k += l[key]
		}
		out[k] += value(m)
	}
	return out
}

// sparse is a native histogram as counts per bucket index at one schema.
type sparse struct {
	schema int32
	zero   float64 // count at or below the zero threshold
	counts map[int]float64
	// classic buckets (upper bound -> cumulative count), for a cross-check.
	classic map[float64]float64
	count   float64
	sum     float64
}

func (s scrape) histogram(name string, match ...string) (*sparse, error) {
	ms := s.series(name, match...)
	if len(ms) != 1 || ms[0].Histogram == nil {
		return nil, fmt.Errorf("%s%v: want one histogram, found %d series", name, match, len(ms))
	}
	h := ms[0].Histogram
	out := &sparse{schema: h.GetSchema(), zero: float64(h.GetZeroCount()), counts: map[int]float64{},
		classic: map[float64]float64{}, count: float64(h.GetSampleCount()), sum: h.GetSampleSum()}
	idx := 0
	var cur int64
	di := 0
	for _, span := range h.GetPositiveSpan() {
		idx += int(span.GetOffset())
		for range span.GetLength() {
			cur += h.GetPositiveDelta()[di]
			di++
			out.counts[idx] += float64(cur)
			idx++
		}
	}
	for _, b := range h.GetBucket() {
		out.classic[b.GetUpperBound()] = float64(b.GetCumulativeCount())
	}
	return out, nil
}

// reduce lowers h's resolution to schema.
func (h *sparse) reduce(schema int32) *sparse {
	if schema >= h.schema {
		return h
	}
	k := uint(h.schema - schema)
	out := &sparse{schema: schema, zero: h.zero, counts: map[int]float64{}, classic: h.classic, count: h.count, sum: h.sum}
	for i, c := range h.counts {
		out.counts[(i+(1<<k)-1)>>k] += c
	}
	return out
}

// minus returns the observations made between before and h.
func (h *sparse) minus(before *sparse) *sparse {
	if before == nil {
		return h
	}
	a, b := h, before
	if a.schema > b.schema {
		a = a.reduce(b.schema)
	} else if b.schema > a.schema {
		b = b.reduce(a.schema)
	}
	out := &sparse{schema: a.schema, zero: a.zero - b.zero, counts: map[int]float64{}, classic: map[float64]float64{},
		count: a.count - b.count, sum: a.sum - b.sum}
	for i, c := range a.counts {
		if d := c - b.counts[i]; d != 0 {
			out.counts[i] = d
		}
	}
	for ub, c := range a.classic {
		out.classic[ub] = c - b.classic[ub]
	}
	return out
}

// quantile estimates the q-quantile, interpolating exponentially inside a bucket.
func (h *sparse) quantile(q float64) float64 {
	total := h.zero
	for _, c := range h.counts {
		total += c
	}
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	if rank <= h.zero {
		return 0
	}
	idxs := make([]int, 0, len(h.counts))
	for i := range h.counts {
		idxs = append(idxs, i)
	}
	sort.Ints(idxs)
	base := math.Pow(2, math.Pow(2, -float64(h.schema)))
	cum := h.zero
	for _, i := range idxs {
		c := h.counts[i]
		if cum+c >= rank {
			lo, hi := math.Pow(base, float64(i-1)), math.Pow(base, float64(i))
			f := (rank - cum) / c
			return lo * math.Pow(hi/lo, f)
		}
		cum += c
	}
	return math.Pow(base, float64(idxs[len(idxs)-1]))
}

// bucketWidth is the relative width of one bucket, the estimate's resolution.
func (h *sparse) bucketWidth() float64 {
	return math.Pow(2, math.Pow(2, -float64(h.schema))) - 1
}

// fractionBelow is the share of observations at or below the classic bound ub.
func (h *sparse) fractionBelow(ub float64) float64 {
	if h.count <= 0 {
		return math.NaN()
	}
	return h.classic[ub] / h.count
}
