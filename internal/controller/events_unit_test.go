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
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

// spentLimiter is a rate limiter with nothing left: it counts who asked.
type spentLimiter struct{ asked atomic.Int64 }

func (l *spentLimiter) TryAccept() bool { l.asked.Add(1); return false }
func (l *spentLimiter) Accept()         { l.asked.Add(1); select {} }
func (l *spentLimiter) Stop()           {}
func (l *spentLimiter) QPS() float32    { return 0 }
func (l *spentLimiter) Wait(ctx context.Context) error {
	l.asked.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

// Events go out through a budget of their own: with the manager's budget
// spent (every token write waiting), an event is still sent, and sending it
// takes nothing from that budget.
func TestEventsHaveABudgetOfTheirOwn(t *testing.T) {
	var mu sync.Mutex
	var got []eventsv1.Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/apis/events.k8s.io/v1/namespaces/team-a/events" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var ev eventsv1.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body)
	}))
	defer srv.Close()

	spent := &spentLimiter{}
	cfg := (&Config{KubeAPIQPS: 1, KubeAPIBurst: 1})
	manager, _ := cfg.RESTConfigs(&rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	manager.RateLimiter = spent

	b, err := newEventBroadcaster(manager, 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- b.Start(ctx) }()
	scheme := runtime.NewScheme()
	if err := tokensv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	rec, err := b.recorder(scheme, "tokenmint")
	if err != nil {
		t.Fatal(err)
	}
	at := &tokensv1alpha1.AccessToken{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "api", UID: "uid-1"}}
	rec.Eventf(at, nil, corev1.EventTypeNormal, "Issued", "Issue", "first token issued")

	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no event reached the API server while the manager's budget was spent")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	ev := got[0]
	mu.Unlock()
	if ev.Reason != "Issued" || ev.Regarding.Name != "api" || ev.ReportingController != "tokenmint" {
		t.Fatalf("event %s about %s by %s", ev.Reason, ev.Regarding.Name, ev.ReportingController)
	}
	if n := spent.asked.Load(); n != 0 {
		t.Fatalf("sending an event asked the manager's budget %d times", n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the broadcaster did not stop with its context")
	}
}
