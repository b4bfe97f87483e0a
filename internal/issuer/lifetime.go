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

// Bounds of spec.defaultLifetime, as its CEL rule states them.
const (
	MinDefaultLifetime = time.Minute
	MaxDefaultLifetime = 8760 * time.Hour
)

// withDefaultLifetime gives a token whose response reported no expiry the
// issuer's defaultLifetime, counted from when its request was sent.
func withDefaultLifetime(spec *v1alpha1.IssuerSpec, token *Token) *Token {
	if token.ExpiresAt == nil && spec.DefaultLifetime != nil && spec.DefaultLifetime.Duration > 0 {
		expiresAt := token.IssuedAt.Add(spec.DefaultLifetime.Duration)
		token.ExpiresAt = &expiresAt
	}
	return token
}

// validateDefaultLifetime checks spec.defaultLifetime where admission may not
// have (an object stored before the rule, a unit test).
func validateDefaultLifetime(spec *v1alpha1.IssuerSpec) []error {
	d := spec.DefaultLifetime
	if d == nil {
		return nil
	}
	if err := d.Check("defaultLifetime"); err != nil {
		return []error{err}
	}
	if d.Duration < MinDefaultLifetime || d.Duration > MaxDefaultLifetime {
		return []error{fmt.Errorf("defaultLifetime must be between 1m and 8760h, got %s", d.Duration)}
	}
	return nil
}
