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

package plugin

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
)

// Moment is a point in time shown both ways: absolute (RFC 3339, UTC) and
// relative to when the command ran ("in 35m", "5m ago").
type Moment struct {
	Time     time.Time `json:"time"`
	Relative string    `json:"relative"`
}

// moment returns t as a Moment seen at now; nil for a zero or nil time.
func moment(t *time.Time, now time.Time) *Moment {
	if t == nil || t.IsZero() {
		return nil
	}
	return &Moment{Time: t.UTC(), Relative: relative(*t, now)}
}

// relative says how far t is from now, in kubectl's compact units.
func relative(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d > -time.Second && d < time.Second:
		return "now"
	case d > 0:
		return "in " + duration.HumanDuration(d)
	default:
		return duration.HumanDuration(-d) + " ago"
	}
}

// String is "2026-12-01T08:00:00Z (in 35m)", or "-" for nil.
func (m *Moment) String() string {
	if m == nil {
		return "-"
	}
	return m.Time.Format(time.RFC3339) + " (" + m.Relative + ")"
}

// table writes aligned columns.
type table struct {
	w *tabwriter.Writer
}

func newTable(out io.Writer, indent string, headers ...string) *table {
	t := &table{w: tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)}
	if len(headers) > 0 {
		t.row(indent, headers...)
	}
	return t
}

func (t *table) row(indent string, cells ...string) {
	for i, c := range cells {
		cells[i] = oneLine(c)
	}
	fmt.Fprintln(t.w, indent+strings.Join(cells, "\t"))
}

func (t *table) flush() { _ = t.w.Flush() }

// oneLine flattens control characters so that a message cannot break a table
// or the terminal.
func oneLine(s string) string {
	return strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return ' '
		}
		return c
	}, s)
}

// orDash is s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// byteCount is "1234 bytes" (or "1 byte").
func byteCount(n int) string {
	if n == 1 {
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}
