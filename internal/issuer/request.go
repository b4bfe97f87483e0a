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
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// defaultUserAgent identifies the operator unless the issuer sets user-agent.
const defaultUserAgent = "tokenmint"

// buildRequest builds the HTTP request of one call. Every credential it writes
// (bearer value, Basic password and header) is registered with red, so that no
// error can echo it.
func buildRequest(ctx context.Context, spec *v1alpha1.RequestSpec, target string, values *valueResolver, red *redactor) (*http.Request, error) {
	body, contentType, err := buildBody(spec.Body, values)
	if err != nil {
		return nil, err
	}
	method := string(spec.Method)
	if method == "" {
		method = http.MethodPost
	}
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	sigV4 := spec.Auth != nil && spec.Auth.AWSSigV4 != nil
	if sigV4 {
		ctx = withSignedRequest(ctx)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", defaultUserAgent)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := range spec.Headers {
		header := &spec.Headers[i]
		value, present, err := values.resolveText(&header.ValueSource)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", header.Name, err)
		}
		if !present {
			continue
		}
		if err := checkHeaderValue(value); err != nil {
			return nil, fmt.Errorf("header %s: %w", header.Name, err)
		}
		req.Header.Set(header.Name, value)
	}
	if err := authenticate(req, spec.Auth, values, red); err != nil {
		return nil, err
	}
	if sigV4 {
		// Last: the signature covers the headers and body as they are now.
		if err := signAWSSigV4(req, body, spec.Auth.AWSSigV4, values, red); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// authenticate sets the Authorization header of bearer and basic; awsSigV4
// is signed by buildRequest once the request is final.
func authenticate(req *http.Request, auth *v1alpha1.AuthSpec, values *valueResolver, red *redactor) error {
	switch {
	case auth == nil:
		return nil
	case auth.Bearer != nil:
		token, err := requiredText(values, auth.Bearer, "auth.bearer")
		if err != nil {
			return err
		}
		red.add(token)
		if err := checkHeaderValue(token); err != nil {
			return fmt.Errorf("auth.bearer: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
	case auth.Basic != nil:
		username, err := requiredText(values, &auth.Basic.Username, "auth.basic.username")
		if err != nil {
			return err
		}
		password, err := requiredText(values, &auth.Basic.Password, "auth.basic.password")
		if err != nil {
			return err
		}
		// RFC 7617: base64 of user-id ":" password; a colon in the user-id
		// would make the pair ambiguous.
		if strings.Contains(username, ":") {
			return fmt.Errorf("auth.basic.username must not contain a colon")
		}
		credentials := base64.StdEncoding.EncodeToString([]byte(username + ":" + password))
		red.add(password)
		red.add(credentials)
		req.Header.Set("Authorization", "Basic "+credentials)
	}
	return nil
}

// requiredText resolves a value that must be present, such as a credential.
func requiredText(values *valueResolver, source *v1alpha1.ValueSource, label string) (string, error) {
	text, present, err := values.resolveText(source)
	if err != nil {
		return "", fmt.Errorf("%s: %w", label, err)
	}
	if !present {
		return "", fmt.Errorf("%s: parameter %q has no value and no default", label, source.Parameter)
	}
	return text, nil
}

// checkHeaderValue refuses values that would split or corrupt a header.
func checkHeaderValue(value string) error {
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("value contains a line break or NUL")
	}
	return nil
}

// buildBody encodes the body and names its content type; no body gives nil.
func buildBody(spec *v1alpha1.BodySpec, values *valueResolver) (body []byte, contentType string, err error) {
	switch {
	case spec == nil:
		return nil, "", nil
	case len(spec.JSON) > 0 || spec.JSONContentType != "":
		body, err = jsonBody(spec.JSON, values)
		return body, cmp.Or(spec.JSONContentType, "application/json"), err
	case len(spec.Form) > 0:
		body, err = formBody(spec.Form, values)
		return body, "application/x-www-form-urlencoded", err
	default:
		return nil, "", nil
	}
}

// jsonBody builds a JSON object from dotted paths. Values keep their JSON type:
// numbers stay numbers and lists stay lists.
func jsonBody(fields []v1alpha1.JSONField, values *valueResolver) ([]byte, error) {
	root := map[string]any{}
	for i := range fields {
		field := &fields[i]
		value, present, err := values.resolve(&field.ValueSource)
		if err != nil {
			return nil, fmt.Errorf("body field %s: %w", field.Path, err)
		}
		if !present {
			continue
		}
		if err := setPath(root, field.Path, value); err != nil {
			return nil, fmt.Errorf("body field %s: %w", field.Path, err)
		}
	}
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetEscapeHTML(false) // send "<" and "&" as themselves, as a person would
	if err := encoder.Encode(root); err != nil {
		return nil, fmt.Errorf("encoding the JSON body: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// formBody builds an application/x-www-form-urlencoded body; lists are joined
// with single spaces, as OAuth2 writes scope.
func formBody(fields []v1alpha1.FormField, values *valueResolver) ([]byte, error) {
	form := url.Values{}
	for i := range fields {
		field := &fields[i]
		value, present, err := values.resolveText(&field.ValueSource)
		if err != nil {
			return nil, fmt.Errorf("form field %s: %w", field.Name, err)
		}
		if present {
			form.Set(field.Name, value)
		}
	}
	return []byte(form.Encode()), nil
}
