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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Paths are dot separated ("data.secret"); in responses a numeric segment also
// indexes a list ("items.0.id").

// splitPath splits a path, refusing empty segments ("a..b", ".a", "").
func splitPath(path string) ([]string, error) {
	segments := strings.Split(path, ".")
	for _, s := range segments {
		if s == "" {
			return nil, fmt.Errorf("path %q has an empty segment", path)
		}
	}
	return segments, nil
}

// lookup returns the value at path in a decoded JSON document and whether it
// exists. A JSON null counts as absent: providers send null for "not given".
func lookup(doc any, path string) (any, bool) {
	segments, err := splitPath(path)
	if err != nil {
		return nil, false
	}
	current := doc
	for _, segment := range segments {
		switch node := current.(type) {
		case map[string]any:
			next, ok := node[segment]
			if !ok {
				return nil, false
			}
			current = next
		case []any:
			index, err := strconv.Atoi(segment)
			if err != nil || index < 0 || index >= len(node) {
				return nil, false
			}
			current = node[index]
		default:
			return nil, false
		}
	}
	return current, current != nil
}

// setPath stores value at path in a JSON object, creating nested objects. It
// fails when a segment already holds something that is not an object, which
// Validate reports for configurations as a path conflict.
func setPath(root map[string]any, path string, value any) error {
	segments, err := splitPath(path)
	if err != nil {
		return err
	}
	node := root
	for _, segment := range segments[:len(segments)-1] {
		next, exists := node[segment]
		if !exists {
			child := map[string]any{}
			node[segment] = child
			node = child
			continue
		}
		child, isObject := next.(map[string]any)
		if !isObject {
			return fmt.Errorf("path %q crosses %q, which already holds a value", path, segment)
		}
		node = child
	}
	leaf := segments[len(segments)-1]
	if _, exists := node[leaf]; exists {
		return fmt.Errorf("path %q is set twice, or overlaps another path", path)
	}
	node[leaf] = value
	return nil
}

// decodeJSON decodes one JSON document keeping numbers exact (json.Number), so
// that copied fields and literal values are written as they were.
func decodeJSON(data []byte) (any, error) {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	var doc any
	if err := decoder.Decode(&doc); err != nil {
		return nil, err
	}
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return doc, nil
}

// text renders a decoded JSON value as a string: strings as they are, anything
// else as compact JSON.
func text(value any) string {
	if s, ok := value.(string); ok {
		return s
	}
	encoded, err := json.Marshal(value)
	if err != nil {
		return fmt.Sprint(value)
	}
	return string(encoded)
}
