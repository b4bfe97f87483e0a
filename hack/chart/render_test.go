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
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const (
	release          = "tokenmint"
	releaseNamespace = "tokenmint-system"
)

// object is one rendered manifest.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	raw []byte
}

// into decodes the manifest into a typed object.
func (o object) into(t *testing.T, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(o.raw, v); err != nil {
		t.Fatalf("%s %s: %v\n%s", o.Kind, o.Metadata.Name, err, o.raw)
	}
}

// manifests is what one `helm template` rendered.
type manifests []object

func (m manifests) kind(kind string) manifests {
	var out manifests
	for _, o := range m {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (m manifests) one(t *testing.T, kind, name string) object {
	t.Helper()
	for _, o := range m.kind(kind) {
		if o.Metadata.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return object{}
}

func (m manifests) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	m.one(t, "Deployment", release).into(t, d)
	return d
}

// helm returns bin/helm, which `make helm` (and `make test`) installs, or $HELM.
func helm(t *testing.T) string {
	t.Helper()
	h := os.Getenv("HELM")
	if h == "" {
		h = filepath.Join(repoRoot, "bin", "helm")
	}
	if _, err := os.Stat(h); err != nil {
		t.Fatalf("helm is missing: run `make helm` (make test does) or set $HELM: %v", err)
	}
	return h
}

// helmTemplate renders chart with helm and the given values, as YAML.
func helmTemplate(t *testing.T, chart, values string, args ...string) ([]byte, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(file, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(helm(t), append([]string{"template", release, chart,
		"--namespace", releaseNamespace, "--values", file, kubeVersionFlag(t)}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &renderError{err: err, stderr: stderr.String()}
	}
	return out, nil
}

type renderError struct {
	err    error
	stderr string
}

func (e *renderError) Error() string { return e.err.Error() + ": " + e.stderr }

// render renders the chart with values and parses every manifest.
func render(t *testing.T, values string) manifests {
	t.Helper()
	out, err := helmTemplate(t, chartDir, values)
	if err != nil {
		t.Fatalf("helm template with values\n%s\n%v", values, err)
	}
	var m manifests
	for _, doc := range splitDocuments(out) {
		o := object{raw: doc}
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if o.Kind != "" {
			m = append(m, o)
		}
	}
	return m
}

// renderFails renders the chart with values and returns helm's error message.
func renderFails(t *testing.T, values string) string {
	t.Helper()
	_, err := helmTemplate(t, chartDir, values)
	if err == nil {
		t.Fatalf("helm template accepted values\n%s", values)
	}
	return err.Error()
}

// TestDefaultImageIsWhatMakeImageBuilds checks that the chart runs, by default,
// the image `make image` names when IMG is left alone.
func TestDefaultImageIsWhatMakeImageBuilds(t *testing.T) {
	cmd := exec.Command("make", "--no-print-directory", "-s", "-C", repoRoot, "image-name")
	// An IMG in the environment would override the Makefile's default.
	cmd.Env = withoutEnv(os.Environ(), "IMG", "IMAGE_REPOSITORY", "MAKEFLAGS")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make image-name: %v", err)
	}
	want := strings.TrimSpace(string(out))
	d := render(t, "").deployment(t)
	if got := d.Spec.Template.Spec.Containers[0].Image; got != want {
		t.Errorf("the chart runs %s by default; make image builds %s", got, want)
	}
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		drop := false
		for _, n := range names {
			drop = drop || strings.HasPrefix(kv, n+"=")
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

func TestImageReference(t *testing.T) {
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(readFile(t, chartDir+"/Chart.yaml"), &chart); err != nil {
		t.Fatal(err)
	}
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ values, want string }{
		{"", "ghcr.io/tokenmint/tokenmint:" + chart.AppVersion},
		{"image: {registry: registry.example.com, repository: platform/tokenmint, tag: v2}", "registry.example.com/platform/tokenmint:v2"},
		{"image: {registry: '', repository: registry.example.com:5000/tokenmint}", "registry.example.com:5000/tokenmint:" + chart.AppVersion},
		{"image: {tag: v2, digest: " + digest + "}", "ghcr.io/tokenmint/tokenmint@" + digest},
	} {
		d := render(t, tc.values).deployment(t)
		if got := d.Spec.Template.Spec.Containers[0].Image; got != tc.want {
			t.Errorf("values %q: image %s, want %s", tc.values, got, tc.want)
		}
	}
	if msg := renderFails(t, "image: {digest: latest}"); !strings.Contains(msg, "digest") {
		t.Errorf("a digest that is not sha256:<hex> was refused with %q", msg)
	}
}

// TestCRDTemplatesMatchGenerated checks that the chart renders exactly the
// generated CRDs, with the chart's labels and, with crds.keep, the keep policy;
// and none with crds.enabled=false.
func TestCRDTemplatesMatchGenerated(t *testing.T) {
	generated := map[string]map[string]any{}
	for _, name := range yamlFiles(t, crdDir) {
		var crd map[string]any
		if err := yaml.Unmarshal(readFile(t, filepath.Join(crdDir, name)), &crd); err != nil {
			t.Fatal(err)
		}
		generated[crd["metadata"].(map[string]any)["name"].(string)] = crd
	}
	if len(generated) == 0 {
		t.Fatalf("no CRDs in %s: run 'make manifests'", crdDir)
	}
	for _, keep := range []bool{true, false} {
		values := "crds: {keep: false}"
		if keep {
			values = "" // the default
		}
		crds := render(t, values).kind("CustomResourceDefinition")
		if len(crds) != len(generated) {
			t.Fatalf("%d CRDs rendered, want the %d generated; %s", len(crds), len(generated), staleHint)
		}
		for _, o := range crds {
			want, ok := generated[o.Metadata.Name]
			if !ok {
				t.Errorf("CRD %s is not generated; %s", o.Metadata.Name, staleHint)
				continue
			}
			if got := o.Metadata.Annotations["helm.sh/resource-policy"]; keep != (got == "keep") {
				t.Errorf("crds.keep=%v: CRD %s has helm.sh/resource-policy %q", keep, o.Metadata.Name, got)
			}
			if o.Metadata.Labels["app.kubernetes.io/managed-by"] != "Helm" {
				t.Errorf("CRD %s lacks the chart's labels: %v", o.Metadata.Name, o.Metadata.Labels)
			}
			var got map[string]any
			if err := yaml.Unmarshal(o.raw, &got); err != nil {
				t.Fatal(err)
			}
			meta := got["metadata"].(map[string]any)
			delete(meta, "labels")
			if ann := meta["annotations"].(map[string]any); keep {
				delete(ann, "helm.sh/resource-policy")
			}
			if mustYAML(t, got) != mustYAML(t, want) {
				t.Errorf("CRD %s differs from config/crd/bases beyond the chart's labels and annotation; %s", o.Metadata.Name, staleHint)
			}
		}
	}
	if crds := render(t, "crds: {enabled: false}").kind("CustomResourceDefinition"); len(crds) != 0 {
		t.Errorf("crds.enabled=false rendered %d CRDs", len(crds))
	}
	if _, err := os.Stat(filepath.Join(chartDir, "crds")); !os.IsNotExist(err) {
		t.Errorf("dist/chart/crds exists (%v): Helm would install those CRDs once and never upgrade them", err)
	}
}

// allows reports whether rules grant verb on resource in tokenmint's group.
func allows(rules []rbacv1.PolicyRule, resource, verb string) bool {
	for _, r := range rules {
		if contains(r.APIGroups, "tokens.tokenmint.dev") && contains(r.Resources, resource) &&
			(contains(r.Verbs, verb) || contains(r.Verbs, "*")) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestAggregatedRoles(t *testing.T) {
	m := render(t, "")
	var view, edit rbacv1.ClusterRole
	m.one(t, "ClusterRole", "tokenmint-view").into(t, &view)
	m.one(t, "ClusterRole", "tokenmint-edit").into(t, &edit)

	for role, labels := range map[string]map[string]string{
		"tokenmint-view": view.Labels, "tokenmint-edit": edit.Labels,
	} {
		for _, to := range []string{"edit", "admin"} {
			if labels["rbac.authorization.k8s.io/aggregate-to-"+to] != "true" {
				t.Errorf("%s is not aggregated to %s: %v", role, to, labels)
			}
		}
	}
	if view.Labels["rbac.authorization.k8s.io/aggregate-to-view"] != "true" {
		t.Errorf("tokenmint-view is not aggregated to view: %v", view.Labels)
	}
	if _, ok := edit.Labels["rbac.authorization.k8s.io/aggregate-to-view"]; ok {
		t.Error("tokenmint-edit is aggregated to view: viewers could write")
	}

	read := []string{"get", "list", "watch"}
	write := []string{"create", "update", "patch", "delete"}
	for _, res := range []string{"accesstokens", "tokenissuers"} {
		for _, v := range read {
			if !allows(view.Rules, res, v) {
				t.Errorf("tokenmint-view cannot %s %s", v, res)
			}
		}
		for _, v := range write {
			if allows(view.Rules, res, v) {
				t.Errorf("tokenmint-view may %s %s", v, res)
			}
			if !allows(edit.Rules, res, v) {
				t.Errorf("tokenmint-edit cannot %s %s", v, res)
			}
		}
	}
	for _, v := range append(read, write...) {
		for _, role := range []rbacv1.ClusterRole{view, edit} {
			if allows(role.Rules, "clustertokenissuers", v) {
				t.Errorf("%s may %s clustertokenissuers", role.Name, v)
			}
		}
	}
	for _, role := range []rbacv1.ClusterRole{view, edit} {
		for _, r := range role.Rules {
			if !slicesEqual(r.APIGroups, []string{"tokens.tokenmint.dev"}) {
				t.Errorf("%s grants on API groups %v", role.Name, r.APIGroups)
			}
		}
	}

	m = render(t, "rbac: {aggregateToDefaultRoles: false}")
	for _, o := range m.kind("ClusterRole") {
		if o.Metadata.Name == "tokenmint-view" || o.Metadata.Name == "tokenmint-edit" {
			t.Errorf("rbac.aggregateToDefaultRoles=false rendered %s", o.Metadata.Name)
		}
	}
}

// TestClusterReaderRole: the chart's cluster-reader role reads the
// cluster-scoped kinds and nothing else, writes nothing, and is aggregated into
// no role a namespaced binding gives (view, edit, admin).
func TestClusterReaderRole(t *testing.T) {
	for _, values := range []string{"", "rbac: {aggregateToDefaultRoles: false}"} {
		var role rbacv1.ClusterRole
		render(t, values).one(t, "ClusterRole", "tokenmint-cluster-reader").into(t, &role)
		for _, res := range []string{"clustertokenissuers", "clusteraccesstokens", "clustertokenissuers/status", "clusteraccesstokens/status"} {
			for _, v := range []string{"get", "list", "watch"} {
				if !allows(role.Rules, res, v) {
					t.Errorf("tokenmint-cluster-reader cannot %s %s", v, res)
				}
			}
		}
		want := 12 // three verbs on four resources
		if got := grants(role.Rules); len(got) != want {
			t.Errorf("tokenmint-cluster-reader grants %v, want reading the cluster-scoped kinds only", sortedGrants(got))
		}
		for _, r := range role.Rules {
			if !slicesEqual(r.APIGroups, []string{"tokens.tokenmint.dev"}) {
				t.Errorf("tokenmint-cluster-reader grants on API groups %v", r.APIGroups)
			}
		}
		for _, to := range []string{"view", "edit", "admin"} {
			if _, ok := role.Labels["rbac.authorization.k8s.io/aggregate-to-"+to]; ok {
				t.Errorf("tokenmint-cluster-reader is aggregated to %s", to)
			}
		}
		if role.Labels["rbac.authorization.k8s.io/aggregate-to-cluster-reader"] != "true" {
			t.Errorf("tokenmint-cluster-reader is not aggregated to cluster-reader: %v", role.Labels)
		}
	}
}

// TestNotesNameClusterAccessTokens: NOTES shows how to watch ClusterAccessTokens
// beside AccessTokens, and the role that reads them.
func TestNotesNameClusterAccessTokens(t *testing.T) {
	out := notes(t, "")
	for _, want := range []string{"kubectl get clusteraccesstokens", "kubectl describe clusteraccesstoken <name>",
		"ClusterRole tokenmint-cluster-reader"} {
		if !strings.Contains(out, want) {
			t.Errorf("NOTES lack %q:\n%s", want, out)
		}
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// everything is ci/everything-values.yaml, which switches every optional part on.
func everything(t *testing.T) string {
	return string(readFile(t, chartDir+"/ci/everything-values.yaml"))
}

// namespaced are the kinds the chart creates in its namespace.
var namespaced = map[string]bool{
	"ServiceAccount": true, "Deployment": true, "Service": true, "Role": true, "RoleBinding": true,
	"PodDisruptionBudget": true, "ServiceMonitor": true, "PrometheusRule": true, "NetworkPolicy": true,
	"ConfigMap": true,
}

func TestNamespaceOverride(t *testing.T) {
	const ns = "platform-tokens"
	m := render(t, everything(t)+"\nnamespaceOverride: "+ns+"\n")
	for _, o := range m {
		if namespaced[o.Kind] && o.Metadata.Namespace != ns {
			t.Errorf("%s %s is in namespace %q, want %s", o.Kind, o.Metadata.Name, o.Metadata.Namespace, ns)
		}
		if !namespaced[o.Kind] && o.Metadata.Namespace != "" {
			t.Errorf("cluster-scoped %s %s has namespace %q", o.Kind, o.Metadata.Name, o.Metadata.Namespace)
		}
		for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
			if o.Kind != kind {
				continue
			}
			var b rbacv1.RoleBinding
			o.into(t, &b)
			for _, s := range b.Subjects {
				if s.Kind == "ServiceAccount" && s.Namespace != ns && s.Namespace != "monitoring" {
					t.Errorf("%s %s binds ServiceAccount %s/%s", kind, b.Name, s.Namespace, s.Name)
				}
			}
		}
	}
	if args := m.deployment(t).Spec.Template.Spec.Containers[0].Args; !contains(args, "--operator-namespace="+ns) {
		t.Errorf("the manager's arguments do not name its namespace: %v", args)
	}
	if msg := renderFails(t, "namespaceOverride: tokenmint-credentials"); !strings.Contains(msg, "credentialsNamespace must differ") {
		t.Errorf("credentialsNamespace equal to namespaceOverride was refused with %q", msg)
	}
}

func TestCommonLabels(t *testing.T) {
	m := render(t, everything(t)+"\ncommonLabels: {team: platform, example.com/cost-center: '42'}\n")
	for _, o := range m {
		if o.Kind == "ConfigMap" {
			continue // extraObjects: the user's own
		}
		if o.Metadata.Labels["team"] != "platform" || o.Metadata.Labels["example.com/cost-center"] != "42" {
			t.Errorf("%s %s lacks the common labels: %v", o.Kind, o.Metadata.Name, o.Metadata.Labels)
		}
	}
	d := m.deployment(t)
	if d.Spec.Template.Labels["example.com/cost-center"] != "42" {
		t.Errorf("the pods lack the common labels: %v", d.Spec.Template.Labels)
	}
	want := render(t, "").deployment(t).Spec.Selector.MatchLabels
	if got := d.Spec.Selector.MatchLabels; mustYAML(t, got) != mustYAML(t, want) {
		t.Errorf("common labels changed the Deployment's immutable selector: %v, was %v", got, want)
	}
	if msg := renderFails(t, "commonLabels: {app.kubernetes.io/name: other}"); !strings.Contains(msg, "app.kubernetes.io/name") {
		t.Errorf("a common label replacing the chart's was refused with %q", msg)
	}
}

func TestAnnotationsAndVolumes(t *testing.T) {
	d := render(t, `
deploymentAnnotations: {example.com/owner: platform}
podAnnotations: {example.com/scrape: "false"}
extraVolumes: [{name: corporate-ca, configMap: {name: corporate-ca}}]
extraVolumeMounts: [{name: corporate-ca, mountPath: /etc/tokenmint/ca, readOnly: true}]
`).deployment(t)
	if d.Annotations["example.com/owner"] != "platform" {
		t.Errorf("Deployment annotations %v", d.Annotations)
	}
	if d.Spec.Template.Annotations["example.com/scrape"] != "false" {
		t.Errorf("pod annotations %v", d.Spec.Template.Annotations)
	}
	if _, ok := d.Spec.Template.Annotations["example.com/owner"]; ok {
		t.Error("the Deployment's annotations reached the pods")
	}
	vols := d.Spec.Template.Spec.Volumes
	if len(vols) != 1 || vols[0].ConfigMap == nil || vols[0].ConfigMap.Name != "corporate-ca" {
		t.Errorf("volumes %+v", vols)
	}
	mounts := d.Spec.Template.Spec.Containers[0].VolumeMounts
	if len(mounts) != 1 || mounts[0].MountPath != "/etc/tokenmint/ca" || !mounts[0].ReadOnly {
		t.Errorf("volume mounts %+v", mounts)
	}

	plain := render(t, "").deployment(t)
	if len(plain.Spec.Template.Spec.Volumes) != 0 || len(plain.Spec.Template.Spec.Containers[0].VolumeMounts) != 0 || len(plain.Annotations) != 0 {
		t.Errorf("the defaults render volumes, mounts or annotations: %+v", plain.Spec.Template.Spec)
	}
}

func TestExtraObjects(t *testing.T) {
	m := render(t, `
extraObjects:
  - apiVersion: v1
    kind: ConfigMap
    metadata:
      name: '{{ include "tokenmint.fullname" . }}-from-map'
      namespace: '{{ .Release.Namespace }}'
    data: {release: '{{ .Release.Name }}'}
  - |
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: from-string
    data:
      replicas: "{{ .Values.replicaCount }}"
`)
	var fromMap, fromString corev1.ConfigMap
	m.one(t, "ConfigMap", "tokenmint-from-map").into(t, &fromMap)
	m.one(t, "ConfigMap", "from-string").into(t, &fromString)
	if fromMap.Namespace != releaseNamespace || fromMap.Data["release"] != release {
		t.Errorf("the map object was not templated: %+v", fromMap)
	}
	if fromString.Data["replicas"] != "1" {
		t.Errorf("the string object was not templated: %+v", fromString)
	}
}

func TestOpenShiftSecurityContext(t *testing.T) {
	plain := render(t, "").deployment(t).Spec.Template.Spec
	if u := plain.SecurityContext.RunAsUser; u == nil || *u != 65532 {
		t.Errorf("by default the pod runs as %v, want 65532", u)
	}

	spec := render(t, "openshift: true\npodSecurityContext: {fsGroup: 65532}\nsecurityContext: {runAsUser: 1000}").
		deployment(t).Spec.Template.Spec
	pod, container := spec.SecurityContext, spec.Containers[0].SecurityContext
	if pod.RunAsUser != nil || pod.RunAsGroup != nil || pod.FSGroup != nil || container.RunAsUser != nil {
		t.Errorf("openshift=true still pins a user or group: pod %+v, container %+v", pod, container)
	}
	if pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot || container.ReadOnlyRootFilesystem == nil || !*container.ReadOnlyRootFilesystem {
		t.Errorf("openshift=true dropped more than the user and group: pod %+v, container %+v", pod, container)
	}

	spec = render(t, "podSecurityContext: {runAsUser: null}").deployment(t).Spec.Template.Spec
	if spec.SecurityContext.RunAsUser != nil || spec.SecurityContext.RunAsGroup == nil {
		t.Errorf("runAsUser: null gave %+v", spec.SecurityContext)
	}
}

// ingressPorts maps each port the policy admits to the peers it admits.
func ingressPorts(np networkingv1.NetworkPolicy) map[int32][]networkingv1.NetworkPolicyPeer {
	ports := map[int32][]networkingv1.NetworkPolicyPeer{}
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			ports[p.Port.IntVal] = r.From
		}
	}
	return ports
}

// By default the policy exists and closes the metrics port to every pod
// (each request there may cost a TokenReview), leaving the health port to the
// kubelet.
func TestNetworkPolicyDefault(t *testing.T) {
	var np networkingv1.NetworkPolicy
	render(t, "").one(t, "NetworkPolicy", "tokenmint").into(t, &np)
	ports := ingressPorts(np)
	if _, open := ports[8443]; open || len(ports) != 1 {
		t.Errorf("default policy admits %v, want the health port only", ports)
	}
	if from, ok := ports[8081]; !ok || len(from) != 0 {
		t.Errorf("health port admits %v, want anyone (kubelet probes)", from)
	}
	if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
		t.Errorf("policy types %v, want Ingress only (egress as it was)", np.Spec.PolicyTypes)
	}
	if n := len(render(t, "networkPolicy: {enabled: false}").kind("NetworkPolicy")); n != 0 {
		t.Errorf("%d NetworkPolicies with networkPolicy.enabled=false, want none", n)
	}
}

func TestNetworkPolicy(t *testing.T) {
	m := render(t, `
networkPolicy:
  metricsFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}, podSelector: {matchLabels: {app.kubernetes.io/name: prometheus}}}]
metrics: {port: 9443}
healthProbe: {port: 9081}
`)
	var np networkingv1.NetworkPolicy
	m.one(t, "NetworkPolicy", "tokenmint").into(t, &np)
	pods := m.deployment(t).Spec.Template.Labels
	for k, v := range np.Spec.PodSelector.MatchLabels {
		if pods[k] != v {
			t.Errorf("the policy selects %s=%s, which the manager's pods lack", k, v)
		}
	}
	if len(np.Spec.PodSelector.MatchLabels) == 0 {
		t.Error("the policy selects every pod of the namespace")
	}
	if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress {
		t.Errorf("policy types %v, want Ingress only", np.Spec.PolicyTypes)
	}
	ports := ingressPorts(np)
	if len(ports) != 2 {
		t.Errorf("ingress to ports %v, want the metrics and health ports only", ports)
	}
	if from, ok := ports[9443]; !ok || len(from) != 1 || from[0].NamespaceSelector == nil || from[0].PodSelector == nil ||
		from[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" ||
		from[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != "prometheus" {
		t.Errorf("metrics port open to %+v, want metricsFrom", from)
	}
	if _, ok := ports[9081]; !ok {
		t.Error("the health port is closed to the kubelet's probes")
	}

	m = render(t, "networkPolicy: {metricsFrom: [{namespaceSelector: {}}]}\nmetrics: {enabled: false}")
	m.one(t, "NetworkPolicy", "tokenmint").into(t, &np)
	if ports := ingressPorts(np); len(ports) != 1 {
		t.Errorf("with metrics disabled the policy admits %v, want the health port only", ports)
	}

	m = render(t, "networkPolicy: {enabled: true, egress: [{ports: [{port: 443}]}]}")
	m.one(t, "NetworkPolicy", "tokenmint").into(t, &np)
	types := []string{}
	for _, pt := range np.Spec.PolicyTypes {
		types = append(types, string(pt))
	}
	if !contains(types, "Egress") || len(np.Spec.Egress) != 1 {
		t.Errorf("egress rules gave policy types %v and egress %+v", np.Spec.PolicyTypes, np.Spec.Egress)
	}
}

// notes renders NOTES.txt with values. `helm template` leaves NOTES.txt out and
// `helm install --dry-run` needs a cluster, so a copy of the chart renders it as
// a ConfigMap.
func notes(t *testing.T, values string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "chart")
	if err := os.CopyFS(dir, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	tpl := "{{- define \"notes-under-test\" }}" + string(readFile(t, chartDir+"/templates/NOTES.txt")) + "{{- end }}\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include \"notes-under-test\" . | toJson }}\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "notes-under-test.yaml"), []byte(tpl), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := helmTemplate(t, dir, values, "--show-only", "templates/notes-under-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(out, &cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data["notes"]
}

func TestNotesWarnWhenNoOneMayScrape(t *testing.T) {
	const warning = "every scrape is refused"
	for _, tc := range []struct {
		values string
		warns  bool
	}{
		{"serviceMonitor: {enabled: true}", true},
		{"serviceMonitor: {enabled: true}\nmetrics: {readers: [{name: prometheus, namespace: monitoring}]}", false},
		{"serviceMonitor: {enabled: true}\nmetrics: {secure: false}", false},
		{"", false},
	} {
		text := notes(t, tc.values)
		if strings.Contains(text, warning) != tc.warns {
			t.Errorf("values %q: warning %v, want %v; notes:\n%s", tc.values, !tc.warns, tc.warns, text)
		}
	}
	if text := notes(t, ""); !strings.Contains(text, "No ServiceAccount may scrape them yet") {
		t.Errorf("the default notes do not say that no one may scrape yet:\n%s", text)
	}
	if text := notes(t, ""); !strings.Contains(text, "helm upgrade upgrades them") {
		t.Errorf("the notes do not say how CRDs are upgraded:\n%s", text)
	}
}

func TestNotesSayWhoReachesTheMetricsPort(t *testing.T) {
	const closed, timeout = "closes the metrics port to every pod", "scrapes time out"
	for _, tc := range []struct {
		values           string
		closed, timesOut bool
	}{
		{"", true, false},
		{"serviceMonitor: {enabled: true}", true, true},
		{"networkPolicy: {metricsFrom: [{namespaceSelector: {}}]}\nserviceMonitor: {enabled: true}", false, false},
		{"networkPolicy: {enabled: false}", false, false},
		{"hostNetwork: true", false, false},
	} {
		text := notes(t, tc.values)
		if strings.Contains(text, closed) != tc.closed || strings.Contains(text, timeout) != tc.timesOut {
			t.Errorf("values %q: want closed=%v, scrapes time out=%v; notes:\n%s", tc.values, tc.closed, tc.timesOut, text)
		}
	}
}

// TestShards checks that sharding is off by default and that shards passes
// --shard-ranges, whose Leases the release namespace's Role already covers.
func TestShards(t *testing.T) {
	hasShardFlag := func(d *appsv1.Deployment) (string, bool) {
		for _, a := range d.Spec.Template.Spec.Containers[0].Args {
			if v, ok := strings.CutPrefix(a, "--shard-ranges="); ok {
				return v, true
			}
		}
		return "", false
	}
	if v, ok := hasShardFlag(render(t, "").deployment(t)); ok {
		t.Errorf("sharding on by default: --shard-ranges=%s", v)
	}
	m := render(t, "replicaCount: 3\nshards: 16\n")
	d := m.deployment(t)
	if v, ok := hasShardFlag(d); !ok || v != "16" {
		t.Errorf("--shard-ranges=%q, want 16", v)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", d.Spec.Replicas)
	}
	var leases []string
	for _, o := range m.kind("Role") {
		var r rbacv1.Role
		o.into(t, &r)
		for _, rule := range r.Rules {
			if contains(rule.APIGroups, "coordination.k8s.io") && contains(rule.Resources, "leases") {
				leases = append(leases, r.Name)
				for _, verb := range []string{"get", "list", "create", "update", "delete"} {
					if !contains(rule.Verbs, verb) {
						t.Errorf("Role %s does not allow %s on Leases, which sharding needs", r.Name, verb)
					}
				}
			}
		}
	}
	if len(leases) != 1 {
		t.Errorf("Roles granting Leases: %v, want the leader election Role only", leases)
	}
	if msg := renderFails(t, "shards: -1"); !strings.Contains(msg, "shards") {
		t.Errorf("negative shards refused with %q", msg)
	}
}
