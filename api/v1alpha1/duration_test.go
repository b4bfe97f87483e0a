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
	"regexp"
	"strings"
	"testing"
	"time"
)

// A list holding one AccessToken whose duration cannot be parsed still
// decodes: the bad value is kept and reported, the others are untouched.
func TestDurationNeverFailsADecode(t *testing.T) {
	raw := `{"items":[
		{"metadata":{"name":"typo"},"spec":{"issuerRef":{"name":"i"},"secret":{"name":"s"},"maxAge":"30d","renewBefore":"-1m"}},
		{"metadata":{"name":"fine"},"spec":{"issuerRef":{"name":"i"},"secret":{"name":"s"},"maxAge":"1h30m"}},
		{"metadata":{"name":"number"},"spec":{"issuerRef":{"name":"i"},"secret":{"name":"s"},"maxAge":42}}]}`
	list := &AccessTokenList{}
	if err := json.Unmarshal([]byte(raw), list); err != nil {
		t.Fatalf("the list failed to decode: %v", err)
	}
	typo, fine, number := list.Items[0].Spec, list.Items[1].Spec, list.Items[2].Spec
	if typo.MaxAge.Invalid != "30d" || typo.MaxAge.Check("spec.maxAge") == nil || !strings.Contains(typo.MaxAge.Check("spec.maxAge").Error(), `"30d"`) {
		t.Errorf("maxAge 30d: %+v", typo.MaxAge)
	}
	if typo.RenewBefore.Invalid != "-1m" {
		t.Errorf("a negative renewBefore was taken: %+v", typo.RenewBefore)
	}
	if fine.MaxAge.Duration != 90*time.Minute || fine.MaxAge.Check("spec.maxAge") != nil {
		t.Errorf("maxAge 1h30m: %+v", fine.MaxAge)
	}
	if number.MaxAge.Invalid == "" {
		t.Errorf("a number was taken as a duration: %+v", number.MaxAge)
	}
	// Written back as it was read, so an update never rewrites a value.
	for _, d := range []*Duration{typo.MaxAge, fine.MaxAge} {
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := json.Unmarshal(out, &back); err != nil || back != *d {
			t.Errorf("round trip of %+v gave %+v (%v)", *d, back, err)
		}
	}
}

// The pattern the CRD carries admits nothing time.ParseDuration refuses (or
// reads as negative), and every usual way of writing a duration.
func TestDurationPatternMatchesParseDuration(t *testing.T) {
	re := regexp.MustCompile(DurationPattern)
	for _, s := range []string{"0s", "90s", "1h30m", "1.5h", "250ms", "10us", "10µs", "3ns", "1h0m0s"} {
		if !re.MatchString(s) {
			t.Errorf("%q is refused", s)
		}
	}
	for _, s := range []string{"30d", "1x", "", "-5m", "+5m", "5", "h", "1e3s", "1.h", "5m ", " 5m"} {
		d, err := time.ParseDuration(s)
		if re.MatchString(s) && (err != nil || d < 0) {
			t.Errorf("%q is admitted but the manager cannot use it", s)
		}
	}
}
