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
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=list

// consumerScanTTL is how long one listing of a namespace's Pods serves every
// AccessToken of that namespace, so ten thousand renewals cost one list a minute.
const consumerScanTTL = time.Minute

// ConsumerScanner finds workloads that use a Secret in a way that never shows
// them a new value: environment variables (env, envFrom) and subPath mounts are
// resolved once, when the container starts. Pods are listed live, not cached,
// and only when a token is issued.
type ConsumerScanner struct {
	Reader client.Reader
	Clock  clock.PassiveClock

	mu    sync.Mutex
	scans map[string]podScan
}

type podScan struct {
	at   time.Time
	uses []secretUse
}

// secretUse is one workload using one Secret in a way that will not follow rotation.
type secretUse struct {
	secret   string
	kind     string
	name     string
	channels []string // "env", "envFrom", "subPath"
}

func (u secretUse) String() string {
	return fmt.Sprintf("%s/%s (%s)", u.kind, u.name, strings.Join(u.channels, ", "))
}

// Stale returns, sorted, the workloads of namespace that use the Secret named
// secretName through env, envFrom or a subPath mount and are not restart targets.
func (s *ConsumerScanner) Stale(ctx context.Context, namespace, secretName string, targets []tokensv1alpha1.RestartTarget) ([]string, error) {
	uses, err := s.scan(ctx, namespace)
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, u := range uses {
		if u.secret != secretName || slices.ContainsFunc(targets, func(t tokensv1alpha1.RestartTarget) bool {
			return string(t.Kind) == u.kind && t.Name == u.name
		}) {
			continue
		}
		stale = append(stale, u.String())
	}
	sort.Strings(stale)
	return slices.Compact(stale), nil
}

func (s *ConsumerScanner) scan(ctx context.Context, namespace string) ([]secretUse, error) {
	now := s.Clock.Now()
	s.mu.Lock()
	if sc, ok := s.scans[namespace]; ok && now.Sub(sc.at) < consumerScanTTL {
		s.mu.Unlock()
		return sc.uses, nil
	}
	s.mu.Unlock()

	pods := &corev1.PodList{}
	if err := s.Reader.List(ctx, pods, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing Pods to find the Secret's consumers: %w", err)
	}
	var uses []secretUse
	for i := range pods.Items {
		uses = append(uses, podUses(&pods.Items[i])...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scans == nil {
		s.scans = map[string]podScan{}
	}
	s.scans[namespace] = podScan{at: now, uses: uses}
	return uses, nil
}

// podUses lists the Secrets a Pod reads in ways that never change after start.
func podUses(pod *corev1.Pod) []secretUse {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	channels := map[string][]string{} // Secret name -> channels
	add := func(secretName, channel string) {
		if !slices.Contains(channels[secretName], channel) {
			channels[secretName] = append(channels[secretName], channel)
		}
	}
	volumeSecrets := map[string][]string{} // volume name -> Secret names
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			volumeSecrets[v.Name] = append(volumeSecrets[v.Name], v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					volumeSecrets[v.Name] = append(volumeSecrets[v.Name], src.Secret.Name)
				}
			}
		}
	}
	containers := slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers)
	for _, c := range containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				add(e.ValueFrom.SecretKeyRef.Name, "env")
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				add(e.SecretRef.Name, "envFrom")
			}
		}
		for _, m := range c.VolumeMounts {
			if m.SubPath == "" && m.SubPathExpr == "" {
				continue
			}
			for _, name := range volumeSecrets[m.Name] {
				add(name, "subPath")
			}
		}
	}
	kind, name := workloadOf(pod)
	uses := make([]secretUse, 0, len(channels))
	for secretName, ch := range channels {
		uses = append(uses, secretUse{secret: secretName, kind: kind, name: name, channels: ch})
	}
	return uses
}

// workloadOf names the workload that owns a Pod: the Deployment behind a
// ReplicaSet (by its pod-template-hash), a StatefulSet, a DaemonSet, or the Pod.
func workloadOf(pod *corev1.Pod) (string, string) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return "Pod", pod.Name
	}
	if ref.Kind == "ReplicaSet" {
		if hash := pod.Labels["pod-template-hash"]; hash != "" && strings.HasSuffix(ref.Name, "-"+hash) {
			return "Deployment", strings.TrimSuffix(ref.Name, "-"+hash)
		}
	}
	return ref.Kind, ref.Name
}
