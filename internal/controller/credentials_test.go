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
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

func credential(name, rv string, value []byte) credentialSecret {
	k, uid := "ns/"+name, types.UID("u-"+name)
	return credentialSecret{uid: uid, resourceVersion: rv, version: credentialVersion(k, uid, rv),
		data: map[string][]byte{"key": value}}
}

func TestCredentialStoreBoundedInBytes(t *testing.T) {
	value := bytes.Repeat([]byte("v"), 1000)
	one := credential("s00", "1", value).size()
	s := newCredentialStore(10 * one)
	for i := range 25 {
		s.add(fmt.Sprintf("ns/s%02d", i), credential(fmt.Sprintf("s%02d", i), "1", value))
		if b, _ := s.size(); b > 10*one {
			t.Fatalf("after %d Secrets the store holds %d bytes, over its budget of %d", i+1, b, 10*one)
		}
	}
	if b, n := s.size(); n != 10 || b != 10*one {
		t.Errorf("store holds %d Secrets in %d bytes, want the 10 most recent in %d", n, b, 10*one)
	}
	if _, ok := s.get("ns/s14"); ok {
		t.Error("the least recently used Secret was kept")
	}
	if _, ok := s.get("ns/s15"); !ok {
		t.Error("a recent Secret was evicted")
	}

	// A Secret used recently survives newer ones.
	s.get("ns/s16")
	for i := 25; i < 34; i++ {
		s.add(fmt.Sprintf("ns/s%02d", i), credential(fmt.Sprintf("s%02d", i), "1", value))
	}
	if _, ok := s.get("ns/s16"); !ok {
		t.Error("the Secret read last was evicted before older ones")
	}

	// A new version replaces the old one and its bytes.
	before, n := s.size()
	s.add("ns/s16", credential("s16", "2", value[:10]))
	if after, m := s.size(); m != n || after != before-one+credential("s16", "2", value[:10]).size() {
		t.Errorf("after replacing a version: %d bytes in %d Secrets, was %d in %d", after, m, before, n)
	}

	// One larger than the whole budget is used once and never kept.
	huge := credential("huge", "1", bytes.Repeat([]byte("h"), 11*one))
	if got := s.add("ns/huge", huge); !bytes.Equal(got.data["key"], huge.data["key"]) {
		t.Error("the value read was not returned")
	}
	if _, ok := s.get("ns/huge"); ok {
		t.Error("a Secret larger than the budget was kept")
	}
	if _, ok := s.get("ns/s33"); !ok {
		t.Error("a Secret larger than the budget evicted others")
	}
}

func TestCredentialStoreMergesKeysOfOneVersion(t *testing.T) {
	s := newCredentialStore(0)
	s.add("ns/a", credentialSecret{uid: "u", resourceVersion: "1", version: "ns/a@u/1", data: map[string][]byte{"id": []byte("x")}})
	got := s.add("ns/a", credentialSecret{uid: "u", resourceVersion: "1", version: "ns/a@u/1", data: map[string][]byte{"secret": []byte("y")}})
	if !hasKeys(got.data, []string{"id", "secret"}) {
		t.Errorf("two issuers' keys of one version: got %v", got.data)
	}
	got = s.add("ns/a", credentialSecret{uid: "u", resourceVersion: "2", version: "ns/a@u/2", data: map[string][]byte{"secret": []byte("z")}})
	if _, ok := got.data["id"]; ok {
		t.Error("a key of an older version was kept with a newer one")
	}
}

func TestCredentialStoreReadErrors(t *testing.T) {
	s := newCredentialStore(0)
	boom := errors.New("boom")
	if _, err := s.read(context.Background(), "f", func(context.Context) (*corev1.Secret, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("read = %v, want the fetch's error", err)
	}
	want := &corev1.Secret{}
	got, err := s.read(context.Background(), "f", func(context.Context) (*corev1.Secret, error) { return want, nil })
	if err != nil || got != want {
		t.Errorf("read after a failed flight = %v, %v; want a new fetch", got, err)
	}
}

func TestNewerResourceVersion(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{{"10", "9", true}, {"9", "10", false}, {"5", "5", false}, {"", "5", false}, {"x", "5", false}} {
		if got := newer(tt.a, tt.b); got != tt.want {
			t.Errorf("newer(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
