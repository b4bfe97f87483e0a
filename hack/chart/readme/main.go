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

// Command readme writes the chart's README from a template and the comments of
// values.yaml, so that the defaults the README states are those of values.yaml.
//
// A value is documented by a comment starting "# -- " right above its key (the
// convention of helm-docs); the lines after it continue the description. Every
// value must be documented, itself or through a documented parent map. The
// template inserts the table with {{ .Table }} and states one default with
// {{ value "path.to.key" }} (as code) or {{ plain "path.to.key" }}.
// hack/chart/sync.sh runs it.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

func main() {
	var (
		values = flag.String("values", "dist/chart/values.yaml", "the chart's values.yaml")
		tmpl   = flag.String("template", "hack/chart/readme/README.md.tmpl", "the README's template")
		out    = flag.String("out", "dist/chart/README.md", "the README to write")
	)
	flag.Parse()
	if err := run(*values, *tmpl, *out); err != nil {
		fmt.Fprintln(os.Stderr, "hack/chart/readme:", err)
		os.Exit(1)
	}
}

func run(valuesFile, templateFile, out string) error {
	values, err := os.ReadFile(valuesFile)
	if err != nil {
		return err
	}
	tmpl, err := os.ReadFile(templateFile)
	if err != nil {
		return err
	}
	readme, err := Render(values, string(tmpl))
	if err != nil {
		return fmt.Errorf("%s: %w", valuesFile, err)
	}
	return os.WriteFile(out, readme, 0o644)
}

// Row is one documented value.
type Row struct {
	// Path is the value's dotted path, e.g. image.tag.
	Path string
	// Default is the value in values.yaml, as Markdown code.
	Default string
	// Description is the text of its "# --" comment.
	Description string
}

// Render executes the README template with the values' table.
func Render(values []byte, tmpl string) ([]byte, error) {
	rows, err := Rows(values)
	if err != nil {
		return nil, err
	}
	byPath := map[string]Row{}
	for _, r := range rows {
		byPath[r.Path] = r
	}
	t, err := template.New("README").Option("missingkey=error").Funcs(template.FuncMap{
		"value": func(path string) (string, error) {
			r, ok := byPath[path]
			if !ok {
				return "", fmt.Errorf("the template names %q, which values.yaml does not document", path)
			}
			return r.Default, nil
		},
		"plain": func(path string) (string, error) {
			r, ok := byPath[path]
			if !ok {
				return "", fmt.Errorf("the template names %q, which values.yaml does not document", path)
			}
			return strings.Trim(r.Default, "`"), nil
		},
	}).Parse(tmpl)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := t.Execute(&out, map[string]string{"Table": Table(rows)}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Table renders rows as a Markdown table.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| Value | Default | Meaning |\n|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.Path, cell(r.Default), cell(r.Description))
	}
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// Rows returns the documented values in the order of values.yaml, or an error
// naming a value that is documented neither itself nor by a parent.
func Rows(values []byte) ([]Row, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(values, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("values.yaml is not a map")
	}
	var rows []Row
	var undocumented []string
	var walk func(prefix string, m *yaml.Node, documented bool) error
	walk = func(prefix string, m *yaml.Node, documented bool) error {
		for i := 0; i+1 < len(m.Content); i += 2 {
			key, val := m.Content[i], m.Content[i+1]
			path := prefix + key.Value
			desc, ok := description(key.HeadComment)
			if ok {
				def, err := defaultOf(val)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				rows = append(rows, Row{Path: path, Default: def, Description: desc})
			}
			if val.Kind == yaml.MappingNode && len(val.Content) > 0 {
				if err := walk(path+".", val, documented || ok); err != nil {
					return err
				}
			} else if !ok && !documented {
				undocumented = append(undocumented, path)
			}
		}
		return nil
	}
	if err := walk("", doc.Content[0], false); err != nil {
		return nil, err
	}
	if len(undocumented) > 0 {
		return nil, fmt.Errorf("no \"# -- \" comment documents %s", strings.Join(undocumented, ", "))
	}
	return rows, nil
}

// description returns the "# -- " comment block at the end of a head comment,
// joined into one line.
func description(comment string) (string, bool) {
	lines := strings.Split(comment, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "# -- ") {
			start = i
		}
	}
	if start < 0 {
		return "", false
	}
	var words []string
	for i, l := range lines[start:] {
		l = strings.TrimSpace(l)
		if i == 0 {
			l = strings.TrimPrefix(l, "# -- ")
		} else {
			l = strings.TrimSpace(strings.TrimPrefix(l, "#"))
		}
		if l != "" {
			words = append(words, l)
		}
	}
	return strings.Join(words, " "), true
}

// defaultOf renders a value as Markdown code: a scalar as written (an empty
// string as ""), a map or a list as JSON.
func defaultOf(n *yaml.Node) (string, error) {
	if n.Kind == yaml.ScalarNode {
		switch {
		case n.Tag == "!!str" && n.Value == "":
			return "`\"\"`", nil
		case n.Tag == "!!null":
			return "`null`", nil
		}
		return "`" + n.Value + "`", nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return "", err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return "`" + string(raw) + "`", nil
}
