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
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// clusterFixture is a ClusterAccessToken with two failing namespaces, its
// issuer, and the plugin's options on a fake client.
func clusterFixture(t *testing.T) (*Options, *bytes.Buffer, client.Client) {
	t.Helper()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = tokensv1alpha1.AddToScheme(scheme)
	expires := metav1.NewTime(now.Add(40 * time.Minute))
	cat := &tokensv1alpha1.ClusterAccessToken{ObjectMeta: metav1.ObjectMeta{Name: "shared"},
		Spec: tokensv1alpha1.ClusterAccessTokenSpec{IssuerRef: tokensv1alpha1.ClusterIssuerReference{Name: "registry"},
			Secret: tokensv1alpha1.SecretTemplate{Name: "registry-token"}},
		Status: tokensv1alpha1.ClusterAccessTokenStatus{ExpiresAt: &expires, TokenFingerprint: "sha256:abcd",
			Namespaces: 3, Written: 2, Failing: 2, Failures: []tokensv1alpha1.NamespaceFailure{
				{Name: "team-b", Message: "a Secret of that name exists and is not this ClusterAccessToken's"},
				{Name: "team-x", Message: `ClusterTokenIssuer "registry" does not allow this namespace`}},
			Conditions: []metav1.Condition{{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
				Reason: "NamespacesFailing", Message: "2 namespaces could not be written; see status.failures"}}}}
	other := &tokensv1alpha1.ClusterAccessToken{ObjectMeta: metav1.ObjectMeta{Name: "other"},
		Spec: tokensv1alpha1.ClusterAccessTokenSpec{IssuerRef: tokensv1alpha1.ClusterIssuerReference{Name: "registry"}}}
	cti := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "registry"},
		Status: tokensv1alpha1.IssuerStatus{Conditions: []metav1.Condition{{Type: tokensv1alpha1.ConditionReady,
			Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonValid}}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cat, other, cti).Build()
	out := &bytes.Buffer{}
	o := &Options{IOStreams: genericiooptions.IOStreams{Out: out, ErrOut: out}, Now: func() time.Time { return now }, client: c}
	return o, out, c
}

func TestStatusClusterAccessToken(t *testing.T) {
	for _, args := range [][]string{{"clusteraccesstoken/shared"}, {"--cluster", "shared"}, {"ClusterAccessTokens/shared"}} {
		o, out, _ := clusterFixture(t)
		cmd := newStatusCommand(o)
		cmd.SetArgs(args)
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, want := range []string{"ClusterAccessToken shared", "ClusterTokenIssuer/registry (Ready True Valid)",
			"3 selected, 2 written, 2 failing", "registry-token", "Failing namespaces:", "team-b", "is not this ClusterAccessToken's",
			"team-x", `does not allow this namespace`, "NamespacesFailing", "in 40m"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: the report lacks %q:\n%s", args, want, out.String())
			}
		}
	}

	o, out, _ := clusterFixture(t)
	cmd := newStatusCommand(o)
	cmd.SetArgs([]string{"--cluster", "-o", "json"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	var views []ClusterStatusView
	if err := json.Unmarshal(out.Bytes(), &views); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if len(views) != 2 || views[0].Name != "other" || views[1].Name != "shared" || views[1].Failing != 2 ||
		len(views[1].Failures) != 2 || views[1].Selected != 3 || views[1].Written != 2 {
		t.Errorf("views %+v", views)
	}
	// Expired per status: not Ready whatever the manager last said.
	o.Now = func() time.Time { return now.Add(time.Hour) }
	out.Reset()
	cmd = newStatusCommand(o)
	cmd.SetArgs([]string{"clusteraccesstoken/shared", "-o", "json"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	var view ClusterStatusView
	if err := json.Unmarshal(out.Bytes(), &view); err != nil {
		t.Fatal(err)
	}
	if view.Ready != "False" || view.ReadyReason != ReasonTokenExpired {
		t.Errorf("ready %s %s after expiry", view.Ready, view.ReadyReason)
	}
}

func TestRenewClusterAccessToken(t *testing.T) {
	o, out, c := clusterFixture(t)
	cmd := newRenewCommand(o)
	cmd.SetArgs([]string{"clusteraccesstoken/shared"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	cat := &tokensv1alpha1.ClusterAccessToken{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: "shared"}, cat); err != nil {
		t.Fatal(err)
	}
	want := RenewValue(now, "")
	if got := cat.Annotations[tokensv1alpha1.AnnotationRenew]; got != want {
		t.Errorf("renew annotation %q, want %q", got, want)
	}
	if !strings.Contains(out.String(), "clusteraccesstoken shared: renewal requested") {
		t.Errorf("output: %s", out.String())
	}
	other := &tokensv1alpha1.ClusterAccessToken{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: "other"}, other); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.Annotations[tokensv1alpha1.AnnotationRenew]; ok {
		t.Error("renewing one ClusterAccessToken annotated another")
	}

	// --cluster --all: every ClusterAccessToken; a second request within the
	// same second still changes the value.
	out.Reset()
	cmd = newRenewCommand(o)
	cmd.SetArgs([]string{"--cluster", "--all"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"shared", "other"} {
		if err := c.Get(context.Background(), client.ObjectKey{Name: name}, cat); err != nil {
			t.Fatal(err)
		}
		if v := cat.Annotations[tokensv1alpha1.AnnotationRenew]; v == "" || (name == "shared" && v == want) {
			t.Errorf("%s: renew annotation %q after --all", name, v)
		}
	}
}

func TestClusterArg(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		flag    bool
		want    string
		cluster bool
	}{
		{[]string{"shared"}, false, "shared", false},
		{[]string{"shared"}, true, "shared", true},
		{[]string{"clusteraccesstoken/Shared"}, false, "Shared", true},
		{[]string{"accesstoken/shared"}, false, "accesstoken/shared", false},
	} {
		args, cluster := clusterArg(tc.args, tc.flag)
		if len(args) != 1 || args[0] != tc.want || cluster != tc.cluster {
			t.Errorf("clusterArg(%v, %v) = %v, %v", tc.args, tc.flag, args, cluster)
		}
	}
}
