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
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Which lines of the docs are commands
//
// The docs are README.md and docs/*.md. A command is:
//
//   - every line of a fenced block tagged sh, bash or shell (a trailing \
//     continues a line, a quote may span lines, # starts a comment);
//   - a line starting with "$ " in a fenced block tagged console or in an
//     untagged one (the other lines are the command's output);
//   - an inline code span, in prose or a table, that starts with make and a
//     target (`make demo DEMO_ARGS="-lifetime 1m"`), or with go, kubectl or
//     helm and at least two words more (`go run ./test/bench -mixed`); a span of
//     a program and its subcommand alone (`helm upgrade`, `kubectl tokenmint`)
//     names a tool and is not a command line.
//
// Each command is split as a shell splits it, into simple commands (the
// stages of a pipeline, the parts of a list), and each simple command gets
// the check of its program (see check in checks_test.go); a program with no
// check must be in allowed, with the reason, or the test fails.

// docCommand is one command found in the docs.
type docCommand struct {
	file string // relative to the repository root
	line int
	text string // as written, for messages
}

func (c docCommand) String() string { return fmt.Sprintf("%s:%d: %s", c.file, c.line, c.text) }

var (
	fence      = regexp.MustCompile("^\\s*(```|~~~)\\s*([A-Za-z0-9_-]*)")
	inlineCode = regexp.MustCompile("`([^`]+)`")
	inlineCmd  = regexp.MustCompile(`^(make|go|kubectl|helm) `)
)

// extractCommands returns the commands of one Markdown file.
func extractCommands(file, md string) []docCommand {
	var (
		cmds    []docCommand
		lines   = strings.Split(md, "\n")
		inBlock bool
		lang    string
		block   []string
		start   int
		prose   []string // the text outside blocks, blocks blanked, for inline spans
	)
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if m := fence.FindStringSubmatch(l); m != nil {
			prose = append(prose, "")
			if !inBlock {
				inBlock, lang, block, start = true, strings.ToLower(m[2]), nil, i+2
				continue
			}
			inBlock = false
			switch lang {
			case "sh", "bash", "shell":
				cmds = append(cmds, docCommand{file: file, line: start, text: strings.Join(block, "\n")})
			}
			continue
		}
		if !inBlock {
			prose = append(prose, l)
			continue
		}
		prose = append(prose, "")
		block = append(block, l)
		if (lang == "console" || lang == "") && strings.HasPrefix(l, "$ ") {
			text := strings.TrimPrefix(l, "$ ")
			first := i + 1
			for strings.HasSuffix(text, "\\") && i+1 < len(lines) {
				i++
				text += "\n" + lines[i]
				prose = append(prose, "")
			}
			cmds = append(cmds, docCommand{file: file, line: first, text: text})
		}
	}
	text := strings.Join(prose, "\n")
	for _, m := range inlineCode.FindAllStringSubmatchIndex(text, -1) {
		span := text[m[2]:m[3]]
		if strings.Contains(span, "\n\n") {
			continue
		}
		span = strings.Join(strings.Fields(span), " ")
		if inlineCmd.MatchString(span) && (strings.HasPrefix(span, "make ") || len(strings.Fields(span)) >= 3) {
			line := 1 + strings.Count(text[:m[0]], "\n")
			cmds = append(cmds, docCommand{file: file, line: line, text: span})
		}
	}
	sort.SliceStable(cmds, func(i, j int) bool { return cmds[i].line < cmds[j].line })
	return cmds
}

// docFiles are the Markdown files whose commands are checked.
func docFiles() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	return append([]string{filepath.Join(repoRoot, "README.md")}, files...), nil
}

// repoCommands returns every command of the repository's docs.
func repoCommands() ([]docCommand, error) {
	files, err := docFiles()
	if err != nil {
		return nil, err
	}
	var all []docCommand
	for _, f := range files {
		md, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(repoRoot, f)
		all = append(all, extractCommands(rel, string(md))...)
	}
	return all, nil
}
