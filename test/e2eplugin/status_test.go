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

package e2eplugin

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	kt "github.com/tokenmint/tokenmint/internal/plugin"
	"github.com/tokenmint/tokenmint/internal/secret"
)

const (
	fingerprint = "hmac-sha256:0123456789abcdef0123456789abcdef"
	staleMsg    = `Deployment/billing (env, subPath), Pod/debug (envFrom) read Secret "orders-token" in a way that never shows them a new token (environment variables and subPath mounts are read once, at start): add them to spec.restartTargets, or mount the Secret as a volume without subPath`
)

// tokenFixture is an AccessToken with the status and Secret the manager
// would have written, and the token that Secret holds.
type tokenFixture struct {
	at    *tokensv1alpha1.AccessToken
	token string
	// issued, expires and renewal are the status times, to the second.
	issued, expires, renewal time.Time
}

// newToken creates an AccessToken, writes its status through the status
// subresource as the manager does, its Secret (owned by it, holding a JWT)
// and a Warning event about it.
func newToken(ns, name string, labels map[string]string) *tokenFixture {
	GinkgoHelper()
	at := &tokensv1alpha1.AccessToken{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: tokensv1alpha1.AccessTokenSpec{
			IssuerRef: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: "orders"},
			Secret:    tokensv1alpha1.SecretTemplate{Name: name + "-token"},
			RestartTargets: []tokensv1alpha1.RestartTarget{
				{Kind: "Deployment", Name: "reports"}},
		},
	}
	Expect(k8sClient.Create(ctx, at)).To(Succeed())

	now := time.Now().Truncate(time.Second)
	f := &tokenFixture{at: at, issued: now.Add(-20 * time.Minute), expires: now.Add(40 * time.Minute), renewal: now.Add(30 * time.Minute)}
	var err error
	f.token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": f.expires.Unix(), "iat": f.issued.Unix(),
		"sub": "canary-subject"}).SignedString([]byte("canary-signing-key"))
	Expect(err).NotTo(HaveOccurred())

	at.Status = tokensv1alpha1.AccessTokenStatus{
		ObservedGeneration: at.Generation,
		Conditions: []metav1.Condition{
			{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonTokenValid,
				Message: "the Secret holds a valid token", LastTransitionTime: metav1.NewTime(f.issued)},
			{Type: tokensv1alpha1.ConditionRenewing, Status: metav1.ConditionFalse, Reason: tokensv1alpha1.ReasonUnauthorized,
				Message: "endpoint answered HTTP 401 Unauthorized: invalid_client: client authentication failed (attempt 3)", LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))},
			{Type: tokensv1alpha1.ConditionRotationVisible, Status: metav1.ConditionFalse, Reason: tokensv1alpha1.ReasonConsumersStale,
				Message: staleMsg, LastTransitionTime: metav1.NewTime(f.issued)},
		},
		IssuedAt:         ptr.To(metav1.NewTime(f.issued)),
		ExpiresAt:        ptr.To(metav1.NewTime(f.expires)),
		RenewalTime:      ptr.To(metav1.NewTime(f.renewal)),
		FailedAttempts:   3,
		LastFailureTime:  ptr.To(metav1.NewTime(now.Add(-time.Minute))),
		TokenFingerprint: fingerprint,
	}
	Expect(k8sClient.Status().Update(ctx, at)).To(Succeed())

	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: at.Spec.Secret.Name, Namespace: ns,
			Labels: map[string]string{tokensv1alpha1.LabelManagedBy: tokensv1alpha1.ManagedByValue},
			Annotations: map[string]string{secret.AnnotationFingerprint: fingerprint,
				secret.AnnotationIssuedAt: f.issued.UTC().Format(time.RFC3339), secret.AnnotationExpiresAt: f.expires.UTC().Format(time.RFC3339)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "AccessToken",
				Name: at.Name, UID: at.UID, Controller: ptr.To(true)}}},
		Data: map[string][]byte{"token": []byte(f.token), "scope": []byte("orders.read")},
	}
	Expect(k8sClient.Create(ctx, s)).To(Succeed())

	// Through the events.k8s.io API, as the manager's recorder writes them:
	// a series of three.
	Expect(k8sClient.Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", name, now.UnixNano()), Namespace: ns},
		Regarding: corev1.ObjectReference{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "AccessToken",
			Namespace: ns, Name: name, UID: at.UID},
		Type: corev1.EventTypeWarning, Reason: tokensv1alpha1.ReasonUnauthorized, Action: "Issue",
		Note:                "endpoint answered HTTP 401 Unauthorized: invalid_client",
		EventTime:           metav1.NewMicroTime(now.Add(-3 * time.Minute)),
		Series:              &eventsv1.EventSeries{Count: 3, LastObservedTime: metav1.NewMicroTime(now.Add(-time.Minute))},
		ReportingController: "tokenmint.dev/accesstoken", ReportingInstance: "tokenmint-manager",
	})).To(Succeed())
	return f
}

var _ = Describe("status", func() {
	It("shows conditions, times, failures, events, the Secret's keys and who needs a restart, never the token", func() {
		ns := newNamespace()
		f := newToken(ns, "orders", nil)

		r := plugin("status", "orders", "-n", ns)
		Expect(r.code).To(Equal(0), r.stderr)
		out := r.stdout
		Expect(out).To(ContainSubstring("AccessToken " + ns + "/orders\n"))
		Expect(out).To(MatchRegexp(`Issuer:\s+ClusterTokenIssuer/orders \(not found\)\n`))
		Expect(out).To(MatchRegexp(`Issued:\s+` + f.issued.UTC().Format(time.RFC3339) + ` \(2\dm ago\)`))
		Expect(out).To(MatchRegexp(`Expires:\s+` + f.expires.UTC().Format(time.RFC3339) + ` \(in \d+m\)`))
		Expect(out).To(MatchRegexp(`Next renewal:\s+` + f.renewal.UTC().Format(time.RFC3339) + ` \(in \d+m\)`))
		Expect(out).To(MatchRegexp(`Failed attempts:\s+3\n`))
		Expect(out).To(MatchRegexp(`Last error:\s+Unauthorized: endpoint answered HTTP 401`))
		Expect(out).To(MatchRegexp(`Ready\s+True\s+TokenValid\s+2\dm ago\s+the Secret holds a valid token`))
		Expect(out).To(MatchRegexp(`Renewing\s+False\s+Unauthorized`))
		Expect(out).To(MatchRegexp(`token\s+` + strconv.Itoa(len(f.token)) + ` bytes`))
		Expect(out).To(MatchRegexp(`scope\s+11 bytes`))
		Expect(out).To(ContainSubstring("token: " + strconv.Itoa(len(f.token)) + " bytes, a JWT (HS256) expiring " + f.expires.UTC().Format(time.RFC3339)))
		Expect(out).To(ContainSubstring("fingerprint annotation: " + fingerprint + " (matches status)"))
		Expect(out).To(ContainSubstring("    Deployment/billing (env, subPath)\n    Pod/debug (envFrom)\n"))
		Expect(out).To(ContainSubstring("Restart targets: Deployment/reports"))
		Expect(out).To(MatchRegexp(`\d+s ago\s+Warning\s+Unauthorized\s+3\s+endpoint answered HTTP 401 Unauthorized: invalid_client`))
		expectNoneOf(r.output(), []string{f.token, "orders.read"})

		By("as JSON")
		r = plugin("status", "orders", "-n", ns, "-o", "json")
		Expect(r.code).To(Equal(0), r.stderr)
		var v kt.StatusView
		Expect(json.Unmarshal([]byte(r.stdout), &v)).To(Succeed())
		Expect(v.ExpiresAt.Time).To(BeTemporally("==", f.expires))
		Expect(v.IssuedAt.Time).To(BeTemporally("==", f.issued))
		Expect(v.RenewalTime.Time).To(BeTemporally("==", f.renewal))
		Expect(v.FailedAttempts).To(BeEquivalentTo(3))
		Expect(v.NeedsRestart).To(Equal([]string{"Deployment/billing (env, subPath)", "Pod/debug (envFrom)"}))
		Expect(v.Secret.Keys).To(ConsistOf(kt.KeyView{Key: "scope", Bytes: 11}, kt.KeyView{Key: "token", Bytes: len(f.token)}))
		Expect(*v.Secret.FingerprintMatches).To(BeTrue())
		Expect(v.Secret.Token.JWTExpiresAt.Time).To(BeTemporally("==", f.expires))
		Expect(v.Events).To(HaveLen(1))
		Expect(v.Events[0].Count).To(BeEquivalentTo(3))
		expectNoneOf(r.output(), []string{f.token, "orders.read"})
	})

	It("shows every AccessToken of a namespace with --all, and of every namespace with -A, as YAML too", func() {
		ns, other := newNamespace(), newNamespace()
		newToken(ns, "a", nil)
		newToken(ns, "b", nil)
		newToken(other, "c", nil)

		r := plugin("status", "--all", "-n", ns)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(ContainSubstring("AccessToken " + ns + "/a\n"))
		Expect(r.stdout).To(ContainSubstring("AccessToken " + ns + "/b\n"))
		Expect(r.stdout).NotTo(ContainSubstring(other))

		r = plugin("status", "-A", "-o", "yaml")
		Expect(r.code).To(Equal(0), r.stderr)
		var views []kt.StatusView
		Expect(yaml.Unmarshal([]byte(r.stdout), &views)).To(Succeed())
		var names []string
		for _, v := range views {
			if v.Namespace == ns || v.Namespace == other {
				names = append(names, v.Namespace+"/"+v.Name)
			}
		}
		Expect(names).To(ConsistOf(ns+"/a", ns+"/b", other+"/c"))

		r = plugin("status", "missing", "-n", ns)
		Expect(r.code).To(Equal(1))
		Expect(r.stderr).To(ContainSubstring(`"missing" not found`))
	})
})

var _ = Describe("renew", func() {
	renewValue := func(ns, name string) string {
		at := &tokensv1alpha1.AccessToken{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, at)).To(Succeed())
		return at.Annotations[tokensv1alpha1.AnnotationRenew]
	}

	It("sets the renew annotation to the unix time, on one AccessToken, a selection or all", func() {
		ns := newNamespace()
		newToken(ns, "a", map[string]string{"team": "payments"})
		newToken(ns, "b", map[string]string{"team": "reports"})
		newToken(ns, "c", nil)

		before := time.Now().Unix()
		r := plugin("renew", "a", "-n", ns)
		Expect(r.code).To(Equal(0), r.stderr)
		value := renewValue(ns, "a")
		Expect(r.stdout).To(MatchRegexp(`^accesstoken ` + ns + `/a: renewal requested \(` + tokensv1alpha1.AnnotationRenew + "=" + value +
			`\); after 3 failed attempts it is served by the next retry \(due in \d+m\)\n$`))
		unix, err := strconv.ParseInt(value, 10, 64)
		Expect(err).NotTo(HaveOccurred())
		Expect(unix).To(BeNumerically(">=", before))
		Expect(unix).To(BeNumerically("<=", time.Now().Unix()))
		Expect(renewValue(ns, "b")).To(BeEmpty())

		r = plugin("renew", "-l", "team=reports", "-n", ns)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(renewValue(ns, "b")).NotTo(BeEmpty())
		Expect(renewValue(ns, "c")).To(BeEmpty())

		r = plugin("renew", "--all", "-n", ns)
		Expect(r.code).To(Equal(0), r.stderr)
		for _, name := range []string{"a", "b", "c"} {
			Expect(r.stdout).To(ContainSubstring("accesstoken " + ns + "/" + name + ": renewal requested"))
			Expect(renewValue(ns, name)).NotTo(BeEmpty())
		}
		Expect(renewValue(ns, "a")).NotTo(Equal(value), "a second request is a new value")

		By("status shows the request until the manager acts on it")
		r = plugin("status", "c", "-n", ns)
		Expect(r.stdout).To(MatchRegexp(`Renewal requested:\s+` + renewValue(ns, "c") + ` \(not acted on yet\)`))

		r = plugin("renew", "-n", ns)
		Expect(r.code).To(Equal(1))
		Expect(r.stderr).To(ContainSubstring("exactly one of NAME, --all or -l SELECTOR"))
	})
})

var _ = Describe("inspect secret", func() {
	It("shows keys, sizes, the fingerprint and the JWT's expiry, never a value", func() {
		ns := newNamespace()
		f := newToken(ns, "orders", nil)

		r := plugin("inspect", "secret", "orders-token", "-n", ns)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(MatchRegexp(`Owned by:\s+AccessToken/orders`))
		Expect(r.stdout).To(MatchRegexp(`Fingerprint:\s+` + fingerprint + ` \(matches the AccessToken's status\)`))
		Expect(r.stdout).To(MatchRegexp(`Token \(key "token"\):\s+` + strconv.Itoa(len(f.token)) + ` bytes, a JWT \(HS256\) expiring ` +
			f.expires.UTC().Format(time.RFC3339)))
		Expect(r.stdout).To(MatchRegexp(`scope\s+11 bytes`))
		expectNoneOf(r.output(), []string{f.token, "orders.read", "canary-subject"})

		r = plugin("inspect", "secret", "orders-token", "-n", ns, "-o", "json")
		Expect(r.code).To(Equal(0), r.stderr)
		var v kt.InspectView
		Expect(json.Unmarshal([]byte(r.stdout), &v)).To(Succeed())
		Expect(v.Token.JWT).To(BeTrue())
		Expect(v.Token.JWTExpiresAt.Time).To(BeTemporally("==", f.expires))
		Expect(v.ExpiresAt.Time).To(BeTemporally("==", f.expires))
		Expect(v.OwnedBy).To(Equal("AccessToken/orders"))
		expectNoneOf(r.output(), []string{f.token, "orders.read", "canary-subject"})

		By("another key, which holds no JWT")
		r = plugin("inspect", "secret", "orders-token", "-n", ns, "--key", "scope")
		Expect(r.stdout).To(MatchRegexp(`Token \(key "scope"\):\s+11 bytes, not a JWT`))
		expectNoneOf(r.output(), []string{f.token, "orders.read"})
	})
})
