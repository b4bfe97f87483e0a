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
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// endpoint is the fastest honest token endpoint: a real HTTP server on
// 127.0.0.1 that checks a bearer credential and answers an OAuth2-shaped
// {access_token, expires_in}. It counts the calls it answers.
type endpoint struct {
	URL        string
	credential string
	lifetime   int64 // seconds
	// tokenSize is the length of the tokens it issues (hex digits), at
	// least 48; real providers' JWTs take 800 to 2,000.
	tokenSize int
	calls     atomic.Int64
	refused   atomic.Int64
	srv       *http.Server

	// also is a second credential accepted beside credential (a rotation's
	// overlap), when set.
	also atomic.Pointer[string]
	// stamps holds the time of every call answered since recordCalls.
	mu        sync.Mutex
	recording bool
	stamps    []time.Time
}

func startEndpoint(credential string, lifetime time.Duration) (*endpoint, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &endpoint{credential: credential, lifetime: int64(lifetime / time.Second)}
	e.URL = fmt.Sprintf("http://%s/token", l.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", e.token)
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.srv.Serve(l) }()
	return e, nil
}

func (e *endpoint) token(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if also := e.also.Load(); auth != "Bearer "+e.credential && (also == nil || auth != "Bearer "+*also) {
		e.refused.Add(1)
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	e.calls.Add(1)
	e.mu.Lock()
	if e.recording {
		e.stamps = append(e.stamps, time.Now())
	}
	e.mu.Unlock()
	b := make([]byte, max(24, e.tokenSize/2))
	_, _ = rand.Read(b)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(`{"access_token":"` + hex.EncodeToString(b) +
		`","token_type":"Bearer","expires_in":` + strconv.FormatInt(e.lifetime, 10) + `}`))
}

func (e *endpoint) Calls() int64 { return e.calls.Load() }

// accept makes the endpoint accept credential too, as a provider does while
// an old and a new secret overlap.
func (e *endpoint) accept(credential string) { e.also.Store(&credential) }

// recordCalls starts recording the time of every call answered from now on.
func (e *endpoint) recordCalls() {
	e.mu.Lock()
	e.recording, e.stamps = true, nil
	e.mu.Unlock()
}

// callTimes returns the times recorded since recordCalls.
func (e *endpoint) callTimes() []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Time(nil), e.stamps...)
}

func (e *endpoint) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
}
