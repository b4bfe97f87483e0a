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
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// decodeBody decodes an answer's body in the issuer's response format into
// the shape paths read (see lookup): JSON as it decodes, XML by decodeXML, a
// form as an object of its fields.
func decodeBody(format v1alpha1.ResponseFormat, body []byte) (any, error) {
	switch format {
	case v1alpha1.ResponseXML:
		return decodeXML(body)
	case v1alpha1.ResponseForm:
		return decodeForm(body)
	default:
		doc, err := decodeJSON(body)
		if err != nil {
			return nil, errors.New("is not JSON")
		}
		return doc, nil
	}
}

// decodeForm reads an application/x-www-form-urlencoded body: each field a
// string, a repeated field a list of strings.
func decodeForm(body []byte) (any, error) {
	values, err := url.ParseQuery(strings.TrimSpace(string(body)))
	if err != nil {
		return nil, errors.New("is not a well-formed form-encoded body")
	}
	doc := make(map[string]any, len(values))
	for name, list := range values {
		if len(list) == 1 {
			doc[name] = list[0]
			continue
		}
		items := make([]any, len(list))
		for i, v := range list {
			items[i] = v
		}
		doc[name] = items
	}
	return doc, nil
}

// transform applies t to a value read from an answer. Its errors never quote
// the value: it may be a credential.
func transform(value string, t *v1alpha1.ValueTransform) (string, error) {
	if t == nil {
		return value, nil
	}
	if t.Base64 != "" {
		encoding := base64.RawStdEncoding
		if t.Base64 == v1alpha1.Base64URL {
			encoding = base64.RawURLEncoding
		}
		decoded, err := encoding.Strict().DecodeString(strings.TrimRight(value, "="))
		if err != nil {
			return "", fmt.Errorf("is not base64 (%s alphabet)", t.Base64)
		}
		if !utf8.Valid(decoded) {
			return "", errors.New("does not decode to UTF-8 text")
		}
		value = string(decoded)
	}
	if t.Before != "" {
		before, _, found := strings.Cut(value, t.Before)
		if !found {
			return "", fmt.Errorf("holds no %q to keep the part before", t.Before)
		}
		value = before
	}
	if t.After != "" {
		_, after, found := strings.Cut(value, t.After)
		if !found {
			return "", fmt.Errorf("holds no %q to keep the part after", t.After)
		}
		value = after
	}
	return value, nil
}
