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
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
	"github.com/tokenmint/tokenmint/internal/issuer"
)

// callState is what the last call to an issuer's endpoint said about the
// issuer itself.
type callState struct {
	// reason is "" after a success, otherwise why the issuer's endpoint
	// refuses it (Unauthorized, InvalidResponse or EndpointUnavailable).
	reason  string
	message string
	since   time.Time
}

// IssuerHealth remembers, per issuer, what its last call said about the
// issuer: the issuer's Ready condition then tells at a glance that its client
// secret is wrong or its endpoint unreachable, instead of only that its
// configuration is valid. Failures that say something about one AccessToken
// rather than the issuer (its parameters, a provider's 400) are not counted,
// so that one tenant cannot make a shared issuer look broken. An issuer is
// notified only when its state changes, never on every call.
type IssuerHealth struct {
	mu     sync.Mutex
	last   map[string]callState
	notify map[tokensv1alpha1.IssuerKind]chan event.GenericEvent
}

// NewIssuerHealth returns an empty IssuerHealth.
func NewIssuerHealth() *IssuerHealth {
	h := &IssuerHealth{last: map[string]callState{}, notify: map[tokensv1alpha1.IssuerKind]chan event.GenericEvent{}}
	for _, k := range []tokensv1alpha1.IssuerKind{tokensv1alpha1.TokenIssuerKind, tokensv1alpha1.ClusterTokenIssuerKind} {
		h.notify[k] = make(chan event.GenericEvent, 1024)
	}
	return h
}

// Events is the channel on which issuers of kind whose state changed are sent.
func (h *IssuerHealth) Events(kind tokensv1alpha1.IssuerKind) <-chan event.GenericEvent {
	return h.notify[kind]
}

// healthReason classifies a call's result; ok is false when it says nothing
// about the issuer.
func healthReason(err error) (reason string, ok bool) {
	if err == nil {
		return "", true
	}
	switch issuer.ClassOf(err) {
	case issuer.ClassUnauthorized:
		return tokensv1alpha1.ReasonUnauthorized, true
	case issuer.ClassPermanent:
		// A 401 refuses the client; any other permanent refusal may concern
		// one AccessToken only (a scope it asks for, say).
		if ie := (*issuer.Error)(nil); errors.As(err, &ie) && ie.StatusCode == http.StatusUnauthorized {
			return tokensv1alpha1.ReasonUnauthorized, true
		}
		return "", false
	case issuer.ClassRateLimited:
		// A rate limit says the endpoint answers and accepts the client: it
		// waits for its reset and leaves the issuer as it was.
		return "", false
	case issuer.ClassInvalidResponse:
		return tokensv1alpha1.ReasonInvalidResponse, true
	case issuer.ClassRetryable:
		return tokensv1alpha1.ReasonEndpointUnavailable, true
	default:
		return "", false
	}
}

// Record notes the result of a call to the issuer of issuerKey at now. The
// error text is a redacted issuer.Error's.
func (h *IssuerHealth) Record(issuerKey string, err error, now time.Time) {
	if h == nil {
		return
	}
	reason, ok := healthReason(err)
	if !ok {
		return
	}
	h.mu.Lock()
	prev, known := h.last[issuerKey]
	changed := !known || prev.reason != reason
	if changed {
		st := callState{reason: reason, since: now}
		if err != nil {
			st.message = err.Error()
		}
		h.last[issuerKey] = st
	}
	h.mu.Unlock()
	if changed {
		h.Notify(issuerKey)
	}
}

// Notify has the issuer of issuerKey looked at again.
func (h *IssuerHealth) Notify(issuerKey string) {
	kind, ns, name := splitIssuerKey(issuerKey)
	obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	select {
	case h.notify[tokensv1alpha1.IssuerKind(kind)] <- event.GenericEvent{Object: obj}:
	default: // the issuer is looked at again on its next change or resync
	}
}

// State returns what the last call to the issuer said, and whether any call
// was recorded.
func (h *IssuerHealth) State(kind tokensv1alpha1.IssuerKind, o client.Object) (callState, bool) {
	if h == nil {
		return callState{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.last[issuerKey(kind, o.GetNamespace(), o.GetName())]
	return st, ok
}

// splitIssuerKey undoes issuerKey.
func splitIssuerKey(key string) (kind, namespace, name string) {
	kind, rest, _ := strings.Cut(key, "/")
	namespace, name, _ = strings.Cut(rest, "/")
	return kind, namespace, name
}
