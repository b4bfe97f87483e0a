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
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

var now = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func TestRelative(t *testing.T) {
	for _, tc := range []struct {
		offset time.Duration
		want   string
	}{
		{0, "now"},
		{35 * time.Minute, "in 35m"},
		{-5 * time.Minute, "5m ago"},
		{90 * time.Second, "in 90s"},
		{-49 * time.Hour, "2d1h ago"},
	} {
		if got := relative(now.Add(tc.offset), now); got != tc.want {
			t.Errorf("relative(%s) = %q, want %q", tc.offset, got, tc.want)
		}
	}
	at := now.Add(time.Hour)
	if got, want := moment(&at, now).String(), "2026-12-01T09:00:00Z (in 60m)"; got != want {
		t.Errorf("moment: %q, want %q", got, want)
	}
	if got := (*Moment)(nil).String(); got != "-" {
		t.Errorf("nil moment: %q", got)
	}
}

func TestParseParams(t *testing.T) {
	got, err := ParseParams([]string{"lifetimeSeconds=600", `scopes=["a","b"]`, "description=Billing (prod)", "flag=true", "empty="})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"lifetimeSeconds": "600", "scopes": `["a","b"]`, "description": `"Billing (prod)"`, "flag": "true", "empty": `""`}
	for k, w := range want {
		if string(got[k].Raw) != w {
			t.Errorf("%s = %s, want %s", k, got[k].Raw, w)
		}
	}
	for _, bad := range [][]string{{"novalue"}, {"=x"}, {"a=1", "a=2"}} {
		if _, err := ParseParams(bad); err == nil {
			t.Errorf("ParseParams(%q) succeeded", bad)
		}
	}
}

func TestStaleWorkloads(t *testing.T) {
	message := `Deployment/billing (env, subPath), Pod/debug (envFrom) read Secret "api-token" in a way that never shows them a new token (environment variables and subPath mounts are read once, at start): add them to spec.restartTargets, or mount the Secret as a volume without subPath`
	got := staleWorkloads(message)
	want := []string{"Deployment/billing (env, subPath)", "Pod/debug (envFrom)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRenewValue(t *testing.T) {
	if got := RenewValue(now, ""); got != "1796112000" {
		t.Errorf("RenewValue = %q, want the unix time", got)
	}
	if got := RenewValue(now, "1796112000"); got == "1796112000" || got == "" {
		t.Errorf("a request within the same second must differ from the last, got %q", got)
	}
}

func TestDescribeTokenNeverHoldsTheToken(t *testing.T) {
	exp := now.Add(30 * time.Minute)
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": exp.Unix(), "iat": now.Unix()}).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	v := describeToken(signed, now)
	if !v.JWT || v.JWTAlgorithm != "HS256" || !v.JWTExpiresAt.Time.Equal(exp) || v.Bytes != len(signed) {
		t.Errorf("describeToken: %+v", v)
	}
	if s := v.String(); strings.Contains(s, signed) || !strings.Contains(s, "a JWT (HS256) expiring 2026-12-01T08:30:00Z (in 30m)") {
		t.Errorf("String: %q", s)
	}
	if got := describeToken("opaque-token", now).String(); got != "12 bytes, not a JWT" {
		t.Errorf("opaque token: %q", got)
	}
}

func TestCommandsRefuseBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"status", "-o", "table"},
		{"status", "a", "--all"},
		{"renew"},
		{"renew", "a", "--all"},
		{"test"},
		{"test", "issuer", "--param", "nonsense"},
		{"inspect", "secret"},
	} {
		var out, errOut bytes.Buffer
		code := Main(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, "v0", append(args, "--kubeconfig", "/nonexistent"))
		if code == 0 {
			t.Errorf("%q exited 0:\n%s", args, out.String())
		}
		if !strings.HasPrefix(errOut.String(), "error: ") {
			t.Errorf("%q: stderr %q", args, errOut.String())
		}
	}
}

func TestVersionClientOnly(t *testing.T) {
	var out bytes.Buffer
	if code := Main(genericiooptions.IOStreams{Out: &out, ErrOut: &out}, "v1.2.3", []string{"version", "--client"}); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if out.String() != "Plugin: v1.2.3\n" {
		t.Errorf("got %q", out.String())
	}
}

func TestReadyNeverClaimsAnExpiredToken(t *testing.T) {
	readyTrue := []metav1.Condition{{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonTokenValid}}
	at := func(exp time.Time) *metav1.Time { t := metav1.NewTime(exp); return &t }
	for _, tc := range []struct {
		name           string
		st             tokensv1alpha1.AccessTokenStatus
		status, reason string
	}{
		{"valid", tokensv1alpha1.AccessTokenStatus{Conditions: readyTrue, ExpiresAt: at(now.Add(time.Minute))}, "True", tokensv1alpha1.ReasonTokenValid},
		{"expired while status says Ready", tokensv1alpha1.AccessTokenStatus{Conditions: readyTrue, ExpiresAt: at(now.Add(-time.Second))}, "False", ReasonTokenExpired},
		{"expiring this instant", tokensv1alpha1.AccessTokenStatus{Conditions: readyTrue, ExpiresAt: at(now)}, "False", ReasonTokenExpired},
		{"no expiry reported", tokensv1alpha1.AccessTokenStatus{Conditions: readyTrue}, "True", tokensv1alpha1.ReasonTokenValid},
		{"never reconciled", tokensv1alpha1.AccessTokenStatus{}, "Unknown", "NotReconciled"},
	} {
		status, reason := readyAt(&tc.st, now)
		if status != tc.status || reason != tc.reason {
			t.Errorf("%s: got %s %s, want %s %s", tc.name, status, reason, tc.status, tc.reason)
		}
	}
}

func TestHistoryShowsIssuersAndTimes(t *testing.T) {
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(d)); return &t }
	st := &tokensv1alpha1.AccessTokenStatus{History: []tokensv1alpha1.TokenHistoryEntry{
		{Fingerprint: "hmac-sha256:new", Issuer: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: "b"},
			IssuedAt: *at(-time.Minute), ExpiresAt: at(59 * time.Minute)},
		{Fingerprint: "hmac-sha256:old", Issuer: tokensv1alpha1.IssuerReference{Name: "a"},
			IssuedAt: *at(-2 * time.Hour), ExpiresAt: at(-time.Hour), ReplacedAt: at(-time.Minute), RevokedAt: at(-30 * time.Second)},
	}}
	var out bytes.Buffer
	printHistory(&out, historyViews(st, now))
	got := out.String()
	for _, want := range []string{"Recent tokens (newest first):", "FINGERPRINT", "REVOKED",
		"hmac-sha256:new  ClusterTokenIssuer/b", "hmac-sha256:old  TokenIssuer/a"} {
		if !strings.Contains(got, want) {
			t.Errorf("history lacks %q:\n%s", want, got)
		}
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 4 || !strings.HasSuffix(strings.TrimSpace(lines[2]), "-") || strings.HasSuffix(strings.TrimSpace(lines[3]), "-") {
		t.Errorf("the current token is neither replaced nor revoked, the old one both:\n%s", got)
	}
	out.Reset()
	printHistory(&out, historyViews(&tokensv1alpha1.AccessTokenStatus{}, now))
	if out.Len() != 0 {
		t.Errorf("no history prints nothing, got %q", out.String())
	}
}
