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
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// --kube-api-qps is one budget for the whole manager: the REST clients that
// controller-runtime builds per resource type share one limiter, and leader
// election is not behind it.
func TestRESTConfigsShareOneLimit(t *testing.T) {
	c := &Config{KubeAPIQPS: 7, KubeAPIBurst: 3}
	base := &rest.Config{Host: "https://127.0.0.1:1", QPS: 1, Burst: 2}
	mgr, le := c.RESTConfigs(base)

	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := tokensv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	codecs := serializer.NewCodecFactory(s)
	hc, err := rest.HTTPClientFor(mgr)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := apiutil.RESTClientForGVK(corev1.SchemeGroupVersion.WithKind("Secret"), false, false, mgr, codecs, hc)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := apiutil.RESTClientForGVK(tokensv1alpha1.GroupVersion.WithKind("AccessToken"), false, false, mgr, codecs, hc)
	if err != nil {
		t.Fatal(err)
	}
	if secrets.GetRateLimiter() == nil || secrets.GetRateLimiter() != tokens.GetRateLimiter() {
		t.Errorf("the Secret and AccessToken clients have limiters %p and %p; want one shared", secrets.GetRateLimiter(), tokens.GetRateLimiter())
	}
	if q := secrets.GetRateLimiter().QPS(); q != 7 {
		t.Errorf("shared limiter allows %v requests per second; want 7", q)
	}
	if le.RateLimiter != nil || le.QPS != base.QPS || le.Burst != base.Burst {
		t.Errorf("leader election config: limiter %v, QPS %v, burst %d; want its own (none shared), %v, %d", le.RateLimiter, le.QPS, le.Burst, base.QPS, base.Burst)
	}
	if base.RateLimiter != nil || base.QPS != 1 {
		t.Errorf("the base config was changed: %+v", base)
	}
}
