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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
)

func object(ns, name string) *tokensv1alpha1.AccessToken {
	return &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

// gate is a job body that blocks until released, recording its start order.
type gate struct {
	mu      sync.Mutex
	started []string
	release chan struct{}
}

func (g *gate) job(name string) func(context.Context) (ctrl.Result, error) {
	return func(context.Context) (ctrl.Result, error) {
		g.mu.Lock()
		g.started = append(g.started, name)
		g.mu.Unlock()
		<-g.release
		return ctrl.Result{}, nil
	}
}

func (g *gate) order() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.started...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// startedCalls is a Calls whose Start runs until the test ends.
func startedCalls(t *testing.T, perIssuer, perNamespace int) *Calls {
	c := NewCalls(perIssuer, perNamespace)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "start", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.started })
	return c
}

func TestCallsWaitForStart(t *testing.T) {
	c := NewCalls(1, 1)
	ran := make(chan struct{})
	c.Submit(object("ns", "a"), "i", func(context.Context) (ctrl.Result, error) { close(ran); return ctrl.Result{}, nil })
	select {
	case <-ran:
		t.Fatal("a job ran before Start")
	case <-time.After(20 * time.Millisecond):
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = c.Start(ctx) }()
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("a job queued before Start never ran")
	}
}

func TestCallsBoundEachIssuerAndLeaveOthersFree(t *testing.T) {
	c := startedCalls(t, 3, 100)
	silent := &gate{release: make(chan struct{})}
	for i := range 10 {
		c.Submit(object("hostile", fmt.Sprint("a", i)), "silent", silent.job(fmt.Sprint("a", i)))
	}
	waitFor(t, "three silent calls", func() bool { return len(silent.order()) == 3 })
	if w, r := c.Waiting(); w != 7 || r != 3 {
		t.Fatalf("waiting %d running %d, want 7 and 3", w, r)
	}
	done := make(chan struct{})
	c.Submit(object("honest", "b"), "fast", func(context.Context) (ctrl.Result, error) {
		close(done)
		return ctrl.Result{}, nil
	})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a call to another issuer waited behind the silent one")
	}
	close(silent.release)
	waitFor(t, "every silent call", func() bool { return len(silent.order()) == 10 })
}

func TestCallsServeNamespacesInTurn(t *testing.T) {
	c := startedCalls(t, 1, 100)
	g := &gate{release: make(chan struct{})}
	// The first call takes the only slot; then one namespace queues many calls
	// before another queues one.
	c.Submit(object("x", "first"), "shared", g.job("x/first"))
	waitFor(t, "the first call", func() bool { return len(g.order()) == 1 })
	for i := range 5 {
		c.Submit(object("greedy", fmt.Sprint(i)), "shared", g.job(fmt.Sprint("greedy/", i)))
	}
	c.Submit(object("modest", "0"), "shared", g.job("modest/0"))
	for range 6 {
		g.release <- struct{}{}
	}
	waitFor(t, "all calls", func() bool { return len(g.order()) == 7 })
	close(g.release)
	got := g.order()
	if got[1] != "greedy/0" || got[2] != "modest/0" {
		t.Fatalf("order %v: the modest namespace should go right after the greedy one's first call", got)
	}
}

func TestCallsBoundEachNamespace(t *testing.T) {
	c := startedCalls(t, 100, 2)
	g := &gate{release: make(chan struct{})}
	for i := range 3 {
		c.Submit(object("ns", fmt.Sprint(i)), fmt.Sprint("issuer-", i), g.job(fmt.Sprint(i)))
	}
	waitFor(t, "two calls", func() bool { return len(g.order()) == 2 })
	time.Sleep(20 * time.Millisecond)
	if n := len(g.order()); n != 2 {
		t.Fatalf("%d calls of one namespace in flight, want 2", n)
	}
	close(g.release)
	waitFor(t, "the third call", func() bool { return len(g.order()) == 3 })
}

func TestCallsKeepOneJobPerObjectAndItsResult(t *testing.T) {
	c := startedCalls(t, 1, 1)
	key := types.NamespacedName{Namespace: "ns", Name: "a"}
	g := &gate{release: make(chan struct{})}
	if !c.Submit(object("ns", "a"), "i", g.job("a")) {
		t.Fatal("first submit refused")
	}
	if c.Submit(object("ns", "a"), "i", g.job("again")) {
		t.Fatal("a second job for the same object was accepted")
	}
	if !c.Busy(key) {
		t.Fatal("not busy while its job runs")
	}
	if _, found := c.Take(key); found {
		t.Fatal("a result before the job ended")
	}
	close(g.release)
	ev := <-c.Events()
	if ev.Object.GetName() != "a" {
		t.Fatalf("event for %q", ev.Object.GetName())
	}
	if c.Busy(key) {
		t.Fatal("busy after its job ended")
	}
	if job, found := c.Take(key); !found || !job.Asked || job.Err != nil || job.Object.GetName() != "a" {
		t.Fatalf("result found %v: %+v", found, job)
	}
	if _, found := c.Take(key); found {
		t.Fatal("a result taken twice")
	}

	boom := errors.New("boom")
	c.Submit(object("ns", "a"), "i", func(context.Context) (ctrl.Result, error) { return ctrl.Result{}, boom })
	<-c.Events()
	if job, _ := c.Take(key); !errors.Is(job.Err, boom) || job.Asked {
		t.Fatalf("error %v asked %v, want boom and not asked", job.Err, job.Asked)
	}
}

func TestCallsWaitForRunningJobsOnStop(t *testing.T) {
	c := NewCalls(1, 1)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = c.Start(ctx); close(stopped) }()
	waitFor(t, "start", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.started })
	g := &gate{release: make(chan struct{})}
	c.Submit(object("ns", "a"), "i", g.job("a"))
	c.Submit(object("ns", "b"), "i", g.job("b"))
	waitFor(t, "a", func() bool { return len(g.order()) == 1 })
	cancel()
	select {
	case <-stopped:
		t.Fatal("stopped while a job was running")
	case <-time.After(20 * time.Millisecond):
	}
	close(g.release)
	<-stopped
	if got := g.order(); len(got) != 1 {
		t.Fatalf("jobs started after stop: %v", got)
	}
}

func TestNamespaceLimitersSpendPerNamespace(t *testing.T) {
	l := NewNamespaceLimiters(1, 2)
	now := time.Unix(1000, 0)
	for i := range 2 {
		if d := l.Take("a", now); d != 0 {
			t.Fatalf("take %d waited %v within the burst", i, d)
		}
	}
	if d := l.Take("a", now); d <= 0 || d > time.Second {
		t.Fatalf("third take waits %v, want up to 1s", d)
	}
	if d := l.Take("b", now); d != 0 {
		t.Fatalf("another namespace waited %v", d)
	}
	if d := l.Take("a", now.Add(time.Second)); d != 0 {
		t.Fatalf("after a second: waited %v", d)
	}
}

func TestMintWaitFloorsEveryMint(t *testing.T) {
	r := &AccessTokenReconciler{MinMintInterval: 10 * time.Second, ForcedRenewals: NewNamespaceLimiters(1, 1)}
	now := time.Unix(5000, 0)
	at := object("ns", "a")
	in := &inputs{at: at, secretMatches: true}
	if d, _ := r.mintWait(at, in, decision{reason: "NotIssued"}, now); d != 0 {
		t.Fatalf("first mint waits %v", d)
	}
	at.Status.IssuedAt = &metav1.Time{Time: now.Add(-3 * time.Second)}
	if d, why := r.mintWait(at, in, decision{reason: reasonRenewalRequested}, now); d != 7*time.Second || why == "" {
		t.Fatalf("wait %v (%q), want 7s", d, why)
	}
	at.Status.IssuedAt = &metav1.Time{Time: now.Add(-time.Minute)}
	at.Status.LastFailureTime = &metav1.Time{Time: now.Add(-time.Second)}
	if d, _ := r.mintWait(at, in, decision{reason: "RenewalDue"}, now); d != 9*time.Second {
		t.Fatalf("after a failed attempt: wait %v, want 9s", d)
	}
	at.Status.LastFailureTime = nil
	if d, _ := r.mintWait(at, in, decision{reason: reasonInputsChanged}, now); d != 0 {
		t.Fatalf("forced mint within budget waited %v", d)
	}
	other := object("ns", "b")
	other.Status.IssuedAt = &metav1.Time{Time: now.Add(-time.Minute)}
	otherIn := &inputs{at: other, secretMatches: true}
	if d, why := r.mintWait(other, otherIn, decision{reason: reasonInputsChanged}, now); d <= 0 || why == "" {
		t.Fatalf("forced mint over the namespace budget waited %v", d)
	}
	if d, _ := r.mintWait(other, otherIn, decision{reason: "RenewalDue"}, now); d != 0 {
		t.Fatalf("a scheduled renewal spent the forced budget: waited %v", d)
	}

	By := func(what string, at *tokensv1alpha1.AccessToken, in *inputs) {
		t.Helper()
		if d, _ := r.mintWait(at, in, decision{reason: reasonInputsChanged}, now); d != 0 {
			t.Errorf("%s: waited %v for the namespace's budget", what, d)
		}
	}
	due := object("ns", "due")
	due.Status.IssuedAt = &metav1.Time{Time: now.Add(-2 * time.Hour)}
	due.Status.ExpiresAt = &metav1.Time{Time: now.Add(time.Minute)}
	By("an input change of a token whose renewal is due anyway", due, &inputs{at: due, secretMatches: true})
	cti := object("ns", "cti")
	cti.Spec.IssuerRef.Kind = tokensv1alpha1.ClusterTokenIssuerKind
	cti.Status.IssuedAt = &metav1.Time{Time: now.Add(-time.Minute)}
	By("a ClusterTokenIssuer's own change", cti, &inputs{at: cti, secretMatches: true})
}

func TestCapSupersededRevokesTheOldestEarly(t *testing.T) {
	now := time.Unix(9000, 0)
	st := secret.State{}
	for i := range 3 * maxSuperseded {
		st.Superseded = append(st.Superseded, secret.Superseded{Token: fmt.Sprint(i), RevokeAt: now.Add(time.Hour)})
	}
	capSuperseded(&st, now)
	if len(st.Superseded) != 2*maxSuperseded {
		t.Fatalf("%d kept, want %d", len(st.Superseded), 2*maxSuperseded)
	}
	if st.Superseded[0].Token != fmt.Sprint(maxSuperseded) {
		t.Fatalf("kept from %q, want the newest", st.Superseded[0].Token)
	}
	for i, s := range st.Superseded {
		early := !s.RevokeAt.After(now)
		if want := i < maxSuperseded; early != want {
			t.Fatalf("superseded %d revoked early %v, want %v", i, early, want)
		}
	}
}

func TestBlockedAccessTokensDoNotSpin(t *testing.T) {
	now := time.Unix(9000, 0)
	at := object("ns", "a")
	at.Status.RenewalTime = &metav1.Time{Time: now.Add(-time.Hour)}
	in := &inputs{at: at, state: secret.State{Superseded: []secret.Superseded{{RevokeAt: now.Add(-time.Minute)}}}}
	if d := nextWake(at, in, decision{action: actionBlocked}, now); d < time.Hour {
		t.Fatalf("a blocked AccessToken wakes after %v", d)
	}
	at.Status.ExpiresAt = &metav1.Time{Time: now.Add(time.Minute)}
	if d := nextWake(at, in, decision{action: actionBlocked}, now); d != time.Minute {
		t.Fatalf("a blocked AccessToken wakes after %v, want at its expiry", d)
	}
}

func TestTrimSecretKeepsOnlyTokenmintData(t *testing.T) {
	c := &Config{OperatorNamespace: "op"}
	_ = c.CacheOptions()
	f := secret.NewFingerprinter([]byte("installation-key-0123456789abcdef"))
	c.proofs.Store(f)
	controlled := []metav1.OwnerReference{{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "AccessToken", Name: "a", UID: "u", Controller: func() *bool { b := true; return &b }()}}
	proven := map[string]string{secret.AnnotationOwnerProof: f.OwnerProof("ns", "s", "AccessToken", "a")}
	cases := []struct {
		name string
		s    *corev1.Secret
		keep bool
	}{
		{"an AccessToken's Secret", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", OwnerReferences: controlled, Annotations: proven},
			Data: map[string][]byte{"token": []byte("t")}}, true},
		{"a Secret with a forged controller reference", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", OwnerReferences: controlled},
			Data: map[string][]byte{"blob": make([]byte, 1<<20)}}, false},
		{"a state Secret", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "op", Labels: map[string]string{secret.LabelComponent: secret.ComponentState}},
			Data: map[string][]byte{"state.json": []byte("{}")}}, true},
		{"a tenant's Secret carrying the label", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns",
			Labels: map[string]string{tokensv1alpha1.LabelManagedBy: tokensv1alpha1.ManagedByValue}},
			Data: map[string][]byte{"blob": make([]byte, 1<<20)}}, false},
		{"a state label outside the operator namespace", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Labels: map[string]string{secret.LabelComponent: secret.ComponentState}},
			Data: map[string][]byte{"state.json": []byte("{}")}}, false},
		{"an AccessToken's Secret inflated past the cap", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", OwnerReferences: controlled, Annotations: proven},
			Data: map[string][]byte{"token": []byte("t"), "junk": make([]byte, maxCachedSecretBytes)}}, false},
	}
	for _, tc := range cases {
		out, err := c.trimSecret(tc.s)
		if err != nil {
			t.Fatal(err)
		}
		if kept := out.(*corev1.Secret).Data != nil; kept != tc.keep {
			t.Errorf("%s: data kept %v, want %v", tc.name, kept, tc.keep)
		}
	}
}

func TestOperatorSecretsAreNeverCredentials(t *testing.T) {
	r := &AccessTokenReconciler{OperatorNamespace: "op", FingerprintKeySecret: "fp"}
	for _, key := range []types.NamespacedName{{Namespace: "op", Name: "fp"}, {Namespace: "op", Name: secret.StatePrefix + "x"}} {
		if err := r.credentialAllowed(key, nil); err == nil {
			t.Errorf("%s allowed as a credential", key)
		}
	}
	state := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
		tokensv1alpha1.LabelManagedBy: tokensv1alpha1.ManagedByValue, secret.LabelComponent: secret.ComponentState}}}
	if err := r.credentialAllowed(types.NamespacedName{Namespace: "op", Name: "renamed"}, state); err == nil {
		t.Error("a state Secret allowed as a credential")
	}
	if err := r.credentialAllowed(types.NamespacedName{Namespace: "creds", Name: "fp"}, &corev1.Secret{}); err != nil {
		t.Errorf("a credential refused: %v", err)
	}
	if err := (&Config{OperatorNamespace: "op", CredentialsNamespace: "op"}).Validate(); err == nil {
		t.Error("credentials namespace equal to the operator namespace accepted")
	}
	if err := (&Config{OperatorNamespace: DefaultCredentialsNamespace}).Validate(); err == nil {
		t.Error("the default credentials namespace equal to the operator namespace accepted")
	}
}

func TestSpecWithUnparsableDurationsIsReported(t *testing.T) {
	at := object("ns", "a")
	at.Spec.MaxAge = &tokensv1alpha1.Duration{Invalid: "30d"}
	if p := specProblem(at); p == nil || p.reason != tokensv1alpha1.ReasonInvalidSpec {
		t.Fatalf("problem %+v", p)
	}
	spec := &tokensv1alpha1.IssuerSpec{Timeout: &tokensv1alpha1.Duration{Invalid: "1d"}}
	if p := issuerDurations(spec); p == nil || p.reason != tokensv1alpha1.ReasonInvalidConfig {
		t.Fatalf("issuer problem %+v", p)
	}
}

func TestTransportsAreBounded(t *testing.T) {
	tr := NewTransports(nil)
	spec := &tokensv1alpha1.IssuerSpec{}
	first, err := tr.Get(spec, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 * maxTransports {
		spec := &tokensv1alpha1.IssuerSpec{Timeout: &tokensv1alpha1.Duration{Duration: time.Duration(i+1) * time.Millisecond}}
		if _, err := tr.Get(spec, true, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if n := tr.clients.Len(); n != maxTransports {
		t.Fatalf("%d clients kept, want %d", n, maxTransports)
	}
	again, err := tr.Get(spec, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if again == first {
		t.Fatal("the least recently used client was never evicted")
	}
}

func TestTransportsRefuseAClientCertificateOutsideItsValidity(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	tr := NewTransports(nil)
	_, err = tr.Get(&tokensv1alpha1.IssuerSpec{}, true, now, certPEM, keyPEM)
	if err == nil || !strings.Contains(err.Error(), "the client certificate expired at 2026-05-31T23:00:00Z") {
		t.Errorf("an expired client certificate: %v", err)
	}
	if _, err := tr.Get(&tokensv1alpha1.IssuerSpec{}, true, now.Add(-24*time.Hour), certPEM, keyPEM); err != nil {
		t.Errorf("a valid client certificate: %v", err)
	}
}

func TestOutcomeLabelsAreSnakeCase(t *testing.T) {
	for class, want := range map[issuer.Class]string{issuer.ClassRetryable: "retryable", issuer.ClassUnauthorized: "unauthorized",
		issuer.ClassBadRequest: "bad_request", issuer.ClassRateLimited: "rate_limited", issuer.ClassInvalidResponse: "invalid_response"} {
		if got := outcome(&issuer.Error{Class: class}); got != want {
			t.Errorf("outcome of %v = %q, want %q", class, got, want)
		}
	}
	if outcome(nil) != "success" || outcome(errors.New("x")) != "error" {
		t.Error("success and plain errors")
	}
}

// InFlight counts, for a shard's drain, the jobs waiting or running of the
// namespaces asked for, until each has ended; after a stop, only those running.
func TestCallsInFlightCountsUntilTheResultIsKept(t *testing.T) {
	c := NewCalls(1, 1)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = c.Start(ctx); close(stopped) }()
	waitFor(t, "start", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.started })
	g := &gate{release: make(chan struct{})}
	c.Submit(object("a", "1"), "i", g.job("a1"))
	c.Submit(object("a", "2"), "i", g.job("a2"))
	c.Submit(object("b", "1"), "i", g.job("b1"))
	inA := func(ns string) bool { return ns == "a" }
	waitFor(t, "a1", func() bool { return len(g.order()) == 1 })
	if n := c.InFlight(inA); n != 2 {
		t.Fatalf("in flight for a: %d, want one running and one waiting", n)
	}
	if n := c.InFlight(func(ns string) bool { return ns == "b" }); n != 1 {
		t.Fatalf("in flight for b: %d, want 1 waiting", n)
	}
	cancel() // the waiting jobs are dropped; the running one still counts
	waitFor(t, "stop", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.stopped })
	if n := c.InFlight(inA); n != 1 {
		t.Fatalf("in flight for a after stop: %d, want the running one", n)
	}
	close(g.release)
	<-stopped
	if n := c.InFlight(func(string) bool { return true }); n != 0 {
		t.Fatalf("in flight after every job ended: %d", n)
	}
	if c.NeedLeaderElection() != true {
		t.Fatal("calls run off the leader by default")
	}
	c.AllReplicas = true
	if c.NeedLeaderElection() {
		t.Fatal("with sharding, calls need the leader")
	}
}

// TestCallsDropWaitingLeavesRunningJobs: the waiting jobs of a range being
// released go at once, as if never submitted; a running one ends as usual.
func TestCallsDropWaitingLeavesRunningJobs(t *testing.T) {
	c := startedCalls(t, 1, 1)
	g := &gate{release: make(chan struct{})}
	c.Submit(object("a", "1"), "i", g.job("a1"))
	c.Submit(object("a", "2"), "i", g.job("a2"))
	c.Submit(object("a", "3"), "j", g.job("a3"))
	c.Submit(object("b", "1"), "i", g.job("b1"))
	waitFor(t, "a1", func() bool { return len(g.order()) == 1 })
	inA := func(ns string) bool { return ns == "a" }
	// a3 runs at once on issuer j unless the namespace's one slot is taken.
	if n := c.DropWaiting(inA); n != 2 {
		t.Fatalf("dropped %d jobs, want a2 and a3 (waiting)", n)
	}
	if n := c.InFlight(inA); n != 1 {
		t.Fatalf("in flight for a: %d, want the running a1 only", n)
	}
	if c.Busy(types.NamespacedName{Namespace: "a", Name: "2"}) {
		t.Fatal("a dropped job still counts as busy")
	}
	if waiting, running := c.Waiting(); waiting != 1 || running != 1 {
		t.Fatalf("waiting %d, running %d; want b1 waiting and a1 running", waiting, running)
	}
	close(g.release)
	waitFor(t, "b1", func() bool { return len(g.order()) == 2 })
	if got := g.order(); got[1] != "b1" {
		t.Fatalf("started %v; a dropped job ran", got)
	}
	if _, ok := c.Take(types.NamespacedName{Namespace: "a", Name: "1"}); !ok {
		waitFor(t, "a1's result", func() bool {
			_, ok := c.Take(types.NamespacedName{Namespace: "a", Name: "1"})
			return ok
		})
	}
	// Submitted again, a dropped job runs.
	if !c.Submit(object("a", "2"), "i", g.job("a2")) {
		t.Fatal("a dropped job could not be submitted again")
	}
	waitFor(t, "a2", func() bool { return len(g.order()) == 3 })
}
