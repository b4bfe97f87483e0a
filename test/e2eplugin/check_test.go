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

package e2eplugin

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kt "github.com/tokenmint/tokenmint/internal/plugin"
)

var _ = Describe("check", Ordered, func() {
	It("reports the CRDs missing before tokenmint is installed", func() {
		Expect(beforeCRDs.code).To(Equal(1))
		Expect(beforeCRDs.stdout).To(MatchRegexp(`AccessToken\s+no\s+-`))
		Expect(beforeCRDs.stdout).To(MatchRegexp(`ClusterTokenIssuer\s+no\s+-`))
		Expect(beforeCRDs.stdout).To(MatchRegexp(`ClusterAccessToken\s+no\s+-`))
		Expect(beforeCRDs.stdout).To(ContainSubstring("the AccessToken CRD is not installed"))
		Expect(beforeCRDs.stderr).To(Equal("error: problems found\n"))

		Expect(statusBeforeCRDs.code).To(Equal(1))
		Expect(statusBeforeCRDs.stderr).To(ContainSubstring("tokenmint's CRDs are not installed in this cluster (kubectl tokenmint check tells more)"))
	})

	It("reports the CRDs present and served, and that no manager runs", func() {
		r := plugin("check", "-o", "json")
		Expect(r.code).To(Equal(1), r.stderr)
		var v kt.CheckView
		Expect(json.Unmarshal([]byte(r.stdout), &v)).To(Succeed())
		Expect(v.CRDs).To(ConsistOf(
			kt.CRDView{Kind: "AccessToken", Installed: true, Versions: []string{"v1alpha1"}},
			kt.CRDView{Kind: "TokenIssuer", Installed: true, Versions: []string{"v1alpha1"}},
			kt.CRDView{Kind: "ClusterTokenIssuer", Installed: true, Versions: []string{"v1alpha1"}},
			kt.CRDView{Kind: "ClusterAccessToken", Installed: true, Versions: []string{"v1alpha1"}},
		))
		Expect(v.Managers).To(BeEmpty())
		Expect(v.Problems).To(ConsistOf(ContainSubstring("no manager Deployment found")))
	})

	It("finds the chart's manager Deployment, its credentials namespace and who may read metrics", func() {
		labels := map[string]string{"app.kubernetes.io/name": "tokenmint", "app.kubernetes.io/instance": "tokenmint"}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "tokenmint", Namespace: operatorNamespace, Labels: map[string]string{
				"app.kubernetes.io/name": "tokenmint", "app.kubernetes.io/instance": "tokenmint",
				"app.kubernetes.io/component": "controller-manager"}},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "manager", Image: "registry.example.com/tokenmint:v1.0.0",
						Args: []string{"--operator-namespace=" + operatorNamespace, "--credentials-namespace=team-credentials"}}}}},
			},
		}
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, d)

		By("a Deployment without a ready replica is a problem")
		r := plugin("check")
		Expect(r.code).To(Equal(1))
		Expect(r.stdout).To(MatchRegexp(`tokenmint-system/tokenmint\s+0/1\s+registry.example.com/tokenmint:v1.0.0\s+team-credentials`))
		Expect(r.stdout).To(ContainSubstring("no manager Deployment has a ready replica"))

		By("a ready one is not")
		d.Status = appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, UpdatedReplicas: 1}
		Expect(k8sClient.Status().Update(ctx, d)).To(Succeed())
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "tokenmint-metrics-reader",
			Labels: map[string]string{"app.kubernetes.io/name": "tokenmint"}},
			Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
		Expect(k8sClient.Create(ctx, role)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, role)

		r = plugin("check")
		Expect(r.code).To(Equal(0), r.output())
		Expect(r.stdout).To(MatchRegexp(`tokenmint-system/tokenmint\s+1/1`))
		Expect(r.stdout).To(ContainSubstring("ClusterRole tokenmint-metrics-reader: nobody"))
		Expect(r.stdout).To(MatchRegexp(`get\s+secrets\s+team-credentials\s+yes\s+test --cluster`))
		Expect(r.stdout).To(ContainSubstring("No problems found."))

		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "tokenmint-metrics-reader-rolebinding"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: "monitoring"}}}
		Expect(k8sClient.Create(ctx, binding)).To(Succeed())
		DeferCleanup(k8sClient.Delete, ctx, binding)
		r = plugin("check")
		Expect(r.stdout).To(ContainSubstring("ClusterRole tokenmint-metrics-reader: ServiceAccount monitoring/prometheus"))
	})

	It("tells a user with little RBAC what they may do", func() {
		ns := newNamespace()
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: ns},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"tokens.tokenmint.dev"}, Resources: []string{"accesstokens"}, Verbs: []string{"get", "list"}}}}
		Expect(k8sClient.Create(ctx, role)).To(Succeed())
		Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "reader"},
			Subjects: []rbacv1.Subject{{Kind: "User", Name: "jane"}}})).To(Succeed())

		r := plugin("check", "-n", ns, "--as", "jane")
		Expect(r.code).To(Equal(0), "what cannot be seen is reported, not counted as a problem")
		Expect(r.stdout).To(MatchRegexp(`get\s+accesstokens\s+` + ns + `\s+yes`))
		Expect(r.stdout).To(MatchRegexp(`list\s+accesstokens\s+` + ns + `\s+yes`))
		Expect(r.stdout).To(MatchRegexp(`patch\s+accesstokens\s+` + ns + `\s+no\s+renew`))
		Expect(r.stdout).To(MatchRegexp(`get\s+secrets\s+` + ns + `\s+no`))
		Expect(r.stdout).To(ContainSubstring("cannot list Deployments: forbidden"))
		Expect(r.stdout).To(ContainSubstring("cannot list RBAC: forbidden"))
		Expect(r.stdout).To(MatchRegexp(`AccessToken\s+yes\s+v1alpha1`), "discovery is open to every user")
	})
})

var _ = Describe("version", func() {
	It("shows the stamped version and the served versions", func() {
		r := plugin("version")
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(ContainSubstring("Plugin: " + pluginVersion + "\n"))
		Expect(r.stdout).To(MatchRegexp(`Kubernetes: v1\.\d+`))
		Expect(r.stdout).To(ContainSubstring("AccessToken: served as v1alpha1"))
		Expect(r.stdout).To(ContainSubstring("ClusterTokenIssuer: served as v1alpha1"))
		Expect(r.stdout).To(ContainSubstring("ClusterAccessToken: served as v1alpha1"))
	})

	It("runs as kubectl tokenmint, found on the PATH by kubectl", func() {
		bin := filepath.Join(dir, "path")
		Expect(os.MkdirAll(bin, 0o755)).To(Succeed())
		Expect(os.Symlink(binary, filepath.Join(bin, "kubectl-tokenmint"))).To(Succeed())
		cmd := exec.Command(cp.Kubectl(), "tokenmint", "version", "-o", "json", "--kubeconfig", admin)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		r := run(cmd)
		Expect(r.code).To(Equal(0), r.stderr)
		var v kt.VersionView
		Expect(json.Unmarshal([]byte(r.stdout), &v)).To(Succeed())
		Expect(v.Plugin).To(Equal(pluginVersion))
		Expect(v.CRDs).To(ContainElement(kt.CRDView{Kind: "AccessToken", Installed: true, Versions: []string{"v1alpha1"}}))
	})
})
