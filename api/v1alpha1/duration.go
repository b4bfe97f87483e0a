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

package v1alpha1

import (
	"encoding/json"
	"fmt"
	"time"
)

// DurationPattern is the form every duration field accepts: one or more
// decimal numbers, each with a unit (ns, us, µs, ms, s, m, h), as Go's
// time.ParseDuration reads them, and never negative.
const DurationPattern = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`

// Duration is a length of time written as a Go duration string ("90s", "1h30m").
//
// It decodes like metav1.Duration, except that a string it cannot parse does
// not fail the decoding: it is kept in Invalid and reported on the object that
// holds it. The apiserver refuses such strings (every duration field carries
// DurationPattern), but an object stored before a validation existed must not
// stop the manager from listing every other object of its kind.
// +kubebuilder:validation:Type=string
// +kubebuilder:validation:MaxLength=64
// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
type Duration struct {
	time.Duration `json:"-"`
	// Invalid holds the text of a duration that could not be parsed.
	Invalid string `json:"-"`
}

// UnmarshalJSON reads a duration string; an unparsable one is kept in Invalid.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		d.Duration, d.Invalid = 0, string(b)
		if len(d.Invalid) > 64 {
			d.Invalid = d.Invalid[:64]
		}
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		d.Duration, d.Invalid = 0, s
		if len(d.Invalid) > 64 {
			d.Invalid = d.Invalid[:64]
		}
		return nil
	}
	d.Duration, d.Invalid = v, ""
	return nil
}

// MarshalJSON writes the duration as a string; an invalid one as it was read.
func (d Duration) MarshalJSON() ([]byte, error) {
	if d.Invalid != "" {
		return json.Marshal(d.Invalid)
	}
	return json.Marshal(d.Duration.String())
}

// ToUnstructured implements value.UnstructuredConverter.
func (d Duration) ToUnstructured() any {
	if d.Invalid != "" {
		return d.Invalid
	}
	return d.Duration.String()
}

// Check reports an unparsable duration, naming the field.
func (d *Duration) Check(field string) error {
	if d == nil || d.Invalid == "" {
		return nil
	}
	return fmt.Errorf("%s: %q is not a duration (write it as Go does: 90s, 15m, 1h30m; days are not a unit)", field, d.Invalid)
}
