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
	"context"
	"encoding/json"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// restartAllowed reports whether workload t agrees to be restarted by at: its
// annotation AnnotationRestartOn lists at's name. Only its metadata is read.
func (r *AccessTokenReconciler) restartAllowed(ctx context.Context, at *tokensv1alpha1.AccessToken, t tokensv1alpha1.RestartTarget) bool {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind(string(t.Kind)))
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: at.Namespace, Name: t.Name}, m); err != nil {
		return false
	}
	return listed(m.Annotations[tokensv1alpha1.AnnotationRestartOn], at.Name)
}

// listed reports whether the comma separated list of an opt-in annotation
// names name.
func listed(list, name string) bool {
	for _, item := range strings.Split(list, ",") {
		if strings.TrimSpace(item) == name {
			return true
		}
	}
	return false
}

// restartTargets restarts the AccessToken's workloads the way kubectl rollout
// restart does: a new annotation on the pod template rolls the pods. A failure is
// reported and does not undo the renewal.
func (r *AccessTokenReconciler) restartTargets(ctx context.Context, at *tokensv1alpha1.AccessToken, now time.Time) {
	if len(at.Spec.RestartTargets) == 0 {
		return
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{tokensv1alpha1.AnnotationRestartedAt: now.UTC().Format(time.RFC3339)},
	}}}})
	var restarted []string
	for _, t := range at.Spec.RestartTargets {
		var obj client.Object
		switch t.Kind {
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "StatefulSet":
			obj = &appsv1.StatefulSet{}
		case "DaemonSet":
			obj = &appsv1.DaemonSet{}
		default:
			continue
		}
		obj.(metav1.Object).SetNamespace(at.Namespace)
		obj.(metav1.Object).SetName(t.Name)
		if !r.restartAllowed(ctx, at, t) {
			r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, tokensv1alpha1.ReasonRestartNotAllowed, "Restart",
				"Did not restart %s %s: its annotation %s does not list AccessToken %q", t.Kind, t.Name,
				tokensv1alpha1.AnnotationRestartOn, at.Name)
			continue
		}
		if err := r.Patch(ctx, obj, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
			r.Recorder.Eventf(at, nil, corev1.EventTypeWarning, tokensv1alpha1.ReasonRestartFailed, "Restart",
				"Could not restart %s %s: %v", t.Kind, t.Name, err)
			continue
		}
		restarted = append(restarted, string(t.Kind)+"/"+t.Name)
	}
	if len(restarted) > 0 {
		r.Recorder.Eventf(at, nil, corev1.EventTypeNormal, tokensv1alpha1.ReasonRestarted, "Restart",
			"Restarted %v after the token changed", restarted)
	}
}
