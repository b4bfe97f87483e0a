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
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

func TestDefaultLifetimeAppliesOnlyWithoutAReportedExpiry(t *testing.T) {
	ep := startEndpoint(t, answering(200, `{"access_token": "t", "expires_in": 600}`))
	cases := []struct {
		name     string
		expiry   *v1alpha1.ExpirySpec
		lifetime *v1alpha1.Duration
		want     *time.Time
	}{
		{"no expiry, no default: unknown", nil, nil, nil},
		{"no expiry: the default", nil, &v1alpha1.Duration{Duration: 2 * time.Hour}, ptr(testNow.Add(2 * time.Hour))},
		{"a reported expiry wins", &v1alpha1.ExpirySpec{Path: "expires_in", Format: v1alpha1.ExpiryRelativeSeconds},
			&v1alpha1.Duration{Duration: 2 * time.Hour}, ptr(testNow.Add(10 * time.Minute))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := tokenSpec(ep.URL)
			spec.Response.Expiry, spec.DefaultLifetime = c.expiry, c.lifetime
			tok, err := testEngine().Issue(context.Background(), Call{Spec: spec, HTTPClient: testClient(t)})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.want == nil && tok.ExpiresAt != nil:
				t.Errorf("expires at %v, want unknown", tok.ExpiresAt)
			case c.want != nil && (tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(*c.want)):
				t.Errorf("expires at %v, want %v", tok.ExpiresAt, c.want)
			}
		})
	}
}

func TestDefaultLifetimeBounds(t *testing.T) {
	for d, ok := range map[time.Duration]bool{
		time.Minute: true, 8760 * time.Hour: true, 59 * time.Second: false, 8761 * time.Hour: false,
	} {
		spec := tokenSpec("https://login.example.com/token")
		spec.DefaultLifetime = &v1alpha1.Duration{Duration: d}
		err := Validate(spec)
		if (err == nil) != ok {
			t.Errorf("defaultLifetime %s: %v, want ok=%v", d, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "defaultLifetime must be between 1m and 8760h") {
			t.Errorf("defaultLifetime %s: %v", d, err)
		}
	}
}
