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

package docs

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// simpleCommand is one command of a shell line: the words of a pipeline
// stage, or of a list separated by ;, && or ||, with quotes removed.
type simpleCommand struct {
	line  int
	words []string
	// subs are the command substitutions $(...) found in the words, to be
	// checked as commands of their own.
	subs []string
}

// splitShell splits shell source into simple commands, the way a POSIX shell
// tokenizes it: single and double quotes, backslash escapes and line
// continuations, comments, $(...) kept whole inside their word, and the
// operators |, ||, &&, ; and & (and a newline) ending a command. firstLine is
// the line number of src's first line, for messages.
func splitShell(src string, firstLine int) ([]simpleCommand, error) {
	var (
		cmds    []simpleCommand
		cur     simpleCommand
		word    strings.Builder
		inWord  bool
		line    = firstLine
		startAt = firstLine
	)
	endWord := func() {
		if inWord {
			if len(cur.words) == 0 {
				cur.line = startAt
			}
			cur.words = append(cur.words, word.String())
			word.Reset()
			inWord = false
		}
	}
	endCommand := func() {
		endWord()
		if len(cur.words) > 0 {
			cmds = append(cmds, cur)
		}
		cur = simpleCommand{}
	}
	startWord := func() {
		if !inWord {
			inWord, startAt = true, line
		}
	}
	// substitution copies $(...) from src[i:] (src[i] == '$') into the word
	// and returns the index after its closing parenthesis.
	substitution := func(i int) (int, error) {
		depth := 0
		for j := i + 1; j < len(src); j++ {
			switch src[j] {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					word.WriteString(src[i : j+1])
					cur.subs = append(cur.subs, src[i+2:j])
					return j + 1, nil
				}
			case '\n':
				line++
			}
		}
		return 0, fmt.Errorf("line %d: unterminated $(", line)
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\\' && i+1 < len(src) && src[i+1] == '\n':
			line++
			i += 2
		case c == '\\' && i+1 < len(src):
			startWord()
			word.WriteByte(src[i+1])
			i += 2
		case c == '\n':
			endCommand()
			line++
			i++
		case c == ' ' || c == '\t':
			endWord()
			i++
		case c == '#' && !inWord:
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '|' || c == ';' || c == '&':
			endCommand()
			i++
		case c == '\'':
			startWord()
			end := strings.IndexByte(src[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated '", line)
			}
			quoted := src[i+1 : i+1+end]
			line += strings.Count(quoted, "\n")
			word.WriteString(quoted)
			i += end + 2
		case c == '"':
			startWord()
			i++
			for {
				if i >= len(src) {
					return nil, fmt.Errorf("line %d: unterminated \"", line)
				}
				if src[i] == '"' {
					i++
					break
				}
				if src[i] == '\\' && i+1 < len(src) && strings.IndexByte("\"\\$`", src[i+1]) >= 0 {
					word.WriteByte(src[i+1])
					i += 2
					continue
				}
				if src[i] == '$' && i+1 < len(src) && src[i+1] == '(' {
					next, err := substitution(i)
					if err != nil {
						return nil, err
					}
					i = next
					continue
				}
				if src[i] == '\n' {
					line++
				}
				word.WriteByte(src[i])
				i++
			}
		case c == '$' && i+1 < len(src) && src[i+1] == '(':
			startWord()
			next, err := substitution(i)
			if err != nil {
				return nil, err
			}
			i = next
		default:
			startWord()
			word.WriteByte(c)
			i++
		}
	}
	endCommand()
	return cmds, nil
}

// TestSplitShell checks the splitting on the shapes the docs use: a line
// continuation, a comment, a pipe ending a line, a quote spanning lines, an
// empty quoted word and a command substitution inside double quotes.
func TestSplitShell(t *testing.T) {
	src := `make image-push IMG=x \
  --flag # a comment | not a pipe
kubectl get a -o jsonpath='{.x}' |
while read -r ns; do
  kubectl patch a -p '[
    {"op": "remove"}]' -n "" && kubectl annotate a k="$(date +%s)"
done`
	cmds, err := splitShell(src, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		line  int
		words []string
	}{
		{10, []string{"make", "image-push", "IMG=x", "--flag"}},
		{12, []string{"kubectl", "get", "a", "-o", "jsonpath={.x}"}},
		{13, []string{"while", "read", "-r", "ns"}},
		{13, []string{"do"}},
		{14, []string{"kubectl", "patch", "a", "-p", "[\n    {\"op\": \"remove\"}]", "-n", ""}},
		{15, []string{"kubectl", "annotate", "a", "k=$(date +%s)"}},
		{16, []string{"done"}},
	}
	if len(cmds) != len(want) {
		t.Fatalf("got %d commands, want %d: %+v", len(cmds), len(want), cmds)
	}
	for i, w := range want {
		if cmds[i].line != w.line || !slices.Equal(cmds[i].words, w.words) {
			t.Errorf("command %d: got line %d %q, want line %d %q", i, cmds[i].line, cmds[i].words, w.line, w.words)
		}
	}
	if got := cmds[5].subs; !slices.Equal(got, []string{"date +%s"}) {
		t.Errorf("substitutions: got %q", got)
	}
	for _, bad := range []string{`echo 'open`, `echo "open`, `echo $(open`} {
		if _, err := splitShell(bad, 1); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
