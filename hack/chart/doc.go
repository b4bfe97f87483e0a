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

// Package chart holds the tests that keep the Helm chart in dist/chart in step
// with the generated manifests (the CRDs in config/crd/bases and the manager's
// rules in config/rbac/role.yaml, granted cluster-wide or, with rbac.namespaced,
// split into cluster-scoped rules and Roles per served namespace) and with its own values.yaml (the README
// is generated from its comments), and the tests that render the chart with
// helm and check what each value does. sync.sh, beside this file, brings the
// chart in step (`make chart-sync`); readme/ is the README's generator.
package chart
