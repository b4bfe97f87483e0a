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

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
)

// secretFields are the values of the copied fields the issuer marks secret:
// credentials, never shown.
func secretFields(spec *tokensv1alpha1.IssuerSpec, fields map[string]string) []string {
	var out []string
	for _, c := range spec.Response.Copy {
		if v, ok := fields[c.Key]; ok && c.Secret && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// fieldsView is how test shows copied fields: a field marked secret by its
// size alone, the others as they are, cleared of every credential in hidden.
func fieldsView(spec *tokensv1alpha1.IssuerSpec, fields map[string]string, hidden []string) map[string]string {
	secret := map[string]bool{}
	for _, c := range spec.Response.Copy {
		secret[c.Key] = c.Secret
	}
	view := make(map[string]string, len(fields))
	for k, v := range fields {
		if secret[k] {
			view[k] = fmt.Sprintf("<secret, %s, not shown>", byteCount(len(v)))
			continue
		}
		view[k] = issuer.Redact(v, hidden...)
	}
	return view
}
