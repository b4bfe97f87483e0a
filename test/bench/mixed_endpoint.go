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
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tenantEndpoint is a token endpoint on 127.0.0.1 for one tenant's
// TokenIssuer, in one of the shapes the mixed run needs: an honest one that
// answers after a delay and logs what it issued, one that accepts the call and
// never answers, or one that answers with a token of nearly 1 MiB. It needs no
// credential; the request body names the AccessToken ({"subject": name}).
type tenantEndpoint struct {
	URL        string
	delay      time.Duration        // before answering
	lifetime   time.Duration        // of the tokens, sent as expires_in
	tokenBytes int                  // length of the token; 0: 48 hex characters
	hang       bool                 // never answer
	log        *issueLog            // nil: keep no log
	onMint     func(subject string) // called for every token sent; nil: none

	calls       atomic.Int64 // requests received
	answered    atomic.Int64 // tokens sent
	inFlight    atomic.Int64
	maxInFlight atomic.Int64
	conns       atomic.Int64 // connections accepted

	stop     chan struct{}
	stopOnce sync.Once
	srv      *http.Server
}

func startTenantEndpoint(e *tenantEndpoint) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.URL = fmt.Sprintf("http://%s/token", l.Addr())
	e.stop = make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", e.token)
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				e.conns.Add(1)
			}
		}}
	go func() { _ = e.srv.Serve(l) }()
	return nil
}

func (e *tenantEndpoint) token(w http.ResponseWriter, r *http.Request) {
	e.calls.Add(1)
	n := e.inFlight.Add(1)
	defer e.inFlight.Add(-1)
	for {
		m := e.maxInFlight.Load()
		if n <= m || e.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	var req struct {
		Subject string `json:"subject"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	_ = json.Unmarshal(body, &req)
	if e.hang {
		// Accept the call and never answer: hold it until the caller gives up
		// or the benchmark ends.
		select {
		case <-r.Context().Done():
		case <-e.stop:
		}
		return
	}
	if e.delay > 0 {
		t := time.NewTimer(e.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-e.stop:
			return
		}
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	if e.tokenBytes > len(tok) {
		tok += strings.Repeat("x", e.tokenBytes-len(tok))
	}
	answer := []byte(`{"access_token":"` + tok + `","token_type":"Bearer","expires_in":` +
		strconv.FormatInt(int64(e.lifetime/time.Second), 10) + `}`)
	now := time.Now()
	if e.log != nil {
		// Logged before it is sent: the token cannot reach a Secret first.
		e.log.add(tok, issued{subject: req.Subject, at: now, expiry: now.Add(e.lifetime)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if _, err := w.Write(answer); err == nil {
		e.answered.Add(1)
		if e.onMint != nil {
			e.onMint(req.Subject)
		}
	}
}

// bigAnswerSize is the body of an answer with a token of n bytes.
func bigAnswerSize(n int, lifetime time.Duration) int {
	return len(`{"access_token":"","token_type":"Bearer","expires_in":}`) + n + len(strconv.FormatInt(int64(lifetime/time.Second), 10))
}

// Stop releases the calls held open and shuts the server down.
func (e *tenantEndpoint) Stop() {
	if e.srv == nil {
		return
	}
	e.stopOnce.Do(func() { close(e.stop) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		_ = e.srv.Close()
	}
}

// issued is one token an endpoint sent.
type issued struct {
	subject    string
	at, expiry time.Time
}

// issueLog is what an honest endpoint issued, by token and by AccessToken.
type issueLog struct {
	mu        sync.Mutex
	byToken   map[string]issued
	bySubject map[string][]held
}

func newIssueLog() *issueLog {
	return &issueLog{byToken: map[string]issued{}, bySubject: map[string][]held{}}
}

func (l *issueLog) add(token string, i issued) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byToken[token] = i
	l.bySubject[i.subject] = append(l.bySubject[i.subject], held{at: i.at, expiry: i.expiry})
}

func (l *issueLog) lookup(token string) (issued, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, ok := l.byToken[token]
	return i, ok
}

// sequences copies every AccessToken's issues.
func (l *issueLog) sequences() map[string][]held {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]held, len(l.bySubject))
	for k, v := range l.bySubject {
		out[k] = append([]held(nil), v...)
	}
	return out
}

// issuedBetween counts the tokens issued in [from, to].
func (l *issueLog) issuedBetween(from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, seq := range l.bySubject {
		for _, h := range seq {
			if !h.at.Before(from) && !h.at.After(to) {
				n++
			}
		}
	}
	return n
}
