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

package chart

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// grants expands rules into "group/resource verb" entries.
func grants(rules []rbacv1.PolicyRule) map[string]bool {
	out := map[string]bool{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out[g+"/"+res+" "+v] = true
				}
			}
		}
	}
	return out
}

func sortedGrants(g map[string]bool) []string { return slices.Sorted(maps.Keys(g)) }

// clusterScoped lists the cluster-scoped resources the manager's rules name:
// Namespaces, TokenReviews and SubjectAccessReviews, and the plurals (with
// their subresources) of the CRDs whose scope is Cluster, read from the CRDs.
func clusterScoped(t *testing.T) map[string]bool {
	t.Helper()
	scoped := map[string]bool{"/namespaces": true, "authentication.k8s.io/tokenreviews": true, "authorization.k8s.io/subjectaccessreviews": true}
	files, err := filepath.Glob(crdDir + "/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("CRDs: %v %v", files, err)
	}
	for _, f := range files {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(readFile(t, f), &crd); err != nil {
			t.Fatal(err)
		}
		if crd.Spec.Scope == apiextensionsv1.ClusterScoped {
			for _, sub := range []string{"", "/status", "/finalizers"} {
				scoped[crd.Spec.Group+"/"+crd.Spec.Names.Plural+sub] = true
			}
		}
	}
	return scoped
}

// TestManagerRBACClusterWideByDefault: by default the manager's ClusterRole
// grants every generated rule, and the chart makes no namespaced manager Role.
func TestManagerRBACClusterWideByDefault(t *testing.T) {
	skipWithoutRole(t)
	m := render(t, "")
	var role rbacv1.ClusterRole
	m.one(t, "ClusterRole", "tokenmint-manager-role").into(t, &role)
	if got, want := sortedGrants(grants(role.Rules)), sortedGrants(grants(generatedRules(t))); !slices.Equal(got, want) {
		t.Errorf("the manager ClusterRole grants\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, o := range m.kind("Role") {
		if o.Metadata.Name == "tokenmint-manager-role" {
			t.Errorf("a manager Role in %s without rbac.namespaced", o.Metadata.Namespace)
		}
	}
}

// TestManagerRBACNamespaced: with rbac.namespaced the manager's ClusterRole
// keeps only the rules on cluster-scoped resources, and each namespace it
// serves (the release namespace and watchNamespaces) gets a Role, bound to
// its ServiceAccount, with all the others: together exactly the generated
// rules. The credentials namespace gets reading Secrets, and "default" the
// events about cluster-scoped objects, nothing more.
func TestManagerRBACNamespaced(t *testing.T) {
	skipWithoutRole(t)
	m := render(t, "rbac: {namespaced: true}\nwatchNamespaces: [team-a, team-b]\n")
	scoped := clusterScoped(t)
	generated := grants(generatedRules(t))

	var cluster rbacv1.ClusterRole
	m.one(t, "ClusterRole", "tokenmint-manager-role").into(t, &cluster)
	wantCluster, wantNamespaced := map[string]bool{}, map[string]bool{}
	for g := range generated {
		resource, _, _ := strings.Cut(g, " ")
		if scoped[resource] {
			wantCluster[g] = true
		} else {
			wantNamespaced[g] = true
		}
	}
	if got := grants(cluster.Rules); !maps.Equal(got, wantCluster) {
		t.Errorf("the manager ClusterRole grants\n%s\nwant only the cluster-scoped\n%s",
			strings.Join(sortedGrants(got), "\n"), strings.Join(sortedGrants(wantCluster), "\n"))
	}
	for _, must := range []string{"/secrets get", "/serviceaccounts/token create", "apps/deployments patch", "tokens.tokenmint.dev/accesstokens watch"} {
		if grants(cluster.Rules)[must] {
			t.Errorf("the manager ClusterRole still grants %s cluster-wide", must)
		}
		if !wantNamespaced[must] {
			t.Errorf("the generated rules lack %s: the test is out of date", must)
		}
	}

	roles := map[string]map[string]bool{}
	for _, o := range m.kind("Role") {
		if o.Metadata.Name != "tokenmint-manager-role" {
			continue
		}
		var r rbacv1.Role
		o.into(t, &r)
		roles[r.Namespace] = grants(r.Rules)
	}
	for _, ns := range []string{releaseNamespace, "team-a", "team-b"} {
		if got := roles[ns]; !maps.Equal(got, wantNamespaced) {
			t.Errorf("Role in %s grants\n%s\nwant\n%s", ns, strings.Join(sortedGrants(got), "\n"), strings.Join(sortedGrants(wantNamespaced), "\n"))
		}
	}
	if got, want := sortedGrants(roles["tokenmint-credentials"]), []string{"/secrets get", "/secrets list", "/secrets watch"}; !slices.Equal(got, want) {
		t.Errorf("Role in the credentials namespace grants %q, want %q", got, want)
	}
	if got, want := sortedGrants(roles["default"]), []string{"events.k8s.io/events create", "events.k8s.io/events patch"}; !slices.Equal(got, want) {
		t.Errorf("Role in default grants %q, want %q", got, want)
	}
	if len(roles) != 5 {
		t.Errorf("manager Roles in %v, want the release namespace, team-a, team-b, the credentials namespace and default", slices.Sorted(maps.Keys(roles)))
	}

	bound := map[string]bool{}
	for _, o := range m.kind("RoleBinding") {
		var b rbacv1.RoleBinding
		o.into(t, &b)
		if b.RoleRef.Kind != "Role" || b.RoleRef.Name != "tokenmint-manager-role" {
			continue
		}
		if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != release || b.Subjects[0].Namespace != releaseNamespace {
			t.Errorf("RoleBinding in %s binds %+v", b.Namespace, b.Subjects)
		}
		bound[b.Namespace] = true
	}
	if !maps.Equal(bound, map[string]bool{releaseNamespace: true, "team-a": true, "team-b": true, "tokenmint-credentials": true, "default": true}) {
		t.Errorf("manager Roles bound in %v", slices.Sorted(maps.Keys(bound)))
	}

	By := func(values, want string) {
		t.Helper()
		if msg := renderFails(t, values); !strings.Contains(msg, want) {
			t.Errorf("values %q refused with %q, want %q", values, msg, want)
		}
	}
	By("rbac: {namespaced: true}", "rbac.namespaced grants the manager's namespaced permissions only in watchNamespaces")

	// A served credentials namespace or default gets the full Role, once.
	m = render(t, "rbac: {namespaced: true}\nwatchNamespaces: [tokenmint-credentials, default]\n")
	count := map[string]int{}
	for _, o := range m.kind("Role") {
		if o.Metadata.Name == "tokenmint-manager-role" {
			var r rbacv1.Role
			o.into(t, &r)
			count[r.Namespace]++
			if !maps.Equal(grants(r.Rules), wantNamespaced) {
				t.Errorf("Role in served namespace %s is not the full namespaced Role", r.Namespace)
			}
		}
	}
	if !maps.Equal(count, map[string]int{releaseNamespace: 1, "tokenmint-credentials": 1, "default": 1}) {
		t.Errorf("manager Roles per namespace: %v", count)
	}
}
