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

// Package argocd tests the Argo CD health checks of config/argocd/health.yaml
// with the Lua interpreter Argo CD itself runs them in.
package argocd

import (
	"os"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

const keyPrefix = "resource.customizations.health.tokens.tokenmint.dev_"

// healthChecks reads the Lua scripts by kind.
func healthChecks(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../../config/argocd/health.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range cm.Data {
		kind, ok := strings.CutPrefix(k, keyPrefix)
		if !ok {
			t.Fatalf("key %q is not an Argo CD health customization of the tokens.tokenmint.dev group", k)
		}
		out[kind] = v
	}
	return out
}

// health runs script on obj the way Argo CD does: obj is a global table made
// from the object's JSON, and the script returns {status, message}.
func health(t *testing.T, script string, obj runtime.Object) (status, message string) {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	// Through JSON, as Argo CD reads live objects: numbers become float64.
	raw, err := yaml.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, open := range []lua.LGFunction{lua.OpenBase, lua.OpenTable, lua.OpenString, lua.OpenMath} {
		L.Push(L.NewFunction(open))
		L.Call(0, 0)
	}
	L.SetGlobal("obj", toLua(L, m))
	if err := L.DoString(script); err != nil {
		t.Fatalf("health check of %T fails: %v", obj, err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health check of %T returned %s, not a table", obj, L.Get(-1).Type())
	}
	return lua.LVAsString(ret.RawGetString("status")), lua.LVAsString(ret.RawGetString("message"))
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case nil:
		return lua.LNil
	}
	panic("unexpected JSON value")
}

func cond(typ string, status metav1.ConditionStatus, reason, message string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message}
}

func TestEveryKindHasAHealthCheck(t *testing.T) {
	checks := healthChecks(t)
	for _, kind := range []string{"AccessToken", "ClusterAccessToken", "TokenIssuer", "ClusterTokenIssuer"} {
		if checks[kind] == "" {
			t.Errorf("no health check for %s", kind)
		}
	}
	if len(checks) != 4 {
		t.Errorf("%d health checks, want one per kind (4)", len(checks))
	}
}

func TestAccessTokenHealth(t *testing.T) {
	script := healthChecks(t)["AccessToken"]
	ready := cond(tokensv1alpha1.ConditionReady, metav1.ConditionTrue, tokensv1alpha1.ReasonTokenValid, "the Secret holds a valid token")
	for _, tc := range []struct {
		name       string
		generation int64
		status     tokensv1alpha1.AccessTokenStatus
		want       string
		message    string
	}{
		{"not reconciled yet", 1, tokensv1alpha1.AccessTokenStatus{}, "Progressing", "Waiting"},
		{"valid", 1, tokensv1alpha1.AccessTokenStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{ready,
			cond(tokensv1alpha1.ConditionRenewing, metav1.ConditionTrue, tokensv1alpha1.ReasonIssued, "issued")}}, "Healthy", "valid token"},
		{"valid, renewal failing", 1, tokensv1alpha1.AccessTokenStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{ready,
			cond(tokensv1alpha1.ConditionRenewing, metav1.ConditionFalse, tokensv1alpha1.ReasonUnauthorized, "endpoint answered HTTP 401")}},
			"Healthy", "renewal failing (Unauthorized): endpoint answered HTTP 401"},
		{"spec changed, not yet acted on", 2, tokensv1alpha1.AccessTokenStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{ready}},
			"Progressing", "generation 2"},
		{"first token on its way", 1, tokensv1alpha1.AccessTokenStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{
			cond(tokensv1alpha1.ConditionReady, metav1.ConditionFalse, tokensv1alpha1.ReasonPending, "no token has been issued yet")}},
			"Progressing", "no token"},
		{"first token failing", 1, tokensv1alpha1.AccessTokenStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{
			cond(tokensv1alpha1.ConditionReady, metav1.ConditionFalse, tokensv1alpha1.ReasonPending, "no token has been issued yet: HTTP 401"),
			cond(tokensv1alpha1.ConditionRenewing, metav1.ConditionFalse, tokensv1alpha1.ReasonUnauthorized, "HTTP 401")}},
			"Degraded", "Pending: no token has been issued yet: HTTP 401"},
		{"expired", 1, tokensv1alpha1.AccessTokenStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{
			cond(tokensv1alpha1.ConditionReady, metav1.ConditionFalse, tokensv1alpha1.ReasonExpired, "the token expired at 2026-12-01T00:00:00Z")}},
			"Degraded", "Expired"},
	} {
		at := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "n", Generation: tc.generation}, Status: tc.status}
		status, message := health(t, script, at)
		if status != tc.want || !strings.Contains(message, tc.message) {
			t.Errorf("%s: got %s %q, want %s containing %q", tc.name, status, message, tc.want, tc.message)
		}
	}
}

func TestClusterAccessTokenHealth(t *testing.T) {
	script := healthChecks(t)["ClusterAccessToken"]
	ready := cond(tokensv1alpha1.ConditionReady, metav1.ConditionTrue, tokensv1alpha1.ReasonTokenValid, "every namespace holds the token")
	for _, tc := range []struct {
		name    string
		status  tokensv1alpha1.ClusterAccessTokenStatus
		want    string
		message string
	}{
		{"not reconciled yet", tokensv1alpha1.ClusterAccessTokenStatus{}, "Progressing", "Waiting"},
		{"every namespace written", tokensv1alpha1.ClusterAccessTokenStatus{Namespaces: 3, Written: 3, Conditions: []metav1.Condition{ready}}, "Healthy", "every namespace"},
		{"a namespace failing", tokensv1alpha1.ClusterAccessTokenStatus{Namespaces: 3, Written: 2, Failing: 1, Conditions: []metav1.Condition{ready}}, "Degraded", "1 of 3 namespaces"},
		{"pending", tokensv1alpha1.ClusterAccessTokenStatus{Conditions: []metav1.Condition{
			cond(tokensv1alpha1.ConditionReady, metav1.ConditionFalse, tokensv1alpha1.ReasonPending, "no token has been issued yet")}}, "Progressing", "no token"},
		{"not ready", tokensv1alpha1.ClusterAccessTokenStatus{Conditions: []metav1.Condition{
			cond(tokensv1alpha1.ConditionReady, metav1.ConditionFalse, tokensv1alpha1.ReasonIssuerNotFound, "ClusterTokenIssuer \"x\" not found")}}, "Degraded", "IssuerNotFound"},
	} {
		cat := &tokensv1alpha1.ClusterAccessToken{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Status: tc.status}
		status, message := health(t, script, cat)
		if status != tc.want || !strings.Contains(message, tc.message) {
			t.Errorf("%s: got %s %q, want %s containing %q", tc.name, status, message, tc.want, tc.message)
		}
	}
}

func TestIssuerHealth(t *testing.T) {
	checks := healthChecks(t)
	for _, tc := range []struct {
		name       string
		conditions []metav1.Condition
		want       string
	}{
		{"not reconciled yet", nil, "Progressing"},
		{"ready", []metav1.Condition{cond(tokensv1alpha1.ConditionReady, metav1.ConditionTrue, tokensv1alpha1.ReasonValid, "")}, "Healthy"},
		{"broken", []metav1.Condition{cond(tokensv1alpha1.ConditionReady, metav1.ConditionFalse, tokensv1alpha1.ReasonSecretMissing, "credential Secret x not found")}, "Degraded"},
	} {
		ti := &tokensv1alpha1.TokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "i", Namespace: "n"}}
		ti.Status.Conditions = tc.conditions
		cti := &tokensv1alpha1.ClusterTokenIssuer{ObjectMeta: metav1.ObjectMeta{Name: "i"}}
		cti.Status.Conditions = tc.conditions
		for kind, obj := range map[string]runtime.Object{"TokenIssuer": ti, "ClusterTokenIssuer": cti} {
			if status, _ := health(t, checks[kind], obj); status != tc.want {
				t.Errorf("%s %s: got %s, want %s", kind, tc.name, status, tc.want)
			}
		}
	}
}
