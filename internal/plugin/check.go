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

package plugin

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// Labels of the manager's Deployment: the chart sets app.kubernetes.io/name
// and app.kubernetes.io/component, the kustomize layout (config/manager) the
// name and control-plane.
const (
	labelName          = "app.kubernetes.io/name"
	labelComponent     = "app.kubernetes.io/component"
	labelControlPlane  = "control-plane"
	managerName        = "tokenmint"
	managerComponent   = "controller-manager"
	credentialsFlag    = "--credentials-namespace="
	defaultCredentials = "tokenmint-credentials"
	defaultOperator    = "tokenmint-system"
	// fingerprintKeySecret is the manager's default --fingerprint-key-secret.
	fingerprintKeySecret = "tokenmint-fingerprint-key"
)

// kinds are tokenmint's kinds, with their resources.
var kinds = []struct{ kind, resource string }{
	{"AccessToken", "accesstokens"},
	{"TokenIssuer", "tokenissuers"},
	{"ClusterTokenIssuer", "clustertokenissuers"},
	{"ClusterAccessToken", "clusteraccesstokens"},
}

// CheckView is what check finds.
type CheckView struct {
	CRDs []CRDView `json:"crds"`
	// Managers are the manager Deployments found; ManagersError says why none
	// could be looked for.
	Managers      []ManagerView     `json:"managers"`
	ManagersError string            `json:"managersError,omitempty"`
	Permissions   []PermissionView  `json:"permissions"`
	MetricsRoles  []MetricsRoleView `json:"metricsReaders"`
	MetricsError  string            `json:"metricsReadersError,omitempty"`
	Problems      []string          `json:"problems"`
}

// CRDView is one of tokenmint's kinds as the apiserver serves it.
type CRDView struct {
	Kind      string   `json:"kind"`
	Installed bool     `json:"installed"`
	Versions  []string `json:"servedVersions,omitempty"`
}

// ManagerView is one manager Deployment.
type ManagerView struct {
	Namespace            string `json:"namespace"`
	Name                 string `json:"name"`
	Replicas             int32  `json:"replicas"`
	ReadyReplicas        int32  `json:"readyReplicas"`
	Image                string `json:"image,omitempty"`
	CredentialsNamespace string `json:"credentialsNamespace"`
}

// PermissionView is one permission of the caller.
type PermissionView struct {
	Verb      string `json:"verb"`
	Resource  string `json:"resource"`
	Namespace string `json:"namespace,omitempty"`
	For       string `json:"for"`
	Allowed   bool   `json:"allowed"`
	Error     string `json:"error,omitempty"`
}

// MetricsRoleView is a ClusterRole of tokenmint's that lets its holders read
// the metrics endpoint, and who holds it.
type MetricsRoleView struct {
	ClusterRole string   `json:"clusterRole"`
	Subjects    []string `json:"subjects"`
}

type checkOptions struct {
	*Options
	output string
}

func newCheckCommand(o *Options) *cobra.Command {
	c := &checkOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the installation: CRDs, the manager Deployment, your permissions, metrics readers",
		Long: `check looks at what tokenmint needs and what you may do: whether its CRDs are installed and which
versions are served, whether the manager Deployment is running, which of tokenmint's operations your RBAC allows
(SelfSubjectAccessReview), and who may read the manager's metrics. It exits non-zero when a CRD is missing or no
manager is ready.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := outputFormat(c.output); err != nil {
				return err
			}
			return c.run(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&c.output, "output", "o", "", "json or yaml; a readable report when left out")
	return cmd
}

func (c *checkOptions) run(ctx context.Context) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	dc, err := c.Discovery()
	if err != nil {
		return err
	}
	ns, err := c.Namespace()
	if err != nil {
		return err
	}
	v := &CheckView{Problems: []string{}}
	if v.CRDs, err = servedKinds(dc); err != nil {
		return err
	}
	for _, crd := range v.CRDs {
		if !crd.Installed {
			v.Problems = append(v.Problems, "the "+crd.Kind+" CRD is not installed")
		}
	}
	v.Managers, err = findManagers(ctx, cl)
	if err != nil {
		v.ManagersError = "cannot list Deployments: " + reasonOf(err)
	} else if !slices.ContainsFunc(v.Managers, func(m ManagerView) bool { return m.ReadyReplicas > 0 }) {
		if len(v.Managers) == 0 {
			v.Problems = append(v.Problems, "no manager Deployment found (labelled "+labelName+"="+managerName+")")
		} else {
			v.Problems = append(v.Problems, "no manager Deployment has a ready replica")
		}
	}
	credentials := defaultCredentials
	if len(v.Managers) > 0 {
		credentials = v.Managers[0].CredentialsNamespace
	}
	v.Permissions = permissions(ctx, cl, ns, credentials)
	v.MetricsRoles, err = metricsReaders(ctx, cl)
	if err != nil {
		v.MetricsError = "cannot list RBAC: " + reasonOf(err)
	}
	if c.output != "" {
		if err := printStructured(c.Out, c.output, v); err != nil {
			return err
		}
	} else {
		printCheck(c.Out, v, ns)
	}
	if len(v.Problems) > 0 {
		return errProblems
	}
	return nil
}

// servedKinds asks discovery, which every authenticated user may read, which
// versions serve each of tokenmint's kinds.
func servedKinds(dc discovery.DiscoveryInterface) ([]CRDView, error) {
	groups, err := dc.ServerGroups()
	if err != nil {
		return nil, fmt.Errorf("discovering the API groups: %w", err)
	}
	served := map[string][]string{}
	for _, g := range groups.Groups {
		if g.Name != tokensv1alpha1.GroupVersion.Group {
			continue
		}
		for _, gv := range g.Versions {
			resources, err := dc.ServerResourcesForGroupVersion(gv.GroupVersion)
			if err != nil {
				return nil, fmt.Errorf("discovering %s: %w", gv.GroupVersion, err)
			}
			for _, r := range resources.APIResources {
				if !strings.Contains(r.Name, "/") {
					served[r.Kind] = append(served[r.Kind], gv.Version)
				}
			}
		}
	}
	var out []CRDView
	for _, k := range kinds {
		out = append(out, CRDView{Kind: k.kind, Installed: len(served[k.kind]) > 0, Versions: served[k.kind]})
	}
	return out, nil
}

// findManagers lists the manager Deployments of every namespace.
func findManagers(ctx context.Context, c client.Client) ([]ManagerView, error) {
	list := &appsv1.DeploymentList{}
	if err := c.List(ctx, list, client.MatchingLabels{labelName: managerName}); err != nil {
		return nil, err
	}
	var out []ManagerView
	for i := range list.Items {
		d := &list.Items[i]
		if d.Labels[labelComponent] != managerComponent && d.Labels[labelControlPlane] != managerComponent {
			continue
		}
		m := ManagerView{Namespace: d.Namespace, Name: d.Name, ReadyReplicas: d.Status.ReadyReplicas,
			Replicas: 1, CredentialsNamespace: defaultCredentials}
		if d.Spec.Replicas != nil {
			m.Replicas = *d.Spec.Replicas
		}
		for _, ct := range d.Spec.Template.Spec.Containers {
			for _, arg := range slices.Concat(ct.Command, ct.Args) {
				if v, ok := strings.CutPrefix(arg, credentialsFlag); ok && v != "" {
					m.CredentialsNamespace = v
					m.Image = ct.Image
				}
			}
		}
		if m.Image == "" && len(d.Spec.Template.Spec.Containers) > 0 {
			m.Image = d.Spec.Template.Spec.Containers[0].Image
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name })
	return out, nil
}

// installation is where the manager keeps its Secrets and reads
// ClusterTokenIssuers' credentials: what its Deployment says when it can be
// read, else the defaults.
func installation(ctx context.Context, c client.Client) (operatorNS, credentialsNS string) {
	managers, err := findManagers(ctx, c)
	if err != nil || len(managers) == 0 {
		return defaultOperator, defaultCredentials
	}
	return managers[0].Namespace, managers[0].CredentialsNamespace
}

// permissions asks the apiserver which of tokenmint's operations the caller
// may perform.
func permissions(ctx context.Context, c client.Client, namespace, credentials string) []PermissionView {
	group := tokensv1alpha1.GroupVersion.Group
	checks := []struct {
		verb, group, resource, namespace, use string
	}{
		{"get", group, "accesstokens", namespace, "status"},
		{"list", group, "accesstokens", namespace, "status --all, renew --all"},
		{"patch", group, "accesstokens", namespace, "renew"},
		{"list", "", "events", namespace, "status (events)"},
		{"get", "", "secrets", namespace, "status (keys), inspect secret, test (TokenIssuer)"},
		{"get", group, "tokenissuers", namespace, "test"},
		{"get", group, "clustertokenissuers", "", "test --cluster"},
		{"get", group, "clusteraccesstokens", "", "status --cluster"},
		{"patch", group, "clusteraccesstokens", "", "renew --cluster"},
		{"get", "", "secrets", credentials, "test --cluster"},
	}
	var out []PermissionView
	for _, ch := range checks {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: ch.verb, Group: ch.group, Resource: ch.resource, Namespace: ch.namespace}}}
		p := PermissionView{Verb: ch.verb, Resource: ch.resource, Namespace: ch.namespace, For: ch.use}
		if err := c.Create(ctx, review); err != nil {
			p.Error = reasonOf(err)
		} else {
			p.Allowed = review.Status.Allowed
		}
		out = append(out, p)
	}
	return out
}

// metricsReaders finds tokenmint's ClusterRoles that grant the metrics
// endpoint and the subjects bound to them.
func metricsReaders(ctx context.Context, c client.Client) ([]MetricsRoleView, error) {
	roles := &rbacv1.ClusterRoleList{}
	if err := c.List(ctx, roles); err != nil {
		return nil, err
	}
	var names []string
	for _, r := range roles.Items {
		if r.Labels[labelName] != managerName && !strings.HasPrefix(r.Name, managerName) {
			continue
		}
		if slices.ContainsFunc(r.Rules, func(rule rbacv1.PolicyRule) bool {
			return slices.Contains(rule.NonResourceURLs, "/metrics") &&
				(slices.Contains(rule.Verbs, "get") || slices.Contains(rule.Verbs, "*"))
		}) {
			names = append(names, r.Name)
		}
	}
	sort.Strings(names)
	bindings := &rbacv1.ClusterRoleBindingList{}
	if err := c.List(ctx, bindings); err != nil {
		return nil, err
	}
	out := []MetricsRoleView{}
	for _, name := range names {
		v := MetricsRoleView{ClusterRole: name, Subjects: []string{}}
		for _, b := range bindings.Items {
			if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.Name != name {
				continue
			}
			for _, s := range b.Subjects {
				subject := s.Kind + " " + s.Name
				if s.Namespace != "" {
					subject = s.Kind + " " + s.Namespace + "/" + s.Name
				}
				v.Subjects = append(v.Subjects, subject)
			}
		}
		sort.Strings(v.Subjects)
		out = append(out, v)
	}
	return out, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printCheck(out io.Writer, v *CheckView, namespace string) {
	fmt.Fprintln(out, "CRDs:")
	t := newTable(out, "  ", "KIND", "INSTALLED", "SERVED VERSIONS")
	for _, crd := range v.CRDs {
		t.row("  ", crd.Kind, yesNo(crd.Installed), orDash(strings.Join(crd.Versions, ", ")))
	}
	t.flush()

	fmt.Fprintln(out, "Manager:")
	switch {
	case v.ManagersError != "":
		fmt.Fprintln(out, "  "+oneLine(v.ManagersError))
	case len(v.Managers) == 0:
		fmt.Fprintf(out, "  no Deployment labelled %s=%s and %s=%s (or %s=%s)\n", labelName, managerName,
			labelComponent, managerComponent, labelControlPlane, managerComponent)
	default:
		mt := newTable(out, "  ", "DEPLOYMENT", "READY", "IMAGE", "CREDENTIALS NAMESPACE")
		for _, m := range v.Managers {
			mt.row("  ", m.Namespace+"/"+m.Name, fmt.Sprintf("%d/%d", m.ReadyReplicas, m.Replicas), orDash(m.Image), m.CredentialsNamespace)
		}
		mt.flush()
	}

	fmt.Fprintf(out, "Your permissions (namespace %s):\n", namespace)
	pt := newTable(out, "  ", "VERB", "RESOURCE", "NAMESPACE", "ALLOWED", "NEEDED BY")
	for _, p := range v.Permissions {
		allowed := yesNo(p.Allowed)
		if p.Error != "" {
			allowed = "unknown: " + p.Error
		}
		pt.row("  ", p.Verb, p.Resource, orDash(p.Namespace), allowed, p.For)
	}
	pt.flush()

	fmt.Fprintln(out, "Metrics readers:")
	switch {
	case v.MetricsError != "":
		fmt.Fprintln(out, "  "+oneLine(v.MetricsError))
	case len(v.MetricsRoles) == 0:
		fmt.Fprintln(out, "  no tokenmint ClusterRole grants the metrics endpoint (metrics disabled, or not served over HTTPS)")
	default:
		for _, r := range v.MetricsRoles {
			subjects := "nobody: set the chart's metrics.readers to let Prometheus scrape"
			if len(r.Subjects) > 0 {
				subjects = strings.Join(r.Subjects, ", ")
			}
			fmt.Fprintf(out, "  ClusterRole %s: %s\n", r.ClusterRole, oneLine(subjects))
		}
	}

	if len(v.Problems) == 0 {
		fmt.Fprintln(out, "No problems found.")
		return
	}
	fmt.Fprintln(out, "Problems:")
	for _, p := range v.Problems {
		fmt.Fprintln(out, "  "+p)
	}
}
