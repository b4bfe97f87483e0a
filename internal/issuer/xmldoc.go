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

// maxXMLDepth bounds the nesting of an XML answer the engine reads.
const maxXMLDepth = 32

// Why an XML answer is refused. The messages name no part of the body.
var (
	errNotXML       = errors.New("is not XML")
	errXMLSyntax    = errors.New("is not well-formed XML")
	errXMLDirective = errors.New("declares a DTD or an entity (<!...>), which tokenmint never reads")
	errXMLDepth     = errors.New("nests XML elements too deep")
	errXMLTrailing  = errors.New("has data after the XML document's root element")
)

// decodeXML reads an XML document (an AWS Query API answer, or its error
// envelope <ErrorResponse><Error><Code>Throttling</Code>...) into the shape a
// JSON body decodes to, so that the same paths reach it: elements by local
// name (namespaces ignored), starting with the root
// ("ErrorResponse.Error.Code"); an element without child elements as its
// text, trimmed; one with children as an object of them, its own text
// ignored; a repeated element as a list; attributes ignored.
//
// The decoder is strict and never reads a DTD: any <!DOCTYPE>, <!ENTITY> or
// other directive refuses the answer, and an entity other than XML's five
// predefined ones and character references is a syntax error, so nothing is
// ever expanded. Nesting is bounded by maxXMLDepth and the size by the
// engine's response limit (MaxResponseBytes), and only UTF-8 is read.
func decodeXML(body []byte) (any, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '<' {
		return nil, errNotXML
	}
	d := newXMLDecoder(trimmed)
	var doc any
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if doc == nil {
				return nil, errXMLSyntax
			}
			return doc, nil
		}
		if err != nil {
			return nil, asXMLError(err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, errXMLDirective
		case xml.StartElement:
			if doc != nil {
				return nil, errXMLTrailing
			}
			value, err := xmlElement(d, 1)
			if err != nil {
				return nil, err
			}
			doc = map[string]any{t.Name.Local: value}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				if doc != nil {
					return nil, errXMLTrailing
				}
				return nil, errXMLSyntax
			}
		}
	}
}

func newXMLDecoder(data []byte) *xml.Decoder {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.AutoClose = nil
	d.Entity = nil // the five predefined entities only
	// No CharsetReader: a document declaring another encoding than UTF-8 is refused.
	return d
}

// asXMLError keeps the engine's own refusals and turns the decoder's errors,
// which may quote the body, into one that does not.
func asXMLError(err error) error {
	switch {
	case errors.Is(err, errXMLDirective), errors.Is(err, errXMLDepth), errors.Is(err, errXMLTrailing):
		return err
	}
	return errXMLSyntax
}

// xmlElement reads the rest of an element whose start was just read: its text
// when it has no child elements, otherwise a map of its children.
func xmlElement(d *xml.Decoder, depth int) (any, error) {
	if depth > maxXMLDepth {
		return nil, errXMLDepth
	}
	var text strings.Builder
	var children map[string]any
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, asXMLError(err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, errXMLDirective
		case xml.CharData:
			if children == nil {
				text.Write(t)
			}
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
