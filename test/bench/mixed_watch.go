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
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// honestWatch watches the honest tenant's namespace only (the hostile one may
// hold objects the benchmark's own types cannot decode): when each AccessToken
// first turned Ready, every time one was Ready=False, and every token that
// reached a Secret, matched against the honest endpoint's log.
type honestWatch struct {
	cache.Cache
	log *issueLog

	mu         sync.Mutex
	firstReady map[string]time.Time
	// notReady counts, by AccessToken, observations of Ready=False after it
	// was first Ready; before counts those before.
	notReady, notReadyBefore map[string]int
	reasons                  map[string]int // reasons of Ready=False after first Ready
	inSecret                 map[string][]held
	lastToken                map[string]string
	wrongSecret              int // a token issued for one AccessToken found in another's Secret
	unknownTokens            int // a token in a Secret the honest endpoint never issued
}

func startHonestWatch(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, ns string, log *issueLog) (*honestWatch, error) {
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultTransform: cache.TransformStripManagedFields(),
		DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		return nil, err
	}
	w := &honestWatch{Cache: c, log: log, firstReady: map[string]time.Time{}, notReady: map[string]int{},
		notReadyBefore: map[string]int{}, reasons: map[string]int{}, inSecret: map[string][]held{}, lastToken: map[string]string{}}
	ats, err := c.GetInformer(ctx, &tokensv1alpha1.AccessToken{})
	if err != nil {
		return nil, err
	}
	if _, err := ats.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.observeToken(o) },
		UpdateFunc: func(_, o any) { w.observeToken(o) },
	}); err != nil {
		return nil, err
	}
	secrets, err := c.GetInformer(ctx, &corev1.Secret{})
	if err != nil {
		return nil, err
	}
	if _, err := secrets.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.observeSecret(o) },
		UpdateFunc: func(_, o any) { w.observeSecret(o) },
	}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the benchmark's cache of namespace %s did not sync", ns)
	}
	return w, nil
}

func (w *honestWatch) observeToken(o any) {
	at, ok := o.(*tokensv1alpha1.AccessToken)
	if !ok {
		return
	}
	c := meta.FindStatusCondition(at.Status.Conditions, tokensv1alpha1.ConditionReady)
	if c == nil {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	_, wasReady := w.firstReady[at.Name]
	switch {
	case c.Status == "True" && !wasReady:
		w.firstReady[at.Name] = now
	case c.Status == "False" && wasReady:
		w.notReady[at.Name]++
		w.reasons[c.Reason]++
	case c.Status == "False":
		w.notReadyBefore[at.Name]++
	}
}

func (w *honestWatch) observeSecret(o any) {
	s, ok := o.(*corev1.Secret)
	if !ok {
		return
	}
	tok := string(s.Data["token"])
	if tok == "" || strings.HasPrefix(s.Name, "shared-") { // the shared issuer's, not this endpoint's
		return
	}
	now := time.Now()
	rec, known := w.log.lookup(tok)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !known {
		w.unknownTokens++
		return
	}
	if s.Name != rec.subject+"-token" {
		w.wrongSecret++
		return
	}
	if w.lastToken[rec.subject] == tok {
		return
	}
	w.lastToken[rec.subject] = tok
	w.inSecret[rec.subject] = append(w.inSecret[rec.subject], held{at: now, expiry: rec.expiry})
}

// ready returns how many AccessTokens have been Ready, and when the last first was.
func (w *honestWatch) ready() (int, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var last time.Time
	for _, t := range w.firstReady {
		if t.After(last) {
			last = t
		}
	}
	return len(w.firstReady), last
}

// waitReady waits until n AccessTokens have been Ready or the timeout passes,
// printing progress, and returns how many were and when the last turned so.
func (w *honestWatch) waitReady(ctx context.Context, n int, start time.Time, timeout time.Duration, p *progress, status func() string) (int, time.Time, error) {
	deadline := start.Add(timeout)
	lastPrint := time.Now()
	for {
		got, last := w.ready()
		if got >= n || time.Now().After(deadline) {
			return got, last, nil
		}
		if time.Since(lastPrint) >= 10*time.Second {
			el := time.Since(start).Seconds()
			p.printf("  honest: %d/%d Ready after %.0f s; %s", got, n, el, status())
			lastPrint = time.Now()
		}
		select {
		case <-ctx.Done():
			return got, last, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// secretSequences copies every AccessToken's tokens as they reached its Secret.
func (w *honestWatch) secretSequences() map[string][]held {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string][]held, len(w.inSecret))
	for k, v := range w.inSecret {
		out[k] = append([]held(nil), v...)
	}
	return out
}

// notReadySummary tells how many AccessTokens were ever Ready=False, how many
// of them after first being Ready, and the reasons seen then.
func (w *honestWatch) notReadySummary() (ever, after int, reasons string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	union := map[string]bool{}
	for k := range w.notReady {
		union[k] = true
	}
	for k := range w.notReadyBefore {
		union[k] = true
	}
	var rs []string
	for r, n := range w.reasons {
		rs = append(rs, fmt.Sprintf("%s ×%d", r, n))
	}
	sort.Strings(rs)
	return len(union), len(w.notReady), strings.Join(rs, ", ")
}

func (w *honestWatch) anomalies() (wrongSecret, unknown int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wrongSecret, w.unknownTokens
}
