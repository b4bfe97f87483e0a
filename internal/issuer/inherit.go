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
	"net/url"
	"strings"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// Effective returns spec with what refresh and revoke leave out taken from
// request: the URL and, when they call the same scheme and host, the client
// authentication and the headers (as a whole list). Bodies are never inherited: a refresh or revoke call says what it
// sends. spec itself is returned when nothing is inherited, and is never
// changed.
func Effective(spec *v1alpha1.IssuerSpec) *v1alpha1.IssuerSpec {
	if spec == nil || (!inherits(spec.Refresh) && !inherits(spec.Revoke)) {
		return spec
	}
	out := *spec
	out.Refresh = inherit(spec.Refresh, &spec.Request)
	out.Revoke = inherit(spec.Revoke, &spec.Request)
	return &out
}

func inherits(r *v1alpha1.RequestSpec) bool {
	return r != nil && (r.URL == "" || r.Auth == nil || r.Headers == nil)
}

func inherit(r, base *v1alpha1.RequestSpec) *v1alpha1.RequestSpec {
	if !inherits(r) {
		return r
	}
	out := *r
	if out.URL == "" {
		out.URL = base.URL
	}
	if !sameOrigin(out.URL, base.URL) {
		// Credentials go only where request sends them: a call to another
		// host says what it sends.
		return &out
	}
	if out.Auth == nil {
		out.Auth = base.Auth
	}
	if out.Headers == nil {
		out.Headers = base.Headers
	}
	return &out
}

// sameOrigin reports whether two URLs have the same scheme and host (with port).
func sameOrigin(a, b string) bool {
	ua, errA := url.Parse(strings.ReplaceAll(a, tokenIDPlaceholder, "x"))
	ub, errB := url.Parse(strings.ReplaceAll(b, tokenIDPlaceholder, "x"))
	return errA == nil && errB == nil && strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}
