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
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// redactedMark replaces a credential in any text the engine returns.
const redactedMark = "[redacted]"

// maxDetailLength bounds provider codes and messages copied into errors, so a
// chatty endpoint cannot fill a condition message.
const maxDetailLength = 200

// redactor removes known credentials from text. Providers do echo credentials
// back ("invalid client secret 'abc'"), so every text that leaves the engine
// passes through one, built per call from everything secret the call touched.
type redactor struct {
	secrets []string
}

// add registers a credential and the encodings it may appear in once a
// provider echoes it back: as sent in a form, a URL path or a JSON string.
func (r *redactor) add(secret string) {
	if secret == "" {
		return
	}
	for _, form := range encodings(secret) {
		if !slices.Contains(r.secrets, form) {
			r.secrets = append(r.secrets, form)
		}
	}
	// Longest first, so that a secret containing another is removed whole.
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
}

// encodings lists the forms a credential takes in a request or an echo of it:
// as it is, form- and path-escaped, and as a JSON string with and without
// HTML escaping (request bodies are written without it, Go's encoders
// elsewhere with it).
func encodings(secret string) []string {
	quoted, _ := json.Marshal(secret)
	var plain strings.Builder
	encoder := json.NewEncoder(&plain)
	encoder.SetEscapeHTML(false)
	_ = encoder.Encode(secret)
	forms := []string{
		secret,
		url.QueryEscape(secret),
		url.PathEscape(secret),
		strings.Trim(string(quoted), `"`),
		strings.Trim(strings.TrimSuffix(plain.String(), "\n"), `"`),
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// Redact returns text with every credential replaced by "[redacted]", in
// each encoding the engine's own redactor removes: for callers that hold
// credentials of their own and print text that may carry them.
func Redact(text string, credentials ...string) string {
	r := &redactor{}
	for _, c := range credentials {
		r.add(c)
	}
	return r.redact(text)
}

// redact returns text with every registered credential replaced.
func (r *redactor) redact(text string) string {
	for _, secret := range r.secrets {
		text = strings.ReplaceAll(text, secret, redactedMark)
	}
	return text
}

// detail makes a provider-supplied text safe to show: credentials removed,
// control characters flattened, and shortened.
func (r *redactor) detail(text string) string {
	text = r.redact(text)
	text = strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return ' '
		}
		return c
	}, text)
	return shorten(strings.TrimSpace(text), maxDetailLength)
}

// shorten cuts text to at most limit bytes on a rune boundary, marking the cut.
func shorten(text string, limit int) string {
	if len(text) <= limit {
		return text
	}
	const ellipsis = "..."
	cut := limit - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut] + ellipsis
}
