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

package issuer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

// testNow is the fixed time of every test clock.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// seen is a request as a test endpoint received it.
type seen struct {
	method string
	path   string
	header http.Header
	body   string
}

// endpoint is a token endpoint on 127.0.0.1 that records every request and
// answers with reply.
type endpoint struct {
	*httptest.Server
	mu       sync.Mutex
	requests []seen
}

func startEndpoint(t *testing.T, reply http.HandlerFunc) *endpoint {
	t.Helper()
	e := &endpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.requests = append(e.requests, seen{method: r.Method, path: r.URL.EscapedPath(), header: r.Header.Clone(), body: string(body)})
		e.mu.Unlock()
		reply(w, r)
	}))
	t.Cleanup(e.Close)
	return e
}

// answering replies with a fixed status, headers and body.
func answering(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func (e *endpoint) seen() []seen {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]seen(nil), e.requests...)
}

// only returns the single request the endpoint received.
func (e *endpoint) only(t *testing.T) seen {
	t.Helper()
	requests := e.seen()
	if len(requests) != 1 {
		t.Fatalf("endpoint received %d requests, want 1", len(requests))
	}
	return requests[0]
}

// tokenSpec is the smallest issuer: POST url, read access_token.
func tokenSpec(url string) *v1alpha1.IssuerSpec {
	return &v1alpha1.IssuerSpec{
		Request:           v1alpha1.RequestSpec{URL: url},
		Response:          v1alpha1.ResponseSpec{Token: "access_token"},
		AllowInsecureHTTP: true,
	}
}

func testEngine() *Engine {
	return &Engine{Clock: clocktesting.NewFakePassiveClock(testNow), NewUUID: func() string { return "11111111-2222-4333-8444-555555555555" }}
}

func testClient(t *testing.T) *http.Client {
	t.Helper()
	client, err := NewHTTPClient(TransportConfig{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func ptr[T any](v T) *T { return &v }

func raw(json string) apiextensionsv1.JSON { return apiextensionsv1.JSON{Raw: []byte(json)} }

func literal(s string) v1alpha1.ValueSource { return v1alpha1.ValueSource{Value: &s} }

// asError returns err as *Error, failing the test when it is not one.
func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	return e
}

// loopbackOnly is a dialer that connects to loopback IP addresses only and
// fails the test, without resolving or connecting, on any other destination.
func loopbackOnly(t testing.TB) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Errorf("a call tried to reach %s, which is not loopback", addr)
			return nil, errors.New("refused by the test dialer")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// credentialName is the name tests give the credential reading ref.
func credentialName(ref v1alpha1.SecretKeySelector) string {
	return strings.ToLower(strings.NewReplacer(".", "-", "_", "-").Replace(ref.Name + "-" + ref.Key))
}

// fromSecret is a value sending the credential that reads ref (see secretCredentials).
func fromSecret(ref v1alpha1.SecretKeySelector) v1alpha1.ValueSource {
	return v1alpha1.ValueSource{Credential: credentialName(ref)}
}

// secretCredentials declares one credential per Secret key, named as fromSecret names them.
func secretCredentials(refs ...v1alpha1.SecretKeySelector) []v1alpha1.Credential {
	out := make([]v1alpha1.Credential, 0, len(refs))
	for _, ref := range refs {
		out = append(out, v1alpha1.Credential{Name: credentialName(ref), SecretKeyRef: &ref})
	}
	return out
}
