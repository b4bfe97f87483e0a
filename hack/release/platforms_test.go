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
)

func TestLinuxArchs(t *testing.T) {
	for _, tc := range []struct {
		platforms string
		want      []string // nil: an error
	}{
		{imagePlatforms, []string{"amd64", "arm64"}},
		{"linux/arm64", []string{"arm64"}},
		{"linux/amd64, linux/arm64", []string{"amd64", "arm64"}},
		{"darwin/arm64", nil},
		{"linux/", nil},
		{"linux/arm/v7", nil},
		{"", nil},
	} {
		got, err := linuxArchs(tc.platforms)
		if tc.want == nil {
			if err == nil {
				t.Errorf("linuxArchs(%q) = %v, want an error", tc.platforms, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("linuxArchs(%q) = %v, %v; want %v", tc.platforms, got, err, tc.want)
		}
	}
}
