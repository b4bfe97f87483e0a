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
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestREADMEDemoOptionsAreAccepted parses every DEMO_ARGS the README shows
// with the demo's own checks, so an example that the demo would refuse fails
// here and not in front of a new user.
func TestREADMEDemoOptionsAreAccepted(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile(`DEMO_ARGS="([^"]*)"`).FindAllStringSubmatch(string(readme), -1)
	lifetimes := regexp.MustCompile("`-lifetime ([^`]+)`").FindAllStringSubmatch(string(readme), -1)
	if len(examples) == 0 || len(lifetimes) == 0 {
		t.Fatal("the README shows no DEMO_ARGS example or -lifetime option: this test reads nothing")
	}
	for _, m := range lifetimes {
		examples = append(examples, []string{"", "-lifetime " + m[1]})
	}
	for _, m := range examples {
		fields := strings.Fields(m[1])
		for i, f := range fields {
			if f != "-lifetime" || i+1 >= len(fields) {
				continue
			}
			d, err := time.ParseDuration(fields[i+1])
			if err != nil {
				t.Errorf("README example %q: %v", m[1], err)
				continue
			}
			if err := checkLifetime(d); err != nil {
				t.Errorf("README example %q is refused: %v", m[1], err)
			}
		}
	}
	if checkLifetime(30*time.Second) == nil {
		t.Error("a 30s lifetime, which no AccessToken maxAge admits, was accepted")
	}
}
