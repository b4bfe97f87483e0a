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

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// tokenName is the name of the i-th AccessToken of a run.
func tokenName(i int) string { return fmt.Sprintf("t-%05d", i) }

func newAccessToken(ns string, i int) *tokensv1alpha1.AccessToken {
	return &tokensv1alpha1.AccessToken{
		ObjectMeta: metav1.ObjectMeta{Name: tokenName(i), Namespace: ns},
		Spec: tokensv1alpha1.AccessTokenSpec{
			IssuerRef: tokensv1alpha1.IssuerReference{Kind: tokensv1alpha1.ClusterTokenIssuerKind, Name: issuerName},
			Secret:    tokensv1alpha1.SecretTemplate{Name: tokenName(i) + "-token"},
		},
	}
}

// createTokens creates n AccessTokens in ns with `creators` concurrent clients,
// handing each created one to out (when not nil). It returns when all exist.
func (b *bench) createTokens(ctx context.Context, ns string, n int, out chan<- *tokensv1alpha1.AccessToken) error {
	idx := make(chan int)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range b.opts.creators {
		wg.Go(func() {
			for i := range idx {
				at := newAccessToken(ns, i)
				if err := b.client.Create(ctx, at); err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("creating AccessToken %s/%s: %w", ns, at.Name, err))
					continue
				}
				b.count("POST", "accesstokens")
				if out != nil {
					out <- at
				}
			}
		})
	}
	for i := range n {
		select {
		case idx <- i:
		case <-ctx.Done():
		}
	}
	close(idx)
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	return ctx.Err()
}

// loop is what a plain loop does per AccessToken.
type loop int

const (
	// loopFloor is only the unavoidable work of issuing one token: one call to
	// the endpoint, one Secret create and one status write.
	loopFloor loop = iota
	// loopSequence makes the requests the manager makes to issue a first token,
	// as measured at 67a68db (1 read, 2 writes): the Secret read live (a foreign
	// one of that name must not be taken over), the call, the Secret applied and
	// the status patched. Beside the operator's time it tells the cost of those
	// requests from the cost of the controller machinery around them (watches,
	// queue, the second reconcile caused by the Secret's own event).
	loopSequence
	// loopOldSequence replays the requests the manager made at f38efc0 (5 reads,
	// 3 writes): a cached Secret miss confirmed live, the live re-reads of the
	// AccessToken and the Secret, the credential's version and value, the call,
	// the Secret applied, an event (sent in the background, as a recorder does)
	// and the status patch. It shows what the changes since cost or saved.
	loopOldSequence
	// loopApply is the sequence without the read: the Secret applied, the
	// status patched. With floor and sequence it splits the gap between them
	// into the read's share and server-side apply's.
	loopApply
)

func (l loop) String() string {
	return [...]string{"floor", "sequence", "f38efc0-sequence", "apply"}[l]
}

// floor runs loop l for each AccessToken handed to it, with `workers`
// goroutines and a client without client-side rate limit.
func (b *bench) floor(ctx context.Context, l loop, workers int, in <-chan *tokensv1alpha1.AccessToken) error {
	httpClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: workers, MaxIdleConnsPerHost: workers, IdleConnTimeout: 90 * time.Second}}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	fp := secret.NewFingerprinter(key)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range workers {
		wg.Go(func() {
			for at := range in {
				if err := b.floorOne(ctx, l, httpClient, fp, at); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	return nil
}

func (b *bench) floorOne(ctx context.Context, l loop, hc *http.Client, fp *secret.Fingerprinter, at *tokensv1alpha1.AccessToken) error {
	secretKey := types.NamespacedName{Namespace: at.Namespace, Name: at.Spec.Secret.Name}
	credKey := types.NamespacedName{Namespace: credentialsNamespace, Name: credentialSecret}
	get := func(key types.NamespacedName, o client.Object, resource string) error {
		err := b.client.Get(ctx, key, o)
		b.count("GET", resource)
		return client.IgnoreNotFound(err)
	}
	if l == loopOldSequence {
		if err := get(secretKey, &corev1.Secret{}, "secrets"); err != nil {
			return err
		}
		if err := get(client.ObjectKeyFromObject(at), &tokensv1alpha1.AccessToken{}, "accesstokens"); err != nil {
			return err
		}
		if err := get(secretKey, &corev1.Secret{}, "secrets"); err != nil {
			return err
		}
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		if err := get(credKey, m, "secrets"); err != nil {
			return err
		}
	}
	if l == loopSequence {
		if err := get(secretKey, &corev1.Secret{}, "secrets"); err != nil {
			return err
		}
	}
	if l == loopOldSequence {
		if err := get(credKey, &corev1.Secret{}, "secrets"); err != nil {
			return err
		}
	}

	// 1. The endpoint.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.endpoint.URL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.credential)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("floor: endpoint answered %d: %v", resp.StatusCode, err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		return err
	}
	issued := time.Now()
	expires := issued.Add(time.Duration(tok.ExpiresIn) * time.Second)
	var h [16]byte
	_, _ = rand.Read(h[:])
	rec := secret.Record{Fingerprint: fp.Fingerprint([]byte(tok.AccessToken)), IssuedAt: issued, ExpiresAt: &expires,
		InputsHash: hex.EncodeToString(h[:])}

	// 2. The Secret, shaped as tokenmint's: same labels, owner and data.
	if l != loopFloor {
		data := map[string][]byte{secret.Key(at): []byte(tok.AccessToken)}
		if err := b.client.Apply(ctx, secret.Desired(at, data, rec), client.FieldOwner("bench"), client.ForceOwnership); err != nil {
			return fmt.Errorf("%s: applying Secret: %w", l, err)
		}
		b.count("APPLY", "secrets")
		if l != loopOldSequence {
			return b.floorStatus(ctx, l, at, rec)
		}
		b.events.Add(1)
		go func() {
			defer b.events.Done()
			_ = b.client.Create(context.WithoutCancel(ctx), &eventsv1.Event{
				ObjectMeta: metav1.ObjectMeta{GenerateName: at.Name + ".", Namespace: at.Namespace},
				EventTime:  metav1.NowMicro(), ReportingController: "bench", ReportingInstance: "bench",
				Action: "Issue", Reason: tokensv1alpha1.ReasonIssued, Type: corev1.EventTypeNormal,
				Regarding: corev1.ObjectReference{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "AccessToken",
					Namespace: at.Namespace, Name: at.Name, UID: at.UID, ResourceVersion: at.ResourceVersion},
				Note: "Token issued (first token); expires " + expires.UTC().Format(time.RFC3339),
			})
			b.count("POST", "events")
		}()
		return b.floorStatus(ctx, l, at, rec)
	}
	// The same Secret as tokenmint's (labels, annotations, owner, data), created.
	desired := secret.Desired(at, map[string][]byte{secret.Key(at): []byte(tok.AccessToken)}, rec)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: at.Spec.Secret.Name, Namespace: at.Namespace, Labels: desired.Labels,
			Annotations: desired.Annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "AccessToken",
				Name: at.Name, UID: at.UID, Controller: new(true), BlockOwnerDeletion: new(true)}}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{secret.Key(at): []byte(tok.AccessToken)},
	}
	if err := b.client.Create(ctx, s); err != nil {
		return fmt.Errorf("floor: creating Secret: %w", err)
	}
	b.count("POST", "secrets")
	return b.floorStatus(ctx, l, at, rec)
}

// floorStatus writes the status, with the same fields tokenmint sets.
func (b *bench) floorStatus(ctx context.Context, l loop, at *tokensv1alpha1.AccessToken, rec secret.Record) error {
	var orig *tokensv1alpha1.AccessToken
	if l == loopOldSequence {
		orig = at.DeepCopy() // that sequence diffed whole objects
	}
	issued, expires := rec.IssuedAt, *rec.ExpiresAt
	st := &at.Status
	st.ObservedGeneration = at.Generation
	st.IssuedAt = &metav1.Time{Time: issued}
	st.ExpiresAt = &metav1.Time{Time: expires}
	st.RenewalTime = &metav1.Time{Time: issued.Add(expires.Sub(issued) * 2 / 3)}
	st.TokenFingerprint = rec.Fingerprint
	st.InputsHash = rec.InputsHash
	msg := "Token issued (first token); expires " + expires.UTC().Format(time.RFC3339) +
		"; next renewal " + st.RenewalTime.UTC().Format(time.RFC3339)
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionRenewing,
		Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonIssued, Message: msg, ObservedGeneration: at.Generation})
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionReady,
		Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonTokenValid, ObservedGeneration: at.Generation,
		Message: "the Secret holds a valid token until " + expires.UTC().Format(time.RFC3339)})
	if l == loopOldSequence {
		if err := b.client.Status().Patch(ctx, at, client.MergeFrom(orig)); err != nil {
			return fmt.Errorf("%s: writing status: %w", l, err)
		}
		b.count("PATCH", "accesstokens/status")
		return nil
	}
	// Written as the manager writes it, in the cheapest form there is: a merge
	// patch of the status (a first status: all of it), answered with the
	// AccessToken's metadata only.
	patch, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return err
	}
	m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: at.Namespace, Name: at.Name}}
	m.SetGroupVersionKind(tokensv1alpha1.GroupVersion.WithKind("AccessToken"))
	if err := b.client.Status().Patch(ctx, m, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("%s: writing status: %w", l, err)
	}
	b.count("PATCH", "accesstokens/status")
	return nil
}
