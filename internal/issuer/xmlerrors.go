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
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// maxXMLDepth bounds the nesting of an XML error answer the engine reads.
const maxXMLDepth = 16

// decodeXMLError reads an XML error answer (AWS's
// <ErrorResponse><Error><Code>Throttling</Code>...) into the shape a JSON body
// decodes to, so that paths reach it: elements by local name, starting with
// the root ("ErrorResponse.Error.Code"), text as strings, a repeated element
// as a list; attributes are ignored. Only failed answers are read this way:
// a token is always read from JSON.
func decodeXMLError(body []byte) (any, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '<' {
		return nil, errors.New("not XML")
	}
	d := xml.NewDecoder(bytes.NewReader(trimmed))
	d.Strict = true
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		if start, ok := tok.(xml.StartElement); ok {
			value, err := xmlElement(d, 1)
			if err != nil {
				return nil, err
			}
			return map[string]any{start.Name.Local: value}, nil
		}
	}
}

// xmlElement reads the rest of an element whose start was just read: its text
// when it has no child elements, otherwise a map of its children.
func xmlElement(d *xml.Decoder, depth int) (any, error) {
	if depth > maxXMLDepth {
		return nil, errors.New("XML nested too deep")
	}
	var text strings.Builder
	var children map[string]any
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.StartElement:
			value, err := xmlElement(d, depth+1)
			if err != nil {
				return nil, err
			}
			if children == nil {
				children = map[string]any{}
			}
			name := t.Name.Local
			switch prev := children[name].(type) {
			case nil:
				children[name] = value
			case []any:
				children[name] = append(prev, value)
			default:
				children[name] = []any{prev, value}
			}
		case xml.EndElement:
			if children != nil {
				return children, nil
			}
			return strings.TrimSpace(text.String()), nil
		}
	}
}
