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

	"k8s.io/apimachinery/pkg/runtime"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

const (
	// DefaultEventQPS and DefaultEventBurst bound the events the manager
	// sends, apart from its other requests (--kube-api-qps): an Issued event
	// for every first token of ten thousand AccessTokens, or a Warning for
	// each AccessToken of an issuer that fails, would otherwise take a third
	// of the budget the Secrets and status of every namespace's tokens are
	// written with. Events beyond it wait in the broadcaster's queue (a
	// thousand), and the newest are dropped when it is full; every mint is in
	// the audit log either way.
	DefaultEventQPS   = 50.0
	DefaultEventBurst = 100
)

// eventBroadcaster sends the events of the manager's controllers through a
// client of their own, limited to qps and burst. It runs on every replica
// (the AccessToken controller runs on all of them with sharding) and stops
// with the manager.
type eventBroadcaster struct {
	events.EventBroadcaster
	stop context.CancelFunc
}

// newEventBroadcaster starts sending at once, as controller-runtime's own
// does: the broadcaster drops what is recorded before it sends, and the
// controllers may record before the manager starts this runnable.
func newEventBroadcaster(base *rest.Config, qps float64, burst int) (*eventBroadcaster, error) {
	cfg := rest.CopyConfig(base)
	cfg.QPS, cfg.Burst = float32(qps), max(1, burst)
	cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, cfg.Burst)
	cl, err := eventsv1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the events client: %w", err)
	}
	b := &eventBroadcaster{EventBroadcaster: events.NewBroadcaster(&events.EventSinkImpl{Interface: cl})}
	ctx, cancel := context.WithCancel(context.Background())
	b.stop = cancel
	if err := b.StartRecordingToSinkWithContext(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("starting the events broadcaster: %w", err)
	}
	return b, nil
}

// Start sends events until ctx ends.
func (b *eventBroadcaster) Start(ctx context.Context) error {
	<-ctx.Done()
	b.stop()
	b.Shutdown()
	return nil
}

// NeedLeaderElection is false: every replica records events.
func (b *eventBroadcaster) NeedLeaderElection() bool { return false }

// recorder returns a recorder of the controllers' events, reported by name.
func (b *eventBroadcaster) recorder(scheme *runtime.Scheme, name string) (recorder.EventRecorder, error) {
	rec, ok := b.NewRecorder(scheme, name).(recorder.EventRecorder)
	if !ok {
		return nil, fmt.Errorf("the events recorder records no annotated events")
	}
	return rec, nil
}

var _ manager.LeaderElectionRunnable = &eventBroadcaster{}
