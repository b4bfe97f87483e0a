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

// Package fakes holds test doubles of the token endpoints tokenmint serves: the
// four seed provider APIs and an RFC 6749 OAuth2 server. Each behaves as its
// documentation says, rejects malformed requests the way the real API would,
// and records what it did: calls by outcome, issued tokens, and faults forced
// on it by tests.
package fakes

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/utils/clock"
)

// Outcome classifies what a fake did with a call.
type Outcome string

const (
	// OutcomeIssued is a new token minted from credentials.
	OutcomeIssued Outcome = "issued"
	// OutcomeRefreshed is a new token minted from a refresh token.
	OutcomeRefreshed Outcome = "refreshed"
	// OutcomeRevoked is a token revoked.
	OutcomeRevoked Outcome = "revoked"
	// OutcomeUnauthorized is a call refused for its credentials.
	OutcomeUnauthorized Outcome = "unauthorized"
	// OutcomeRejected is a call refused as malformed or not allowed.
	OutcomeRejected Outcome = "rejected"
	// OutcomeFault is a call answered by an injected fault.
	OutcomeFault Outcome = "fault"
)

// IssuedToken is a token a fake handed out.
type IssuedToken struct {
	// Value is the access token.
	Value string
	// ID is the token's id, for APIs that have one.
	ID string
	// IssuedAt and ExpiresAt are on the fake's clock.
	IssuedAt  time.Time
	ExpiresAt time.Time
	// RefreshToken is the refresh token issued with it, if any, and when that
	// expires. A refresh token can be redeemed once: redeeming rotates it.
	RefreshToken          string
	RefreshTokenExpiresAt time.Time
	RefreshTokenUsed      bool
	// Refreshed is true when it was minted from a refresh token.
	Refreshed bool
	// Request holds the interesting request values, such as scopes or a
	// description, by the API's own field names.
	Request map[string]any
	// Revoked is true once the token was revoked.
	Revoked bool
	// Secrets are credentials issued beside the token, such as an AWS secret
	// access key: written only into the Secret pods mount, shown nowhere.
	Secrets []string
}

// Fault forces one answer instead of the fake's own.
type Fault struct {
	// Status is the HTTP status to answer with (200 if zero).
	Status int
	// Header is added to the answer, such as Retry-After.
	Header http.Header
	// Body is written as it is.
	Body string
	// Hang blocks before answering until the client goes away or the fake is
	// closed: a timeout without sleeping.
	Hang bool
	// StallAfterBody writes the status, headers and Body, then blocks like Hang:
	// a body that never finishes.
	StallAfterBody bool
	// Reset drops the connection without an answer, as a crashed server does:
	// the client sees a connection reset.
	Reset bool
}

// FaultHook may return a fault for a request, or nil to let the fake answer.
type FaultHook func(*http.Request) *Fault

// Base is the plumbing every fake shares: clock, lifetimes, counters, the list
// of issued tokens and fault injection. Fakes embed it. Set the fields before
// the fake serves; change Lifetime and Hook later through their setters, which
// are safe while calls are in flight.
type Base struct {
	// Clock is the fake's notion of now; nil is the real clock.
	Clock clock.PassiveClock
	// Lifetime of issued tokens; each fake documents its default.
	Lifetime time.Duration
	// RefreshLifetime of issued refresh tokens, for fakes that issue them;
	// default 24h.
	RefreshLifetime time.Duration
	// Hook, when set, is asked before every call whether to force a fault.
	Hook FaultHook

	// skew is SetSkew's offset of the fake's clock from Clock, in nanoseconds.
	skew atomic.Int64

	mu      sync.Mutex
	total   int
	byOut   map[Outcome]int
	tokens  []IssuedToken
	pending []Fault
	// credentials are the signed assertions and subject tokens the fake received.
	credentials []string
	closed      chan struct{}
	once        sync.Once
}

// reply is a fake's answer: a JSON body (or raw bytes of contentType, for
// APIs that answer otherwise) with a status and an outcome to count.
type reply struct {
	status      int
	body        any
	raw         []byte
	contentType string
	header      http.Header
	outcome     Outcome
}

// now is the fake's own time: Clock plus Skew.
func (b *Base) now() time.Time {
	skew := time.Duration(b.skew.Load())
	if b.Clock == nil {
		return clock.RealClock{}.Now().Add(skew)
	}
	return b.Clock.Now().Add(skew)
}

// SetSkew sets the fake's clock d ahead of Clock (behind when negative), as a
// provider whose clock is off: its Date header, the times it issues and the
// times it checks are all on the skewed clock, and so are the IssuedAt and
// ExpiresAt of the tokens it records (subtract d for the local time).
func (b *Base) SetSkew(d time.Duration) {
	b.skew.Store(int64(d))
}

func (b *Base) lifetime(fallback time.Duration) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Lifetime > 0 {
		return b.Lifetime
	}
	return fallback
}

func (b *Base) refreshLifetime() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.RefreshLifetime > 0 {
		return b.RefreshLifetime
	}
	return 24 * time.Hour
}

// SetLifetime changes the lifetime of tokens issued from now on.
func (b *Base) SetLifetime(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Lifetime = d
}

// SetFaultHook replaces the fault hook; nil removes it.
func (b *Base) SetFaultHook(hook FaultHook) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.Hook = hook
}

// FailNext forces the next n answers to f.
func (b *Base) FailNext(n int, f Fault) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for range n {
		b.pending = append(b.pending, f)
	}
}

// Calls is the number of calls answered, faults included.
func (b *Base) Calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// CallsBy is the number of calls with the given outcome.
func (b *Base) CallsBy(o Outcome) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.byOut[o]
}

// rememberCredential records a credential the fake received that no Secret
// holds (a signed JWT, a ServiceAccount token), for leak checks.
func (b *Base) rememberCredential(value string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if value != "" {
		b.credentials = append(b.credentials, value)
	}
}

// CredentialsReceived returns the signed assertions and subject tokens the
// fake received: none may ever appear in a log, event, status or metric.
func (b *Base) CredentialsReceived() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.credentials)
}

// Issued returns a copy of every token issued so far, oldest first.
func (b *Base) Issued() []IssuedToken {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.tokens)
}

// Valid reports whether value is a token this fake issued that is neither
// expired nor revoked, as a resource server of the API would check it.
func (b *Base) Valid(value string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.find(func(t *IssuedToken) bool { return t.Value == value })
	return i >= 0 && !b.tokens[i].Revoked && b.now().Before(b.tokens[i].ExpiresAt)
}

// Close releases calls blocked by Hang faults. Start calls it on cleanup.
func (b *Base) Close() {
	b.once.Do(func() { close(b.closedChan()) })
}

func (b *Base) closedChan() chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed == nil {
		b.closed = make(chan struct{})
	}
	return b.closed
}

// record stores an issued token.
func (b *Base) record(t IssuedToken) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = append(b.tokens, t)
}

// update changes the first issued token matching match; it reports whether one did.
func (b *Base) update(match func(*IssuedToken) bool, change func(*IssuedToken)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.find(match)
	if i >= 0 {
		change(&b.tokens[i])
	}
	return i >= 0
}

// token returns a copy of the first issued token matching match.
func (b *Base) token(match func(*IssuedToken) bool) (IssuedToken, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.find(match)
	if i < 0 {
		return IssuedToken{}, false
	}
	return b.tokens[i], true
}

// find must be called with mu held.
func (b *Base) find(match func(*IssuedToken) bool) int {
	return slices.IndexFunc(b.tokens, func(t IssuedToken) bool { return match(&t) })
}

// redeemRefreshToken marks a live refresh token used and reports whether it
// was one; a used, expired or unknown refresh token is refused.
func (b *Base) redeemRefreshToken(value string) bool {
	if value == "" {
		return false
	}
	now := b.now()
	return b.update(func(t *IssuedToken) bool {
		return t.RefreshToken == value && !t.RefreshTokenUsed && now.Before(t.RefreshTokenExpiresAt)
	}, func(t *IssuedToken) { t.RefreshTokenUsed = true })
}

// revokeWhere marks the first live token matching match revoked, reporting whether there was one.
func (b *Base) revokeWhere(match func(*IssuedToken) bool) bool {
	return b.update(func(t *IssuedToken) bool { return !t.Revoked && match(t) },
		func(t *IssuedToken) { t.Revoked = true })
}

func (b *Base) count(o Outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total++
	if b.byOut == nil {
		b.byOut = map[Outcome]int{}
	}
	b.byOut[o]++
}

func (b *Base) nextFault(r *http.Request) *Fault {
	b.mu.Lock()
	hook := b.Hook
	b.mu.Unlock()
	if hook != nil {
		if f := hook(r); f != nil {
			return f
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) == 0 {
		return nil
	}
	f := b.pending[0]
	b.pending = b.pending[1:]
	return &f
}

// serve answers one call: an injected fault if there is one, otherwise the
// fake's own reply written as JSON; either way the call is counted.
func (b *Base) serve(w http.ResponseWriter, r *http.Request, answer func(*http.Request) reply) {
	// The Date header tells the fake's own time, as a real server's does.
	w.Header().Set("Date", b.now().UTC().Format(http.TimeFormat))
	if f := b.nextFault(r); f != nil {
		b.count(OutcomeFault)
		b.writeFault(w, r, f)
		return
	}
	rep := answer(r)
	b.count(rep.outcome)
	for name, values := range rep.header {
		w.Header()[name] = values
	}
	if rep.raw != nil {
		w.Header().Set("Content-Type", rep.contentType)
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.raw)
		return
	}
	writeJSON(w, rep.status, rep.body)
}

func (b *Base) writeFault(w http.ResponseWriter, r *http.Request, f *Fault) {
	if f.Hang {
		b.block(r)
		return
	}
	if f.Reset {
		resetConnection(w)
		return
	}
	for name, values := range f.Header {
		w.Header()[name] = values
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(f.Body))
	if f.StallAfterBody {
		if flusher, ok := w.(http.Flusher); ok {
			flusher.Flush()
		}
		b.block(r)
	}
}

func (b *Base) block(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-b.closedChan():
	}
}

// writeJSON writes body as JSON with status.
func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// hasContentType reports whether the request declares the media type want.
func hasContentType(r *http.Request, want string) bool {
	media, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && media == want
}

// decodeJSONBody decodes a JSON object body (at most 64 KiB) into a map,
// keeping numbers exact.
func decodeJSONBody(r *http.Request) (map[string]any, error) {
	decoder := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	decoder.UseNumber()
	var body map[string]any
	if err := decoder.Decode(&body); err != nil {
		return nil, err
	}
	if body == nil {
		return nil, errNotObject
	}
	return body, nil
}

// randomToken returns prefix followed by n random bytes in hex.
func randomToken(prefix string, n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return prefix + hex.EncodeToString(buf)
}

// Server is a fake that can be started.
type Server interface {
	http.Handler
	// Close releases blocked calls.
	Close()
}

// Start serves fake on 127.0.0.1 (never another interface) until the test ends,
// and returns the server; its URL is the base URL of the API.
func Start(t testing.TB, fake Server) *httptest.Server {
	t.Helper()
	listener := Listen(t)
	srv := httptest.NewUnstartedServer(fake)
	_ = srv.Listener.Close()
	srv.Listener = listener
	srv.Start()
	t.Cleanup(func() {
		fake.Close()
		srv.Close()
	})
	return srv
}

// usedPorts holds every port Listen has handed out in this process.
var usedPorts struct {
	sync.Mutex
	ports map[int]bool
}

// Listen returns a listener on 127.0.0.1 on a port that no earlier call of
// Listen in this process returned. The kernel hands a closed listener's port
// out again, and a test's AccessTokens outlive its fake: they keep calling
// the closed fake's URL (a renewal, a retry), and would mint at whichever
// later fake got its port. A port once used is never served again, so such a
// call fails to connect instead.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	usedPorts.Lock()
	defer usedPorts.Unlock()
	if usedPorts.ports == nil {
		usedPorts.ports = map[int]bool{}
	}
	// Ports already used are held open while the next is asked for, so that
	// the kernel cannot return the same one again.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for range 1000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listening on 127.0.0.1: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !usedPorts.ports[port] {
			usedPorts.ports[port] = true
			return l
		}
		held = append(held, l)
	}
	t.Fatalf("no port on 127.0.0.1 left that was not used before")
	return nil
}

// resetConnection closes the request's connection with a TCP reset.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}
