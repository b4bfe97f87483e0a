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
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// ResolveParameters checks an AccessToken's parameters against the issuer's
// declarations and returns the typed values request building uses: string,
// int64, bool or []string. Defaults fill what the AccessToken leaves out; a
// parameter with neither a value nor a default is absent from the result, and
// request values that use it are not sent. A parameter bound to a namespace
// label (fromNamespaceLabel) takes its value from namespaceLabels, the labels
// of the AccessToken's namespace, and never from params. Undeclared names,
// wrong types, missing required values, missing labels and constraint
// violations are all reported at once.
func ResolveParameters(spec *v1alpha1.IssuerSpec, params map[string]apiextensionsv1.JSON, namespaceLabels map[string]string) (map[string]any, error) {
	declared := map[string]*v1alpha1.ParameterSpec{}
	for i := range spec.Parameters {
		declared[spec.Parameters[i].Name] = &spec.Parameters[i]
	}
	var problems []error
	for _, name := range sortedKeys(params) {
		if declared[name] == nil {
			problems = append(problems, fmt.Errorf("parameter %q is not declared by the issuer%s", name, declaredNames(spec)))
		}
	}
	problems = append(problems, CheckNamespaceBindings(spec, params, namespaceLabels)...)
	resolved := map[string]any{}
	for i := range spec.Parameters {
		decl := &spec.Parameters[i]
		if decl.FromNamespaceLabel != "" {
			value, ok := namespaceLabels[decl.FromNamespaceLabel]
			if !ok {
				continue // reported by CheckNamespaceBindings
			}
			v, err := labelValue(decl, value)
			if err != nil {
				problems = append(problems, err)
				continue
			}
			resolved[decl.Name] = v
			continue
		}
		raw, supplied := params[decl.Name]
		// null means "not given", as in a merge patch.
		supplied = supplied && strings.TrimSpace(string(raw.Raw)) != "null"
		if !supplied && decl.Default != nil {
			raw, supplied = *decl.Default, true
		}
		if !supplied {
			if decl.Required {
				problems = append(problems, fmt.Errorf("parameter %q is required", decl.Name))
			}
			continue
		}
		value, err := parameterValue(decl, raw)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		resolved[decl.Name] = value
	}
	if err := join(problems); err != nil {
		return nil, err
	}
	return resolved, nil
}

// NamespaceLabelKeys lists the namespace labels the issuer's parameters are
// bound to (fromNamespaceLabel), sorted; none for most issuers.
func NamespaceLabelKeys(spec *v1alpha1.IssuerSpec) []string {
	var keys []string
	for _, p := range spec.Parameters {
		if p.FromNamespaceLabel != "" && !slices.Contains(keys, p.FromNamespaceLabel) {
			keys = append(keys, p.FromNamespaceLabel)
		}
	}
	sort.Strings(keys)
	return keys
}

// CheckNamespaceBindings reports, for the parameters bound to a namespace
// label, a value the AccessToken sets itself (it may not choose it) and a
// label the namespace does not carry (or carries empty): in either case no
// call may be made. It does not check the label values against the
// constraints; ResolveParameters does.
func CheckNamespaceBindings(spec *v1alpha1.IssuerSpec, params map[string]apiextensionsv1.JSON, namespaceLabels map[string]string) []error {
	var problems []error
	for _, decl := range spec.Parameters {
		if decl.FromNamespaceLabel == "" {
			continue
		}
		if _, set := params[decl.Name]; set {
			problems = append(problems, fmt.Errorf("parameter %q comes from the label %q of the AccessToken's namespace: the AccessToken cannot set it",
				decl.Name, decl.FromNamespaceLabel))
		}
		if namespaceLabels[decl.FromNamespaceLabel] == "" {
			problems = append(problems, fmt.Errorf("parameter %q comes from the label %q of the AccessToken's namespace, which the namespace does not carry",
				decl.Name, decl.FromNamespaceLabel))
		}
	}
	return problems
}

// labelValue reads a namespace label's value as the parameter's type (String
// or Integer) and checks it against the constraints.
func labelValue(decl *v1alpha1.ParameterSpec, value string) (any, error) {
	switch parameterType(decl) {
	case v1alpha1.ParameterString:
		return value, checkString(decl, value, decl.Name)
	case v1alpha1.ParameterInteger:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parameter %q: the namespace label %q is %q, not a whole number", decl.Name, decl.FromNamespaceLabel, shorten(value, 63))
		}
		return integerValue(decl, json.Number(strconv.FormatInt(n, 10)))
	default:
		return nil, fmt.Errorf("parameter %q: fromNamespaceLabel applies to String and Integer parameters only", decl.Name)
	}
}

// parameterValue decodes one raw value as the declared type and checks it
// against the declared constraints.
func parameterValue(decl *v1alpha1.ParameterSpec, raw apiextensionsv1.JSON) (any, error) {
	decoded, err := decodeJSON(raw.Raw)
	if err != nil {
		return nil, fmt.Errorf("parameter %q is not valid JSON: %w", decl.Name, err)
	}
	switch parameterType(decl) {
	case v1alpha1.ParameterString:
		s, ok := decoded.(string)
		if !ok {
			return nil, fmt.Errorf("parameter %q must be a string, got %s", decl.Name, describe(decoded))
		}
		return s, checkString(decl, s, decl.Name)
	case v1alpha1.ParameterInteger:
		return integerValue(decl, decoded)
	case v1alpha1.ParameterBoolean:
		b, ok := decoded.(bool)
		if !ok {
			return nil, fmt.Errorf("parameter %q must be true or false, got %s", decl.Name, describe(decoded))
		}
		return b, nil
	case v1alpha1.ParameterStringList:
		return stringListValue(decl, decoded)
	case v1alpha1.ParameterStringMap:
		return stringMapValue(decl, decoded)
	default:
		return nil, fmt.Errorf("parameter %q has unknown type %q", decl.Name, decl.Type)
	}
}

func integerValue(decl *v1alpha1.ParameterSpec, decoded any) (int64, error) {
	number, ok := decoded.(json.Number)
	if !ok {
		return 0, fmt.Errorf("parameter %q must be a whole number, got %s", decl.Name, describe(decoded))
	}
	n, err := strconv.ParseInt(number.String(), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parameter %q must be a whole number, got %s", decl.Name, shorten(number.String(), 40))
	}
	if decl.Minimum != nil && n < *decl.Minimum {
		return 0, fmt.Errorf("parameter %q is %d, below the minimum %d", decl.Name, n, *decl.Minimum)
	}
	if decl.Maximum != nil && n > *decl.Maximum {
		return 0, fmt.Errorf("parameter %q is %d, above the maximum %d", decl.Name, n, *decl.Maximum)
	}
	return n, nil
}

func stringListValue(decl *v1alpha1.ParameterSpec, decoded any) ([]string, error) {
	items, ok := decoded.([]any)
	if !ok {
		return nil, fmt.Errorf("parameter %q must be a list of strings, got %s", decl.Name, describe(decoded))
	}
	list := make([]string, 0, len(items))
	var problems []error
	for i, item := range items {
		s, ok := item.(string)
		if !ok {
			problems = append(problems, fmt.Errorf("parameter %q item %d must be a string, got %s", decl.Name, i, describe(item)))
			continue
		}
		if err := checkString(decl, s, fmt.Sprintf("%s[%d]", decl.Name, i)); err != nil {
			problems = append(problems, err)
			continue
		}
		list = append(list, s)
	}
	return list, join(problems)
}

// maxMapEntries bounds a StringMap parameter.
const maxMapEntries = 64

// maxMapKeyLength bounds a key of a StringMap parameter when keys does not.
const maxMapKeyLength = 128

func stringMapValue(decl *v1alpha1.ParameterSpec, decoded any) (map[string]string, error) {
	object, ok := decoded.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parameter %q must be an object of strings, got %s", decl.Name, describe(decoded))
	}
	if len(object) > maxMapEntries {
		return nil, fmt.Errorf("parameter %q has %d keys, more than %d", decl.Name, len(object), maxMapEntries)
	}
	out := make(map[string]string, len(object))
	var problems []error
	for _, key := range sortedKeys(object) {
		label := fmt.Sprintf("%s.%s", decl.Name, shorten(key, 40))
		switch {
		case len(decl.Keys) > 0 && !slices.Contains(decl.Keys, key):
			problems = append(problems, fmt.Errorf("parameter %q: key %q is not one of %q", decl.Name, shorten(key, 80), decl.Keys))
			continue
		case key == "" || len(key) > maxMapKeyLength:
			problems = append(problems, fmt.Errorf("parameter %q: keys must be 1 to %d characters", decl.Name, maxMapKeyLength))
			continue
		}
		value, ok := object[key].(string)
		if !ok {
			problems = append(problems, fmt.Errorf("parameter %q must be a string, got %s", label, describe(object[key])))
			continue
		}
		if err := checkString(decl, value, label); err != nil {
			problems = append(problems, err)
			continue
		}
		out[key] = value
	}
	return out, join(problems)
}

// checkString applies enum and pattern to a string or a list item.
func checkString(decl *v1alpha1.ParameterSpec, s, label string) error {
	if len(decl.Enum) > 0 && !slices.Contains(decl.Enum, s) {
		return fmt.Errorf("parameter %q: %q is not one of %q", label, shorten(s, 80), decl.Enum)
	}
	if decl.Pattern != "" {
		pattern, err := fullMatch(decl.Pattern)
		if err != nil {
			return fmt.Errorf("parameter %q: pattern does not compile: %w", label, err)
		}
		if !pattern.MatchString(s) {
			return fmt.Errorf("parameter %q: %q does not match the pattern %s", label, shorten(s, 80), decl.Pattern)
		}
	}
	return nil
}

// fullMatch compiles pattern so that it must match a whole value: an issuer's
// owner writing [a-z]+ means "only letters", not "contains a letter".
func fullMatch(pattern string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + pattern + `)$`)
}

// parameterType applies the API default, String, to an unset type.
func parameterType(decl *v1alpha1.ParameterSpec) v1alpha1.ParameterType {
	if decl.Type == "" {
		return v1alpha1.ParameterString
	}
	return decl.Type
}

// describe names the JSON type of a decoded value for error messages.
func describe(value any) string {
	switch value.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", value)
	}
}

func declaredNames(spec *v1alpha1.IssuerSpec) string {
	if len(spec.Parameters) == 0 {
		return " (it declares none)"
	}
	names := make([]string, 0, len(spec.Parameters))
	for _, p := range spec.Parameters {
		names = append(names, p.Name)
	}
	return fmt.Sprintf(" (declared: %q)", names)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
