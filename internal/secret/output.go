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

package secret

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// MaxDataBytes bounds the data of a token Secret: the token, its copied
// fields, the previous token and every derived key. The manager's cache keeps
// the data of Secrets up to this size.
const MaxDataBytes = 256 << 10

// Output is what a token Secret is built from.
type Output struct {
	// Token is the current token.
	Token string
	// Fields are the copied response fields, by Secret key.
	Fields map[string]string
	// IssuedAt and ExpiresAt (nil when unknown) of the token.
	IssuedAt  time.Time
	ExpiresAt *time.Time
	// Previous is the token a renewal replaced, written under previousKey
	// until PreviousUntil; empty when there is none.
	Previous      string
	PreviousUntil time.Time
}

// placeholder matches $$ and every ${...} of a template.
var placeholder = regexp.MustCompile(`\$\$|\$\{[^}]*\}?`)

// Data builds the Secret data of at from out: the token under its key, the
// copied fields, the previous token, the typed keys (.dockerconfigjson,
// username and password) and the derived keys. Errors name keys and
// placeholders, never values.
func Data(at *tokensv1alpha1.AccessToken, out Output) (map[string][]byte, error) {
	t := &at.Spec.Secret
	data := make(map[string][]byte, len(out.Fields)+len(t.Keys)+3)
	for k, v := range out.Fields {
		data[k] = []byte(v)
	}
	data[Key(at)] = []byte(out.Token)
	if t.PreviousKey != "" && out.Previous != "" {
		data[t.PreviousKey] = []byte(out.Previous)
	}
	if d := t.DockerConfigJSON; d != nil {
		username, err := outputUsername(d.Username, out.Fields)
		if err != nil {
			return nil, fmt.Errorf("dockerConfigJSON: %w", err)
		}
		config, err := dockerConfigJSON(d.Registries, username, out.Token)
		if err != nil {
			return nil, err
		}
		data[corev1.DockerConfigJsonKey] = config
	}
	if b := t.BasicAuth; b != nil {
		username, err := outputUsername(b.Username, out.Fields)
		if err != nil {
			return nil, fmt.Errorf("basicAuth: %w", err)
		}
		data[corev1.BasicAuthUsernameKey] = []byte(username)
		data[corev1.BasicAuthPasswordKey] = []byte(out.Token)
	}
	for _, d := range t.Keys {
		value, err := render(d, out)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", d.Key, err)
		}
		data[d.Key] = value
	}
	size := 0
	for _, v := range data {
		size += len(v)
	}
	if size > MaxDataBytes {
		return nil, fmt.Errorf("the Secret would hold %d bytes, more than the %d tokenmint writes", size, MaxDataBytes)
	}
	return data, nil
}

// render expands a derived key's template in one pass: a value is never
// scanned for placeholders again.
func render(d tokensv1alpha1.DerivedKey, out Output) ([]byte, error) {
	asJSON := d.Encoding == tokensv1alpha1.KeyEncodingJSON
	var failure error
	text := placeholder.ReplaceAllStringFunc(d.Template, func(p string) string {
		if p == "$$" {
			return "$"
		}
		value, known, err := placeholderValue(p, out)
		if err != nil {
			failure = errors.Join(failure, err)
			return ""
		}
		if !asJSON {
			return value
		}
		if !known {
			return "null"
		}
		encoded, _ := json.Marshal(value) // a string always encodes
		return string(encoded)
	})
	if failure != nil {
		return nil, failure
	}
	if asJSON && !json.Valid([]byte(text)) {
		return nil, errors.New("encoding JSON, but the template does not make a JSON document (write {\"token\": ${token}}, without quotes around placeholders)")
	}
	return []byte(text), nil
}

// placeholderValue is the value of ${...}; known is false for an unknown
// expiry, which is empty text (or null in JSON).
func placeholderValue(p string, out Output) (value string, known bool, err error) {
	name, ok := strings.CutPrefix(p, "${")
	name, closed := strings.CutSuffix(name, "}")
	switch {
	case !ok || !closed:
		return "", false, fmt.Errorf("%q is not a placeholder", shorten(p))
	case name == "token":
		return out.Token, true, nil
	case name == "issuedAt":
		return out.IssuedAt.UTC().Format(time.RFC3339), true, nil
	case name == "expiresAt":
		if out.ExpiresAt == nil {
			return "", false, nil
		}
		return out.ExpiresAt.UTC().Format(time.RFC3339), true, nil
	}
	if key, ok := strings.CutPrefix(name, "copy."); ok {
		v, present := out.Fields[key]
		return v, present, nil
	}
	return "", false, fmt.Errorf("unknown placeholder %q", shorten(p))
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func outputUsername(u tokensv1alpha1.OutputUsername, fields map[string]string) (string, error) {
	if u.Value != "" {
		return u.Value, nil
	}
	v, ok := fields[u.Copy]
	switch {
	case !ok || v == "":
		return "", fmt.Errorf("the username field %q is not in the response", u.Copy)
	case strings.Contains(v, ":"):
		return "", fmt.Errorf("the username field %q contains ':'", u.Copy)
	}
	return v, nil
}

// dockerConfigJSON is the .dockerconfigjson document containerd and the
// kubelet read: {"auths": {registry: {"username", "password", "auth"}}}.
func dockerConfigJSON(registries []string, username, token string) ([]byte, error) {
	type entry struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	auths := map[string]entry{}
	auth := base64.StdEncoding.EncodeToString([]byte(username + ":" + token))
	for _, r := range registries {
		auths[r] = entry{Username: username, Password: token, Auth: auth}
	}
	return json.Marshal(map[string]any{"auths": auths})
}

// CheckOutputs finds what keeps an AccessToken's Secret from being built with
// an issuer that copies copyKeys: keys written twice, placeholders of fields
// the issuer does not copy, a template that cannot make JSON. It is checked
// before any call, so that a token is never minted that cannot be written.
func CheckOutputs(at *tokensv1alpha1.AccessToken, copyKeys []string) error {
	t := &at.Spec.Secret
	var problems []error
	written := map[string]string{Key(at): "the token"}
	claim := func(key, what string) {
		if other, ok := written[key]; ok {
			problems = append(problems, fmt.Errorf("key %q would hold both %s and %s", key, other, what))
		}
		written[key] = what
	}
	for _, k := range copyKeys {
		claim(k, "a copied response field")
	}
	if t.PreviousKey != "" {
		claim(t.PreviousKey, "the previous token")
	}
	wantField := func(what, key string) {
		if !slices.Contains(copyKeys, key) {
			problems = append(problems, fmt.Errorf("%s uses the field %q, which the issuer does not copy (response.copy)", what, key))
		}
	}
	typed := map[corev1.SecretType]bool{corev1.SecretTypeDockerConfigJson: t.DockerConfigJSON != nil, corev1.SecretTypeBasicAuth: t.BasicAuth != nil}
	for typ, has := range typed {
		if (t.Type == typ) != has {
			problems = append(problems, fmt.Errorf("type %s and its output go together", typ))
		}
	}
	if d := t.DockerConfigJSON; d != nil {
		claim(corev1.DockerConfigJsonKey, "the docker config")
		if d.Username.Copy != "" {
			wantField("dockerConfigJSON.username", d.Username.Copy)
		}
	}
	if b := t.BasicAuth; b != nil {
		claim(corev1.BasicAuthUsernameKey, "the basic-auth username")
		claim(corev1.BasicAuthPasswordKey, "the basic-auth password")
		if b.Username.Copy != "" {
			wantField("basicAuth.username", b.Username.Copy)
		}
	}
	if len(t.Keys) == 0 {
		return errors.Join(problems...)
	}
	sample := Output{Token: `sample "token" \ with ${token}`, IssuedAt: time.Unix(0, 0), Fields: map[string]string{}}
	for _, k := range copyKeys {
		sample.Fields[k] = `sample "field"`
	}
	for _, d := range t.Keys {
		claim(d.Key, "a derived key")
		for _, p := range placeholder.FindAllString(d.Template, -1) {
			if key, ok := strings.CutPrefix(strings.TrimSuffix(p, "}"), "${copy."); ok {
				wantField("key "+d.Key, key)
			}
		}
		if _, err := render(d, sample); err != nil {
			problems = append(problems, fmt.Errorf("key %s: %w", d.Key, err))
		}
	}
	return errors.Join(problems...)
}
