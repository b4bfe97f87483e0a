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

package issuer

import (
	"strings"
	"testing"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

func TestReissueWindowBounds(t *testing.T) {
	for d, ok := range map[time.Duration]bool{
		0: true, 30 * time.Minute: true, 24 * time.Hour: true, 24*time.Hour + time.Second: false,
	} {
		spec := tokenSpec("https://login.example.com/token")
		spec.ReissueWindow = &v1alpha1.Duration{Duration: d}
		err := Validate(spec)
		if (err == nil) != ok {
			t.Errorf("reissueWindow %s: %v, want ok=%v", d, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "reissueWindow must be between 0s and 24h") {
			t.Errorf("reissueWindow %s: %v", d, err)
		}
	}
}
