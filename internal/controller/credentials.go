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
	"maps"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"k8s.io/utils/lru"
)

// DefaultCredentialCacheBytes is the most bytes of credential values the
// manager keeps between reads: keys and values of every Secret version held,
// the least recently used evicted first.
const DefaultCredentialCacheBytes = 16 << 20

// credentialReadTimeout bounds one read of a credential Secret.
const credentialReadTimeout = 30 * time.Second

// credentialSecret is a credential Secret's data at one version: only the keys
// issuers read.
type credentialSecret struct {
	uid             types.UID
	resourceVersion string
	// version is credentialVersion(key, uid, resourceVersion).
	version string
	data    map[string][]byte
}

func (c credentialSecret) size() int {
	n := len(c.version)
	for k, v := range c.data {
		n += len(k) + len(v)
	}
	return n
}

// credentialStore holds the values of credential Secrets, by
// "namespace/name", at the version they were read: read once per Secret
// version and shared by every AccessToken. It is bounded in bytes, and
// concurrent readers of one Secret version share one read.
type credentialStore struct {
	budget int

	mu      sync.Mutex
	entries *lru.Cache
	bytes   int

	flights singleflight.Group
}

func newCredentialStore(budget int) *credentialStore {
	if budget <= 0 {
		budget = DefaultCredentialCacheBytes
	}
	s := &credentialStore{budget: budget}
	s.entries = lru.NewWithEvictionFunc(0, func(_ lru.Key, v any) { s.bytes -= v.(credentialSecret).size() })
	return s
}

// get returns the values held for key, if any.
func (s *credentialStore) get(key string) (credentialSecret, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.entries.Get(key)
	if !ok {
		return credentialSecret{}, false
	}
	return v.(credentialSecret), true
}

// add keeps c under key, merged with the keys held for the same version, and
// evicts the least recently used Secrets beyond the budget. It returns what is
// held for key at c's version (all of c's keys at least).
func (s *credentialStore) add(key string, c credentialSecret) credentialSecret {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.entries.Get(key); ok {
		old := v.(credentialSecret)
		if old.version == c.version {
			merged := make(map[string][]byte, len(old.data)+len(c.data))
			maps.Copy(merged, old.data)
			maps.Copy(merged, c.data)
			c.data = merged
		}
		s.entries.Remove(key)
	}
	size := c.size()
	if size > s.budget {
		// Used by this read only.
		return c
	}
	for s.bytes+size > s.budget && s.entries.Len() > 0 {
		s.entries.RemoveOldest()
	}
	s.entries.Add(key, c)
	s.bytes += size
	return c
}

// forget drops what is held for key.
func (s *credentialStore) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries.Remove(key)
}

// size returns the bytes held and the number of Secrets.
func (s *credentialStore) size() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes, s.entries.Len()
}

// read calls fetch once for all concurrent readers of the same flight (a
// Secret at one version, as the cache shows it): the Secret it returns is
// shared by them and dropped when they are done.
func (s *credentialStore) read(ctx context.Context, flight string, fetch func(context.Context) (*corev1.Secret, error)) (*corev1.Secret, error) {
	v, err, _ := s.flights.Do(flight, func() (any, error) {
		// Detached from one reader's cancellation, as the others wait on
		// it too, and bounded by its own timeout instead.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), credentialReadTimeout)
		defer cancel()
		return fetch(fctx)
	})
	if err != nil {
		return nil, err
	}
	return v.(*corev1.Secret), nil
}

// newer reports whether resourceVersion a is known to be later than b, for
// two versions of one Secret; false when either cannot be compared.
func newer(a, b string) bool {
	c, err := resourceversion.CompareResourceVersion(a, b)
	return err == nil && c > 0
}
