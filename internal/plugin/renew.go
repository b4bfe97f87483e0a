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
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

type renewOptions struct {
	*Options
	all      bool
	selector string
	cluster  bool
}

func newRenewCommand(o *Options) *cobra.Command {
	r := &renewOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "renew NAME | --all | -l SELECTOR [--cluster]",
		Short: "Ask the manager to renew tokens now, through the " + tokensv1alpha1.AnnotationRenew + " annotation",
		Long: `renew sets the annotation ` + tokensv1alpha1.AnnotationRenew + ` of each AccessToken to a new value (the
current unix time), which the manager serves once per distinct value. The renewal is still subject to the minimum
interval between mints and the namespace's budget of renewals ahead of schedule, and a failure's backoff is not
cut short: it is served by the next retry.

With --cluster (or a NAME written clusteraccesstoken/NAME) it names ClusterAccessTokens instead: their annotation
is set, and the manager passes it on to the source AccessToken that mints the token every namespace gets.`,
		Example: `  kubectl tokenmint renew cable-transactions -n billing
  kubectl tokenmint renew --all -n billing
  kubectl tokenmint renew -l team=payments -n billing
  kubectl tokenmint renew clusteraccesstoken/shared-registry`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.run(cmd.Context(), args)
		},
	}
	cmd.Flags().BoolVar(&r.all, "all", false, "every AccessToken of the namespace")
	cmd.Flags().StringVarP(&r.selector, "selector", "l", "", "the AccessTokens of the namespace matching this label selector")
	cmd.Flags().BoolVar(&r.cluster, "cluster", false, "NAME, --all and -l name ClusterAccessTokens")
	return cmd
}

func (r *renewOptions) run(ctx context.Context, args []string) error {
	args, cluster := clusterArg(args, r.cluster)
	chosen := 0
	for _, set := range []bool{len(args) == 1, r.all, r.selector != ""} {
		if set {
			chosen++
		}
	}
	if chosen != 1 {
		return errors.New("name the AccessTokens to renew with exactly one of NAME, --all or -l SELECTOR")
	}
	var opts []client.ListOption
	if r.selector != "" {
		sel, err := labels.Parse(r.selector)
		if err != nil {
			return fmt.Errorf("label selector: %w", err)
		}
		opts = append(opts, client.MatchingLabelsSelector{Selector: sel})
	}
	if cluster {
		return r.renewCluster(ctx, args, opts...)
	}
	c, err := r.Client()
	if err != nil {
		return err
	}
	ns, err := r.Namespace()
	if err != nil {
		return err
	}
	opts = append(opts, client.InNamespace(ns))
	items, err := accessTokens(ctx, c, ns, args, opts...)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		fmt.Fprintf(r.Out, "No AccessTokens to renew in namespace %s.\n", ns)
		return nil
	}
	failed := 0
	for i := range items {
		at := &items[i]
		value := RenewValue(r.now(), at.Annotations[tokensv1alpha1.AnnotationRenew])
		if err := requestRenewal(ctx, c, at, value); err != nil {
			fmt.Fprintf(r.ErrOut, "accesstoken %s/%s: %v\n", at.Namespace, at.Name, err)
			failed++
			continue
		}
		note := ""
		if at.Status.FailedAttempts > 0 && at.Status.RenewalTime != nil {
			note = fmt.Sprintf("; after %d failed attempts it is served by the next retry (due %s)",
				at.Status.FailedAttempts, relative(at.Status.RenewalTime.Time, r.now()))
		}
		fmt.Fprintf(r.Out, "accesstoken %s/%s: renewal requested (%s=%s)%s\n", at.Namespace, at.Name,
			tokensv1alpha1.AnnotationRenew, value, note)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d renewals could not be requested", failed, len(items))
	}
	return nil
}

// RenewValue is the value of the renew annotation that asks for a renewal at
// now: the unix time in seconds, as the documentation's
// `kubectl annotate ... tokens.tokenmint.dev/renew="$(date +%s)"` writes it.
// Within the second of an earlier request (whose value would be the same, and
// so ask for nothing) it is the time with nanoseconds instead.
func RenewValue(now time.Time, current string) string {
	value := strconv.FormatInt(now.Unix(), 10)
	if value == current {
		value = now.UTC().Format(time.RFC3339Nano)
	}
	return value
}

// requestRenewal sets the renew annotation with a merge patch of that one
// annotation, so nothing else of the AccessToken (or ClusterAccessToken) is
// touched.
func requestRenewal(ctx context.Context, c client.Client, at client.Object, value string) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{tokensv1alpha1.AnnotationRenew: value}},
	})
	if err != nil {
		return err
	}
	return c.Patch(ctx, at, client.RawPatch(types.MergePatchType, patch))
}
