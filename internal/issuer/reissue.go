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
	"fmt"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// MaxReissueWindow bounds spec.reissueWindow.
const MaxReissueWindow = 24 * time.Hour

// validateReissueWindow checks spec.reissueWindow where admission may not
// have (an object stored before the rule, a unit test).
func validateReissueWindow(spec *v1alpha1.IssuerSpec) []error {
	d := spec.ReissueWindow
	if d == nil {
		return nil
	}
	if err := d.Check("reissueWindow"); err != nil {
		return []error{err}
	}
	if d.Duration < 0 || d.Duration > MaxReissueWindow {
		return []error{fmt.Errorf("reissueWindow must be between 0s and 24h, got %s", d.Duration)}
	}
	return nil
}
