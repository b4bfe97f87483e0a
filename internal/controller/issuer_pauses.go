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
	"hash/fnv"
	"math"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tokenmint/tokenmint/internal/sharding"
)

// Pause Leases: with sharding, a replica that gets a 429 from an issuer's
// endpoint writes the pause into a Lease of the issuer's in the operator
// namespace, which every replica reads in the list of sharding Leases it makes
// anyway every retry period: one write per 429 answer (none when the Lease
// already says as much), no read of its own.
const (
	// RolePause marks an issuer's pause Lease (label sharding.LabelLease).
	RolePause = "pause"
	// pausePublishRate and pausePublishBurst bound, per namespace, the pause
	// records a replica writes for the 429s of the namespace's calls.
	pausePublishRate  = 0.2
	pausePublishBurst = 5
	pauseLeasePrefix  = "tokenmint-pause-"
	// AnnotationPauseIssuer names the issuer: TokenIssuer/<ns>/<name> or ClusterTokenIssuer//<name>.
	AnnotationPauseIssuer = "tokens.tokenmint.dev/issuer"
	// AnnotationPausedNamespace and AnnotationNamespacePausedUntil are the
	// namespace last paused on the issuer, and until when (RFC 3339, the
	// writer's clock).
	AnnotationPausedNamespace      = "tokens.tokenmint.dev/paused-namespace"
	AnnotationNamespacePausedUntil = "tokens.tokenmint.dev/namespace-paused-until"
	// AnnotationIssuerPausedUntil is until when the whole issuer is paused.
	AnnotationIssuerPausedUntil = "tokens.tokenmint.dev/issuer-paused-until"
	// pauseLeaseKept is how long after its pause ended a pause Lease is
	// deleted by the replica that sees it.
	pauseLeaseKept = time.Minute
)

// PauseLeaseName names the pause Lease of the issuer key: a hash, since the
// key holds slashes and may be longer than a name.
func PauseLeaseName(key string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return fmt.Sprintf("%s%016x", pauseLeasePrefix, h.Sum64())
}

// PauseBoard writes this replica's pauses into the issuers' pause Leases
// (Publish) and applies the other replicas' to Limiters (Observed).
//
// Times cross replicas without trusting their clocks to agree, as leader
// election does: a reader moves the times of a record written while it runs
// by how late, on its own clock, it first saw the record after it was
// written (its renewTime, the writer's clock), never earlier. A replica's
// clock ahead of the writer's, or a record seen late, only makes the pause
// longer there.
type PauseBoard struct {
	// Client reads and writes Leases in Namespace; uncached.
	Client    client.Client
	Namespace string
	// Identity is this replica's: its own records are not applied again.
	Identity string
	// Clock is the limiters' clock.
	Clock    clock.Clock
	Limiters *IssuerLimiters
	// MinPause is the shortest pause shared: the other replicas see a record
	// only at their next list of the sharding Leases, so a shorter pause has
	// ended before it reaches them.
	MinPause time.Duration
	// Budget, when set, bounds the records a namespace's 429s make this
	// replica write (and read first): a tenant whose endpoints answer 429
	// with a short Retry-After, on many issuers, costs at most this many
	// Lease writes. A pause over the budget is kept on this replica only.
	Budget *NamespaceLimiters

	// writing serializes the writes, so that a burst of 429s on many calls
	// makes one write and finds the rest already said.
	writing sync.Mutex
	mu      sync.Mutex
	// seen holds, by Lease name, the version of the record last applied and
	// its offset to this replica's clock.
	seen map[string]seenPause
	// started is set once the first list was seen.
	started bool
}

type seenPause struct {
	version string
	offset  time.Duration
}

type pauseRecord struct {
	namespace              string
	namespaceUntil, issuer time.Time
}

func (p pauseRecord) same(o pauseRecord) bool {
	return p.namespace == o.namespace && p.namespaceUntil.Equal(o.namespaceUntil) && p.issuer.Equal(o.issuer)
}

func readPause(l *coordinationv1.Lease) (string, pauseRecord) {
	parse := func(k string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, l.Annotations[k])
		if err != nil {
			return time.Time{}
		}
		return t
	}
	return l.Annotations[AnnotationPauseIssuer], pauseRecord{namespace: l.Annotations[AnnotationPausedNamespace],
		namespaceUntil: parse(AnnotationNamespacePausedUntil), issuer: parse(AnnotationIssuerPausedUntil)}
}

// Publish writes the pause in the background: the call that got the 429
// does not wait for the API server.
func (b *PauseBoard) Publish(key, namespace string, namespaceUntil, issuerUntil time.Time) {
	now := b.Clock.Now()
	if max(namespaceUntil.Sub(now), issuerUntil.Sub(now)) < b.MinPause {
		return
	}
	if b.Budget != nil && b.Budget.Take(namespace, now) > 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.publish(ctx, key, namespace, namespaceUntil, issuerUntil); err != nil {
			logf.Log.WithName("sharding").Error(err, "sharing an issuer's pause with the other replicas", "issuer", key)
		}
	}()
}

func (b *PauseBoard) publish(ctx context.Context, key, namespace string, namespaceUntil, issuerUntil time.Time) error {
	b.writing.Lock()
	defer b.writing.Unlock()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		now := b.Clock.Now()
		l := &coordinationv1.Lease{}
		err := b.Client.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: PauseLeaseName(key)}, l)
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		exists := err == nil
		var stored pauseRecord
		if exists {
			_, stored = readPause(l)
		}
		next := pauseRecord{namespace: namespace, namespaceUntil: namespaceUntil, issuer: issuerUntil}
		if stored.issuer.After(next.issuer) {
			next.issuer = stored.issuer
		}
		switch {
		case stored.namespace == namespace && stored.namespaceUntil.After(next.namespaceUntil):
			next.namespaceUntil = stored.namespaceUntil
		case stored.namespace != "" && stored.namespace != namespace && stored.namespaceUntil.After(now):
			// A 429 for a second namespace while another waits, on another
			// replica: the provider limits the client, and the whole
			// issuer waits, here as well.
			if namespaceUntil.After(next.issuer) {
				next.issuer = namespaceUntil
			}
			b.Limiters.Pause(key, "", time.Time{}, next.issuer)
		}
		if exists && next.same(stored) {
			return nil
		}
		end := max(next.issuer.Sub(now), next.namespaceUntil.Sub(now), time.Second)
		l.Name, l.Namespace = PauseLeaseName(key), b.Namespace
		if l.Labels == nil {
			l.Labels = map[string]string{}
		}
		l.Labels[sharding.LabelLease] = RolePause
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[AnnotationPauseIssuer] = key
		l.Annotations[AnnotationPausedNamespace] = next.namespace
		l.Annotations[AnnotationNamespacePausedUntil] = formatPause(next.namespaceUntil)
		l.Annotations[AnnotationIssuerPausedUntil] = formatPause(next.issuer)
		l.Spec.HolderIdentity = ptr.To(b.Identity)
		l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(now))
		l.Spec.LeaseDurationSeconds = ptr.To(int32(min(math.Ceil(end.Seconds()), math.MaxInt32)))
		if exists {
			return b.Client.Update(ctx, l)
		}
		err = b.Client.Create(ctx, l)
		if apierrors.IsAlreadyExists(err) {
			return apierrors.NewConflict(coordinationv1.Resource("leases"), l.Name, err)
		}
		return err
	})
}

func formatPause(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Observed applies the pauses of the other replicas found among leases (the
// sharding Leases that are neither ranges nor members), and deletes the
// pause Leases whose pause ended more than pauseLeaseKept ago.
func (b *PauseBoard) Observed(ctx context.Context, leases []coordinationv1.Lease) {
	now := b.Clock.Now()
	b.mu.Lock()
	if b.seen == nil {
		b.seen = map[string]seenPause{}
	}
	present := map[string]bool{}
	type applied struct {
		key string
		rec pauseRecord
	}
	var apply []applied
	var expired []*coordinationv1.Lease
	for i := range leases {
		l := &leases[i]
		if l.Labels[sharding.LabelLease] != RolePause {
			continue
		}
		present[l.Name] = true
		s, ok := b.seen[l.Name]
		if !ok || s.version != l.ResourceVersion {
			s = seenPause{version: l.ResourceVersion}
			// Records already there when this replica starts may be old:
			// their times are taken as written.
			if l.Spec.RenewTime != nil && b.started {
				s.offset = max(0, now.Sub(l.Spec.RenewTime.Time))
			}
			b.seen[l.Name] = s
		}
		key, rec := readPause(l)
		if !rec.namespaceUntil.IsZero() {
			rec.namespaceUntil = rec.namespaceUntil.Add(s.offset)
		}
		if !rec.issuer.IsZero() {
			rec.issuer = rec.issuer.Add(s.offset)
		}
		end := rec.issuer
		if rec.namespaceUntil.After(end) {
			end = rec.namespaceUntil
		}
		if now.Sub(end) > pauseLeaseKept {
			expired = append(expired, l)
			continue
		}
		if key != "" && ptr.Deref(l.Spec.HolderIdentity, "") != b.Identity {
			apply = append(apply, applied{key, rec})
		}
	}
	for name := range b.seen {
		if !present[name] {
			delete(b.seen, name)
		}
	}
	b.started = true
	b.mu.Unlock()
	for _, a := range apply {
		b.Limiters.Pause(a.key, a.rec.namespace, a.rec.namespaceUntil, a.rec.issuer)
	}
	for _, l := range expired {
		err := b.Client.Delete(ctx, l, client.Preconditions{ResourceVersion: &l.ResourceVersion})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			logf.FromContext(ctx).Error(err, "deleting an issuer's pause Lease", "lease", l.Name)
		}
	}
}
