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
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

func issueWith(t *testing.T, spec *v1alpha1.IssuerSpec, client *http.Client) error {
	t.Helper()
	_, err := testEngine().Issue(context.Background(), Call{Spec: spec, HTTPClient: client})
	return err
}

func TestTimeout(t *testing.T) {
	// The handler blocks until the client gives up: no sleep, no race.
	ep := startEndpoint(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	client, err := NewHTTPClient(TransportConfig{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e := asError(t, issueWith(t, tokenSpec(ep.URL), client))
	if e.Class != ClassRetryable || !strings.Contains(e.Error(), "timed out") {
		t.Errorf("got %v %q, want a Retryable timeout", e.Class, e.Error())
	}
}

func TestSpecTimeoutBoundsTheCall(t *testing.T) {
	ep := startEndpoint(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	spec := tokenSpec(ep.URL)
	spec.Timeout = &v1alpha1.Duration{Duration: 50 * time.Millisecond}
	e := asError(t, issueWith(t, spec, testClient(t)))
	if e.Class != ClassRetryable || !errors.Is(e, context.DeadlineExceeded) {
		t.Errorf("got %v %q, want a Retryable deadline", e.Class, e.Error())
	}
}

func TestBodyNeverFinishing(t *testing.T) {
	ep := startEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `{"access_token":`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	client, err := NewHTTPClient(TransportConfig{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if e := asError(t, issueWith(t, tokenSpec(ep.URL), client)); e.Class != ClassRetryable {
		t.Errorf("got %v %q, want Retryable", e.Class, e.Error())
	}
}

func TestResponseSizeCap(t *testing.T) {
	padded := func(n int) string {
		prefix := `{"access_token":"t","pad":"`
		return prefix + strings.Repeat("x", n-len(prefix)-2) + `"}`
	}
	tests := []struct {
		name  string
		size  int
		class Class
	}{
		{"exactly the cap", MaxResponseBytes, -1},
		{"one byte over", MaxResponseBytes + 1, ClassInvalidResponse},
		{"far over", 3 * MaxResponseBytes, ClassInvalidResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := startEndpoint(t, answering(200, padded(tt.size)))
			err := issueWith(t, tokenSpec(ep.URL), testClient(t))
			if tt.class < 0 {
				if err != nil {
					t.Fatalf("a body of exactly %d bytes must be read: %v", tt.size, err)
				}
				return
			}
			if e := asError(t, err); e.Class != tt.class || !strings.Contains(e.Error(), "larger than") {
				t.Errorf("got %v %q", e.Class, e.Error())
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	ep := startEndpoint(t, answering(200, okBody))
	ep.Close()
	if e := asError(t, issueWith(t, tokenSpec(ep.URL), testClient(t))); e.Class != ClassRetryable {
		t.Errorf("got %v %q, want Retryable", e.Class, e.Error())
	}
}

func TestPlainHTTPRefusedUnlessAllowed(t *testing.T) {
	ep := startEndpoint(t, answering(200, okBody))
	spec := tokenSpec(ep.URL)
	spec.AllowInsecureHTTP = false
	e := asError(t, issueWith(t, spec, testClient(t)))
	if e.Class != ClassInvalidConfig || !strings.Contains(e.Error(), "plain http") {
		t.Errorf("got %v %q, want InvalidConfig about plain http", e.Class, e.Error())
	}
	if n := len(ep.seen()); n != 0 {
		t.Errorf("endpoint saw %d requests, want 0", n)
	}
}

func TestRedirects(t *testing.T) {
	other := startEndpoint(t, answering(200, okBody))
	otherURL, _ := url.Parse(other.URL)
	_, otherPort, _ := net.SplitHostPort(otherURL.Host)
	tests := []struct {
		name      string
		location  func(self string) string
		wantOK    bool
		wantOther int
	}{
		{"same host", func(self string) string { return self + "/final" }, true, 0},
		{"another port", func(string) string { return other.URL }, false, 0},
		{"another host name", func(string) string { return "http://localhost:" + otherPort }, false, 0},
		{"a loop", func(self string) string { return self + "/loop" }, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var self string
			ep := startEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/final" {
					answering(200, okBody)(w, r)
					return
				}
				http.Redirect(w, r, tt.location(self), http.StatusTemporaryRedirect)
			})
			self = ep.URL
			spec := tokenSpec(ep.URL + "/start")
			spec.Request.Auth = &v1alpha1.AuthSpec{Bearer: ptr(literal("s3cret"))}
			before := len(other.seen())
			err := issueWith(t, spec, testClient(t))
			if tt.wantOK {
				if err != nil {
					t.Fatalf("same-host redirect: %v", err)
				}
				if last := ep.seen()[1]; last.header.Get("Authorization") != "Bearer s3cret" || last.method != http.MethodPost {
					t.Errorf("redirected request lost its method or credentials: %s %q", last.method, last.header.Get("Authorization"))
				}
				return
			}
			e := asError(t, err)
			if e.Class != ClassInvalidResponse || !strings.Contains(e.Error(), "redirect refused") {
				t.Errorf("got %v %q, want a refused redirect", e.Class, e.Error())
			}
			if got := len(other.seen()) - before; got != 0 {
				t.Errorf("the other host received %d requests", got)
			}
		})
	}
}

// mapResolver resolves test host names from a map, never through DNS.
type mapResolver map[string][]string

func (m mapResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	addrs, ok := m[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []net.IPAddr
	for _, a := range addrs {
		out = append(out, net.IPAddr{IP: net.ParseIP(a)})
	}
	return out, nil
}

// safeDialer stands in for the network: it connects only to loopback, and
// records (without connecting) any other destination, failing the test unless
// the destination is one the case expects to pass the guard.
type safeDialer struct {
	t       *testing.T
	allowed map[string]bool
	mu      sync.Mutex
	dialled []string
}

var errNotConnecting = errors.New("test dialer: not connecting to a non-loopback address")

func (d *safeDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dialled = append(d.dialled, addr)
	d.mu.Unlock()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		d.t.Errorf("dialer got %q, not host:port", addr)
		return nil, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		d.t.Errorf("dialer got host name %q: the guard must dial checked IP literals", host)
		return nil, errNotConnecting
	}
	if ip.IsLoopback() {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	if !d.allowed[addr] {
		d.t.Errorf("dialer asked to reach %s, which the guard should have refused", addr)
	}
	return nil, errNotConnecting
}

func TestDialGuard(t *testing.T) {
	resolver := mapResolver{
		"metadata.test": {"169.254.169.254"},
		"private.test":  {"10.1.2.3"},
		"private172":    {"172.20.0.1"},
		"private192":    {"192.168.1.1"},
		"cgnat.test":    {"100.64.0.1"},
		"mapped.test":   {"::ffff:127.0.0.1"},
		"mapped10.test": {"::ffff:10.0.0.1"},
		"ula.test":      {"fd00::1"},
		"linklocal6":    {"fe80::1"},
		"zero.test":     {"0.0.0.0"},
		"loopback.test": {"127.0.0.1"},
		"mixed.test":    {"203.0.113.7", "192.168.1.1"},
		"public.test":   {"203.0.113.7"},
		"public6.test":  {"2001:db8::7"},
	}
	tests := []struct {
		host        string
		wantRefused bool
		wantDialled string
	}{
		{"metadata.test", true, ""},
		{"private.test", true, ""},
		{"private172", true, ""},
		{"private192", true, ""},
		{"cgnat.test", true, ""},
		{"mapped.test", true, ""},
		{"mapped10.test", true, ""},
		{"ula.test", true, ""},
		{"linklocal6", true, ""},
		{"zero.test", true, ""},
		{"loopback.test", true, ""},
		{"mixed.test", true, ""},
		{"169.254.169.254", true, ""},
		{"[::1]", true, ""},
		{"public.test", false, "203.0.113.7:80"},
		{"public6.test", false, "[2001:db8::7]:80"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			dialer := &safeDialer{t: t, allowed: map[string]bool{tt.wantDialled: tt.wantDialled != ""}}
			client, err := NewHTTPClient(TransportConfig{Timeout: 5 * time.Second, GuardPrivateDestinations: true,
				Resolver: resolver, DialContext: dialer.DialContext})
			if err != nil {
				t.Fatal(err)
			}
			e := asError(t, issueWith(t, tokenSpec("http://"+tt.host+"/token"), client))
			if tt.wantRefused {
				if e.Class != ClassInvalidConfig || !errors.Is(e, ErrPrivateDestination) {
					t.Errorf("got %v %q, want the guard's refusal", e.Class, e.Error())
				}
				if len(dialer.dialled) != 0 {
					t.Errorf("the dialer was called with %v", dialer.dialled)
				}
				return
			}
			if e.Class != ClassRetryable || len(dialer.dialled) != 1 || dialer.dialled[0] != tt.wantDialled {
				t.Errorf("got %v %q, dialled %v; want the checked literal %s dialled", e.Class, e.Error(), dialer.dialled, tt.wantDialled)
			}
		})
	}
}

// TestDialGuardRefusesLoopbackServer points a guarded client at a real server on
// 127.0.0.1: the guard must refuse before any connection.
func TestDialGuardRefusesLoopbackServer(t *testing.T) {
	ep := startEndpoint(t, answering(200, okBody))
	dialer := &safeDialer{t: t}
	client, err := NewHTTPClient(TransportConfig{GuardPrivateDestinations: true, Resolver: mapResolver{}, DialContext: dialer.DialContext})
	if err != nil {
		t.Fatal(err)
	}
	e := asError(t, issueWith(t, tokenSpec(ep.URL), client))
	if !errors.Is(e, ErrPrivateDestination) || len(ep.seen()) != 0 || len(dialer.dialled) != 0 {
		t.Errorf("got %q with %d requests and dials %v; want a refusal before connecting", e.Error(), len(ep.seen()), dialer.dialled)
	}
}

// TestDialGuardChecksEveryDial shows the check happens at dial time: a name that
// resolved to a public address once and to a private one later (DNS rebinding)
// is refused the second time.
func TestDialGuardChecksEveryDial(t *testing.T) {
	resolver := &rebindingResolver{answers: []string{"203.0.113.7", "127.0.0.1"}}
	dialer := &safeDialer{t: t, allowed: map[string]bool{"203.0.113.7:80": true}}
	client, err := NewHTTPClient(TransportConfig{GuardPrivateDestinations: true, Resolver: resolver, DialContext: dialer.DialContext})
	if err != nil {
		t.Fatal(err)
	}
	spec := tokenSpec("http://rebind.test/token")
	if first := asError(t, issueWith(t, spec, client)); errors.Is(first, ErrPrivateDestination) {
		t.Fatalf("first call refused: %v", first)
	}
	if second := asError(t, issueWith(t, spec, client)); !errors.Is(second, ErrPrivateDestination) {
		t.Errorf("second call: %v, want the guard's refusal", second)
	}
	if len(dialer.dialled) != 1 {
		t.Errorf("dialled %v, want only the public address", dialer.dialled)
	}
}

type rebindingResolver struct {
	mu      sync.Mutex
	answers []string
}

func (r *rebindingResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	answer := r.answers[0]
	if len(r.answers) > 1 {
		r.answers = r.answers[1:]
	}
	return []net.IPAddr{{IP: net.ParseIP(answer)}}, nil
}

func TestIsPublic(t *testing.T) {
	tests := map[string]bool{
		"8.8.8.8": true, "203.0.113.7": true, "2606:4700:4700::1111": true, "2001:db8::1": true,
		"127.0.0.1": false, "127.8.9.10": false, "::1": false,
		"10.0.0.1": false, "172.16.0.1": false, "172.31.255.255": false, "192.168.0.1": false,
		"169.254.169.254": false, "fe80::1": false, "fe80::1%eth0": false,
		"fc00::1": false, "fd12:3456::1": false,
		"0.0.0.0": false, "::": false, "0.1.2.3": false,
		"100.64.0.1": false, "100.127.255.255": false,
		"::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "::ffff:169.254.169.254": false, "::ffff:8.8.8.8": true,
		"::127.0.0.1": false, "64:ff9b::a00:1": false, "2002:a00:1::1": false,
		"224.0.0.1": false, "255.255.255.255": false, "ff02::1": false, "198.18.0.1": false, "fec0::1": false,
		"172.15.255.255": true, "172.32.0.1": true, "100.128.0.1": true,
	}
	for literal, want := range tests {
		if got := isPublic(netip.MustParseAddr(literal)); got != want {
			t.Errorf("isPublic(%s) = %v, want %v", literal, got, want)
		}
	}
}

func TestNewHTTPClient(t *testing.T) {
	if _, err := NewHTTPClient(TransportConfig{CABundle: []byte("not PEM")}); err == nil {
		t.Error("a CA bundle without certificates must be refused")
	}
	client, err := NewHTTPClient(TransportConfig{})
	if err != nil {
		t.Fatal(err)
	}
	transport := client.Transport.(*http.Transport)
	if client.Timeout != DefaultTimeout || transport.TLSClientConfig.MinVersion < 0x0303 {
		t.Errorf("timeout %v, TLS min version %#x", client.Timeout, transport.TLSClientConfig.MinVersion)
	}
	guarded, err := NewHTTPClient(TransportConfig{GuardPrivateDestinations: true})
	if err != nil {
		t.Fatal(err)
	}
	if guarded.Transport.(*http.Transport).Proxy != nil {
		t.Error("a guarded client must not use a proxy: the guard would check the proxy's address")
	}
}
