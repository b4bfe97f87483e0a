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

// Package docs holds the test that runs every command line README.md and
// docs/*.md show through a check that fails when the command would: a make
// target that does not exist, a flag a program does not define or a value it
// refuses, a path that is not in the repository, a chart value that is not in
// values.yaml. Which lines count as commands, and which check each gets, is
// written at the top of commands_test.go.
package docs
