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

// Command previous makes (once, cached outside the repository) the tree and
// the manager binary of the previous release, which the real-node suite
// releases to its registry and upgrades from (`make previous-release`, before
// go test's timeout starts).
package main

import (
	"flag"
	"fmt"
	"os"

	testrelease "github.com/tokenmint/tokenmint/test/release"
)

func main() {
	commit := flag.String("commit", testrelease.PreviousCommit, "the previous release's commit")
	version := flag.String("version", testrelease.PreviousVersion, "the previous release's version, stamped into its manager")
	flag.Parse()
	if _, err := testrelease.Prepare(*commit, *version, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hack/release/previous:", err)
		os.Exit(1)
	}
}
