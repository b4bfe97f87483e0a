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

package controller

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

func TestClusterAccessTokenTargetsOnlyServedAllowedNamespaces(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	ns := func(name string, labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	cti := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "shared"},
		Spec: tokensv1alpha1.ClusterTokenIssuerSpec{AllowedNamespaces: &tokensv1alpha1.AllowedNamespaces{Names: []string{"a", "b", "unwatched"}}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cti,
		ns("a", map[string]string{"team": "blue"}), ns("b", nil), ns("unwatched", map[string]string{"team": "blue"}),
		ns("not-allowed", map[string]string{"team": "blue"}), ns("other", map[string]string{"team": "red"})).Build()
	r := &ClusterAccessTokenReconciler{Client: c, Metadata: c, WatchNamespaces: []string{"a", "b", "not-allowed"}}
	cat := &tokensv1alpha1.ClusterAccessToken{Spec: tokensv1alpha1.ClusterAccessTokenSpec{
		IssuerRef: tokensv1alpha1.ClusterIssuerReference{Name: "shared"},
		Namespaces: tokensv1alpha1.TargetNamespaces{Names: []string{"b"},
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}}}}}
	set, err := r.targets(context.Background(), cat)
	if err != nil {
		t.Fatal(err)
	}
	targets, failures := set.write, set.failures
	if !slices.Equal(targets, []string{"a", "b"}) {
		t.Errorf("targets %v, want [a b]", targets)
	}
	if set.closed != nil || len(set.keep) > 0 {
		t.Errorf("closed %v, keep %v with the issuer present", set.closed, set.keep)
	}
	want := map[string]string{
		"unwatched":   "the manager does not serve this namespace (--watch-namespaces)",
		"not-allowed": `ClusterTokenIssuer "shared" does not allow this namespace`,
	}
	if len(failures) != len(want) {
		t.Fatalf("failures %v", failures)
	}
	for _, f := range failures {
		if want[f.Name] != f.Message {
			t.Errorf("failure %s: %q, want %q", f.Name, f.Message, want[f.Name])
		}
	}
}

// TestClusterAccessTokenFailsClosed: without its issuer, or with an issuer that
// binds parameters to each namespace, a ClusterAccessToken writes nowhere and
// keeps (never writes) the Secrets of the selected namespaces.
func TestClusterAccessTokenFailsClosed(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	bound := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "bound"},
		Spec: tokensv1alpha1.ClusterTokenIssuerSpec{IssuerSpec: tokensv1alpha1.IssuerSpec{Parameters: []tokensv1alpha1.ParameterSpec{
			{Name: "installation_id", Type: tokensv1alpha1.ParameterInteger, FromNamespaceLabel: "example.com/installation"}}}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(bound,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unwatched"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unselected"}}).Build()
	r := &ClusterAccessTokenReconciler{Client: c, Metadata: c, WatchNamespaces: []string{"a", "b"}}
	for issuer, want := range map[string]struct{ reason, message string }{
		"deleted": {tokensv1alpha1.ReasonIssuerNotFound, `ClusterTokenIssuer "deleted" not found, so no namespace is allowed`},
		"bound": {tokensv1alpha1.ReasonIssuerNotAllowed,
			`ClusterTokenIssuer "bound" binds parameters to labels of the namespace asking (["example.com/installation"]), so one token cannot serve several namespaces`},
	} {
		cat := &tokensv1alpha1.ClusterAccessToken{Spec: tokensv1alpha1.ClusterAccessTokenSpec{
			IssuerRef:  tokensv1alpha1.ClusterIssuerReference{Name: issuer},
			Namespaces: tokensv1alpha1.TargetNamespaces{Names: []string{"a", "b", "unwatched"}}}}
		set, err := r.targets(context.Background(), cat)
		if err != nil {
			t.Fatal(err)
		}
		if len(set.write) > 0 {
			t.Errorf("%s: writes to %v", issuer, set.write)
		}
		if !slices.Equal(set.keep, []string{"a", "b"}) {
			t.Errorf("%s: keeps %v, want [a b]", issuer, set.keep)
		}
		if set.closed == nil || set.closed.reason != want.reason || set.closed.message != want.message {
			t.Errorf("%s: closed %+v, want %+v", issuer, set.closed, want)
		}
		if len(set.failures) != 3 {
			t.Errorf("%s: failures %v, want one per selected namespace", issuer, set.failures)
		}
	}
}

// TestClusterAccessTokenSourceNotRecreatedWhileGoing: a missing source
// AccessToken is not created again while the operator namespace is being
// deleted, nor while the ClusterAccessToken is (even when the cache does not
// show it yet); otherwise it is.
func TestClusterAccessTokenSourceNotRecreatedWhileGoing(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	const opNS = "tokenmint-system"
	newCAT := func() *tokensv1alpha1.ClusterAccessToken {
		return &tokensv1alpha1.ClusterAccessToken{ObjectMeta: metav1.ObjectMeta{Name: "shared", UID: "cat-uid",
			Finalizers: []string{ClusterAccessTokenFinalizer}},
			Spec: tokensv1alpha1.ClusterAccessTokenSpec{IssuerRef: tokensv1alpha1.ClusterIssuerReference{Name: "issuer"},
				Secret: tokensv1alpha1.SecretTemplate{Name: "shared-token"}}}
	}
	now := metav1.Now()
	for name, tc := range map[string]struct {
		namespace *corev1.Namespace
		live      func(*tokensv1alpha1.ClusterAccessToken) // the API server's view, when it differs from the cache's
		created   bool
	}{
		"present": {namespace: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opNS}}, created: true},
		"namespace terminating": {namespace: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opNS,
			DeletionTimestamp: &now, Finalizers: []string{"example.com/hold"}}}},
		"namespace gone": {},
		"being deleted, not yet in the cache": {namespace: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opNS}},
			live: func(c *tokensv1alpha1.ClusterAccessToken) { c.DeletionTimestamp = &now }},
		"re-created under the same name": {namespace: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opNS}},
			live: func(c *tokensv1alpha1.ClusterAccessToken) { c.UID = "another" }},
	} {
		t.Run(name, func(t *testing.T) {
			objs := []client.Object{newCAT()}
			if tc.namespace != nil {
				objs = append(objs, tc.namespace)
			}
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
			live := newCAT()
			if tc.live != nil {
				tc.live(live)
			}
			reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(live).Build()
			r := &ClusterAccessTokenReconciler{Client: c, APIReader: reader, Metadata: c, OperatorNamespace: opNS}
			cat := newCAT()
			at, err := r.ensureSource(context.Background(), cat)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Get(context.Background(), client.ObjectKey{Namespace: opNS, Name: "cluster-shared"}, &tokensv1alpha1.AccessToken{})
			if created := err == nil; created != tc.created || (at != nil) != tc.created {
				t.Fatalf("source created %v (returned %v), want %v", created, at != nil, tc.created)
			}
			ready := meta.FindStatusCondition(cat.Status.Conditions, tokensv1alpha1.ConditionReady)
			if tc.created {
				if ready != nil {
					t.Errorf("Ready %+v with the source created", ready)
				}
				return
			}
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != reasonSourceHeldBack {
				t.Errorf("Ready %+v, want False/%s", ready, reasonSourceHeldBack)
			}
		})
	}
}

// TestClusterAccessTokenNamespacesMetric: each ClusterAccessToken reports its
// selected, written and failing namespaces from status, once this replica
// leads, with no failure message in a label.
func TestClusterAccessTokenNamespacesMetric(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	healthy := &tokensv1alpha1.ClusterAccessToken{ObjectMeta: metav1.ObjectMeta{Name: "shared"},
		Status: tokensv1alpha1.ClusterAccessTokenStatus{Namespaces: 3, Written: 3}}
	failing := &tokensv1alpha1.ClusterAccessToken{ObjectMeta: metav1.ObjectMeta{Name: "billing"},
		Status: tokensv1alpha1.ClusterAccessTokenStatus{Namespaces: 2, Written: 1, Failing: 2,
			Failures: []tokensv1alpha1.NamespaceFailure{{Name: "a", Message: "canary-failure-message"}}}}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(healthy, failing).Build()
	c := &accessTokenCollector{}
	elected := make(chan struct{})
	c.use(reader, elected)
	if families, err := c.gather(); err != nil || len(families) > 0 {
		t.Fatalf("before leading: %v, %v", families, err)
	}
	close(elected)
	reg := &registry{RegistererGatherer: prometheus.NewPedanticRegistry(), tokens: c}
	want := `
# HELP tokenmint_clusteraccesstoken_namespaces ` + clusterNamespacesHelp + `
# TYPE tokenmint_clusteraccesstoken_namespaces gauge
tokenmint_clusteraccesstoken_namespaces{name="billing",state="failing"} 2
tokenmint_clusteraccesstoken_namespaces{name="billing",state="selected"} 2
tokenmint_clusteraccesstoken_namespaces{name="billing",state="written"} 1
tokenmint_clusteraccesstoken_namespaces{name="shared",state="failing"} 0
tokenmint_clusteraccesstoken_namespaces{name="shared",state="selected"} 3
tokenmint_clusteraccesstoken_namespaces{name="shared",state="written"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), clusterNamespacesName); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&page, f); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(page.String(), "canary") {
		t.Errorf("a failure message is in the metrics:\n%s", page.String())
	}
}
