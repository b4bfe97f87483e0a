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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// floor does, for each AccessToken handed to it, only the unavoidable work of
// issuing one token: one call to the endpoint, one Secret write and one status
// write, with `workers` goroutines, and a client without client-side rate limit.
func (b *bench) floor(ctx context.Context, workers int, in <-chan *tokensv1alpha1.AccessToken) error {
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
				if err := b.floorOne(ctx, httpClient, fp, at); err != nil {
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

func (b *bench) floorOne(ctx context.Context, hc *http.Client, fp *secret.Fingerprinter, at *tokensv1alpha1.AccessToken) error {
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

	// 2. The Secret, shaped as tokenmint's: same labels, owner and data.
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: at.Spec.Secret.Name, Namespace: at.Namespace, Labels: secret.Labels(at),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "AccessToken",
				Name: at.Name, UID: at.UID, Controller: new(true), BlockOwnerDeletion: new(true)}}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{secret.Key(at): []byte(tok.AccessToken)},
	}
	if err := b.client.Create(ctx, s); err != nil {
		return fmt.Errorf("floor: creating Secret: %w", err)
	}
	b.count("POST", "secrets")

	// 3. The status, with the same fields tokenmint sets.
	orig := at.DeepCopy()
	var h [16]byte
	_, _ = rand.Read(h[:])
	st := &at.Status
	st.ObservedGeneration = at.Generation
	st.IssuedAt = &metav1.Time{Time: issued}
	st.ExpiresAt = &metav1.Time{Time: expires}
	st.RenewalTime = &metav1.Time{Time: issued.Add(expires.Sub(issued) * 2 / 3)}
	st.TokenFingerprint = fp.Fingerprint([]byte(tok.AccessToken))
	st.InputsHash = hex.EncodeToString(h[:])
	msg := "Token issued (first token); expires " + expires.UTC().Format(time.RFC3339) +
		"; next renewal " + st.RenewalTime.UTC().Format(time.RFC3339)
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionRenewing,
		Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonIssued, Message: msg, ObservedGeneration: at.Generation})
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionReady,
		Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonTokenValid, ObservedGeneration: at.Generation,
		Message: "the Secret holds a valid token until " + expires.UTC().Format(time.RFC3339)})
	if err := b.client.Status().Patch(ctx, at, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("floor: writing status: %w", err)
	}
	b.count("PATCH", "accesstokens/status")
	return nil
}
