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
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// clusterArgPrefixes name a ClusterAccessToken in an argument, as kubectl's
// TYPE/NAME does: status clusteraccesstoken/shared is status --cluster shared.
var clusterArgPrefixes = []string{"clusteraccesstoken/", "clusteraccesstokens/"}

// clusterArg strips a ClusterAccessToken prefix from args, and says whether
// they name ClusterAccessTokens (the prefix, or --cluster).
func clusterArg(args []string, cluster bool) ([]string, bool) {
	if len(args) != 1 {
		return args, cluster
	}
	for _, p := range clusterArgPrefixes {
		if name, ok := strings.CutPrefix(strings.ToLower(args[0]), p); ok {
			return []string{args[0][len(args[0])-len(name):]}, true
		}
	}
	return args, cluster
}

// clusterAccessTokens returns the ClusterAccessToken args names, or those of
// the list.
func clusterAccessTokens(ctx context.Context, c client.Client, args []string, opts ...client.ListOption) ([]tokensv1alpha1.ClusterAccessToken, error) {
	if len(args) == 1 {
		cat := &tokensv1alpha1.ClusterAccessToken{}
		if err := c.Get(ctx, types.NamespacedName{Name: args[0]}, cat); err != nil {
			return nil, explain(err)
		}
		return []tokensv1alpha1.ClusterAccessToken{*cat}, nil
	}
	list := &tokensv1alpha1.ClusterAccessTokenList{}
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, explain(err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

// ClusterStatusView is what status --cluster shows of one ClusterAccessToken:
// its token (minted by its source AccessToken) and the namespaces it serves.
type ClusterStatusView struct {
	Name         string `json:"name"`
	Issuer       string `json:"issuer"`
	IssuerStatus string `json:"issuerStatus"`
	// Ready and ReadyReason are computed as for an AccessToken.
	Ready          string          `json:"ready"`
	ReadyReason    string          `json:"readyReason"`
	Conditions     []ConditionView `json:"conditions"`
	IssuedAt       *Moment         `json:"issuedAt,omitempty"`
	ExpiresAt      *Moment         `json:"expiresAt,omitempty"`
	RenewalTime    *Moment         `json:"renewalTime,omitempty"`
	FailedAttempts int32           `json:"failedAttempts"`
	// LastError is the Renewing condition's message while it is False.
	LastError        string `json:"lastError,omitempty"`
	TokenFingerprint string `json:"tokenFingerprint,omitempty"`
	// Secret is the name of the Secret written in each namespace.
	Secret string `json:"secret"`
	// Selected are the selected namespaces the issuer allows, Written those
	// holding the current token, Failing those not written.
	Selected int32 `json:"selected"`
	Written  int32 `json:"written"`
	Failing  int32 `json:"failing"`
	// Failures are up to 10 failing namespaces and why.
	Failures []tokensv1alpha1.NamespaceFailure `json:"failures,omitempty"`
	// RenewalRequested is the renew annotation, which the manager passes to
	// the source AccessToken.
	RenewalRequested string `json:"renewalRequested,omitempty"`
}

func buildClusterStatus(ctx context.Context, c client.Client, cat *tokensv1alpha1.ClusterAccessToken, now time.Time) ClusterStatusView {
	st := &cat.Status
	v := ClusterStatusView{
		Name:             cat.Name,
		Issuer:           string(tokensv1alpha1.ClusterTokenIssuerKind) + "/" + cat.Spec.IssuerRef.Name,
		IssuedAt:         momentOf(st.IssuedAt, now),
		ExpiresAt:        momentOf(st.ExpiresAt, now),
		RenewalTime:      momentOf(st.RenewalTime, now),
		FailedAttempts:   st.FailedAttempts,
		TokenFingerprint: st.TokenFingerprint,
		Secret:           cat.Spec.Secret.Name,
		Selected:         st.Namespaces,
		Written:          st.Written,
		Failing:          st.Failing,
		Failures:         st.Failures,
		RenewalRequested: cat.Annotations[tokensv1alpha1.AnnotationRenew],
		Conditions:       []ConditionView{},
	}
	// The AccessToken's rule: Ready only while the token status names has not expired.
	v.Ready, v.ReadyReason = readyAt(&tokensv1alpha1.AccessTokenStatus{Conditions: st.Conditions, ExpiresAt: st.ExpiresAt}, now)
	source := &tokensv1alpha1.AccessToken{Spec: tokensv1alpha1.AccessTokenSpec{
		IssuerRef: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: cat.Spec.IssuerRef.Name}}}
	v.IssuerStatus, _ = issuerStatus(ctx, c, source, tokensv1alpha1.ClusterTokenIssuerKind)
	for _, cond := range st.Conditions {
		t := cond.LastTransitionTime.Time
		v.Conditions = append(v.Conditions, ConditionView{Type: cond.Type, Status: string(cond.Status),
			Reason: cond.Reason, Message: cond.Message, Since: moment(&t, now)})
	}
	if r := meta.FindStatusCondition(st.Conditions, tokensv1alpha1.ConditionRenewing); r != nil && r.Status == metav1.ConditionFalse {
		v.LastError = r.Reason + ": " + r.Message
	}
	return v
}

func printClusterStatus(out io.Writer, v *ClusterStatusView) {
	fmt.Fprintf(out, "ClusterAccessToken %s\n", v.Name)
	t := newTable(out, "")
	ready := v.Ready + " " + v.ReadyReason
	if v.ReadyReason == ReasonTokenExpired {
		ready += " (the token status names has expired and the manager has not renewed it: is it running?)"
	}
	t.row("  ", "Ready:", ready)
	t.row("  ", "Issuer:", v.Issuer+" ("+v.IssuerStatus+")")
	t.row("  ", "Issued:", v.IssuedAt.String())
	t.row("  ", "Expires:", v.ExpiresAt.String())
	t.row("  ", "Next renewal:", v.RenewalTime.String())
	t.row("  ", "Failed attempts:", fmt.Sprint(v.FailedAttempts))
	t.row("  ", "Last error:", orDash(v.LastError))
	if v.RenewalRequested != "" {
		t.row("  ", "Renewal requested:", v.RenewalRequested)
	}
	t.row("  ", "Fingerprint:", orDash(v.TokenFingerprint))
	t.row("  ", "Secret:", v.Secret)
	t.row("  ", "Namespaces:", fmt.Sprintf("%d selected, %d written, %d failing", v.Selected, v.Written, v.Failing))
	t.flush()

	printConditions(out, v.Conditions)
	if len(v.Failures) > 0 {
		fmt.Fprintln(out, "  Failing namespaces:")
		ft := newTable(out, "    ", "NAMESPACE", "WHY")
		for _, f := range v.Failures {
			ft.row("    ", f.Name, oneLine(f.Message))
		}
		ft.flush()
		if int(v.Failing) > len(v.Failures) {
			fmt.Fprintf(out, "    and %d more\n", int(v.Failing)-len(v.Failures))
		}
	}
}

// statusCluster is status for ClusterAccessTokens.
func (s *statusOptions) statusCluster(ctx context.Context, args []string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	items, err := clusterAccessTokens(ctx, c, args)
	if err != nil {
		return err
	}
	now := s.now()
	views := make([]ClusterStatusView, 0, len(items))
	for i := range items {
		views = append(views, buildClusterStatus(ctx, c, &items[i], now))
	}
	switch {
	case s.output != "" && len(args) == 1:
		return printStructured(s.Out, s.output, views[0])
	case s.output != "":
		return printStructured(s.Out, s.output, views)
	}
	if len(views) == 0 {
		fmt.Fprintln(s.Out, "No ClusterAccessTokens.")
		return nil
	}
	for i := range views {
		if i > 0 {
			fmt.Fprintln(s.Out)
		}
		printClusterStatus(s.Out, &views[i])
	}
	return nil
}

// renewCluster is renew for ClusterAccessTokens: it sets their renew
// annotation, which the manager passes on to each one's source AccessToken.
func (r *renewOptions) renewCluster(ctx context.Context, args []string, opts ...client.ListOption) error {
	c, err := r.Client()
	if err != nil {
		return err
	}
	items, err := clusterAccessTokens(ctx, c, args, opts...)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		fmt.Fprintln(r.Out, "No ClusterAccessTokens to renew.")
		return nil
	}
	failed := 0
	for i := range items {
		cat := &items[i]
		value := RenewValue(r.now(), cat.Annotations[tokensv1alpha1.AnnotationRenew])
		if err := requestRenewal(ctx, c, cat, value); err != nil {
			fmt.Fprintf(r.ErrOut, "clusteraccesstoken %s: %v\n", cat.Name, err)
			failed++
			continue
		}
		fmt.Fprintf(r.Out, "clusteraccesstoken %s: renewal requested (%s=%s)\n", cat.Name, tokensv1alpha1.AnnotationRenew, value)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d renewals could not be requested", failed, len(items))
	}
	return nil
}
