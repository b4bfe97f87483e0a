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
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenmint/tokenmint/api/v1alpha1"
)

func dateHeader(t time.Time) http.Header {
	return http.Header{"Date": []string{t.UTC().Format(http.TimeFormat)}}
}

func TestProviderClockMeasures(t *testing.T) {
	sent := testNow
	cases := []struct {
		name     string
		header   http.Header
		received time.Time
		want     time.Duration
		ok       bool
	}{
		{"ten minutes ahead", dateHeader(sent.Add(10 * time.Minute)), sent, 10*time.Minute + time.Second/2, true},
		{"three minutes behind", dateHeader(sent.Add(-3 * time.Minute)), sent, -3*time.Minute + time.Second/2, true},
		{"the midpoint of the round trip", dateHeader(sent.Add(time.Minute)), sent.Add(4 * time.Second), 58*time.Second + time.Second/2, true},
		{"no header", http.Header{}, sent, 0, false},
		{"unparsable", http.Header{"Date": []string{"yesterday"}}, sent, 0, false},
		{"beyond an hour ahead", dateHeader(sent.Add(2 * time.Hour)), sent, 0, false},
		{"beyond an hour behind", dateHeader(time.Unix(0, 0)), sent, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewProviderClock(true)
			if got := p.Observe(c.header, sent, c.received); got != c.ok {
				t.Fatalf("Observe = %v, want %v", got, c.ok)
			}
			offset, known := p.Offset()
			if known != c.ok || offset != c.want {
				t.Errorf("Offset = %v, %v; want %v, %v", offset, known, c.want, c.ok)
			}
		})
	}
}

func TestProviderClockIsTheMedianOfRecentAnswers(t *testing.T) {
	p := NewProviderClock(true)
	for _, d := range []time.Duration{time.Minute, time.Minute, 50 * time.Minute, time.Minute, 2 * time.Minute} {
		p.Observe(dateHeader(testNow.Add(d)), testNow, testNow)
	}
	if offset, _ := p.Offset(); offset != time.Minute+time.Second/2 {
		t.Errorf("offset %v: one outlier must not move it", offset)
	}
	// Only the last clockSamples answers count: the clock moved.
	for range clockSamples {
		p.Observe(dateHeader(testNow.Add(-time.Minute)), testNow, testNow)
	}
	if offset, _ := p.Offset(); offset != -time.Minute+time.Second/2 {
		t.Errorf("offset %v after the provider's clock moved, want -59.5s", offset)
	}
	var nilClock *ProviderClock
	if nilClock.Observe(dateHeader(testNow), testNow, testNow) || nilClock.correction() != 0 {
		t.Error("a nil clock measures and corrects nothing")
	}
	small := NewProviderClock(true)
	small.Observe(dateHeader(testNow.Add(time.Second)), testNow, testNow)
	if small.correction() != 0 {
		t.Errorf("an offset of 1.5s is within the measurement's precision and is not corrected, got %v", small.correction())
	}
}

// skewedEndpoint is a provider whose clock runs skew ahead of the engine's:
// its Date header and its absolute expiries are on that clock.
func skewedEndpoint(t *testing.T, skew time.Duration, body func(providerNow time.Time, r *http.Request) (int, string)) *endpoint {
	return startEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		providerNow := testNow.Add(skew)
		w.Header().Set("Date", providerNow.UTC().Format(http.TimeFormat))
		status, text := body(providerNow, r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
	})
}

func TestAbsoluteExpiriesAreReadOnTheProvidersClock(t *testing.T) {
	for _, skew := range []time.Duration{10 * time.Minute, -3 * time.Minute} {
		for _, format := range []v1alpha1.ExpiryFormat{v1alpha1.ExpiryUnixSeconds, v1alpha1.ExpiryUnixMilliseconds, v1alpha1.ExpiryRFC3339, v1alpha1.ExpiryJWT, v1alpha1.ExpiryRelativeSeconds} {
			t.Run(fmt.Sprintf("%s %s", skew, format), func(t *testing.T) {
				ep := skewedEndpoint(t, skew, func(providerNow time.Time, _ *http.Request) (int, string) {
					exp := providerNow.Add(time.Hour)
					value := map[v1alpha1.ExpiryFormat]string{
						v1alpha1.ExpiryUnixSeconds:      fmt.Sprint(exp.Unix()),
						v1alpha1.ExpiryUnixMilliseconds: fmt.Sprint(exp.UnixMilli()),
						v1alpha1.ExpiryRFC3339:          `"` + exp.Format(time.RFC3339) + `"`,
						v1alpha1.ExpiryRelativeSeconds:  "3600",
					}[format]
					token := "plain-token"
					if format == v1alpha1.ExpiryJWT {
						token, _ = jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": exp.Unix()}).SignedString([]byte("k"))
						value = `0`
					}
					return 200, fmt.Sprintf(`{"access_token": %q, "exp": %s}`, token, value)
				})
				spec := tokenSpec(ep.URL)
				spec.Response.Expiry = &v1alpha1.ExpirySpec{Path: "exp", Format: format}
				if format == v1alpha1.ExpiryJWT {
					spec.Response.Expiry.Path = ""
				}
				for _, correct := range []bool{true, false} {
					call := Call{Spec: spec, HTTPClient: testClient(t), ProviderClock: NewProviderClock(correct)}
					tok, err := testEngine().Issue(context.Background(), call)
					if err != nil {
						t.Fatal(err)
					}
					want := testNow.Add(time.Hour)
					if !correct && format != v1alpha1.ExpiryRelativeSeconds {
						want = want.Add(skew) // the provider's time taken for local time
					}
					if d := tok.ExpiresAt.Sub(want); d > 0 || d < -time.Second {
						t.Errorf("correct=%v: expires at %v, want within a second before %v", correct, tok.ExpiresAt, want)
					}
				}
			})
		}
	}
}

func TestRetryAfterDatesAreReadOnTheProvidersClock(t *testing.T) {
	ep := skewedEndpoint(t, 10*time.Minute, nil)
	ep.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		providerNow := testNow.Add(10 * time.Minute)
		w.Header().Set("Date", providerNow.UTC().Format(http.TimeFormat))
		w.Header().Set("Retry-After", providerNow.Add(2*time.Minute).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	for correct, want := range map[bool]time.Duration{true: 2 * time.Minute, false: 12 * time.Minute} {
		_, err := testEngine().Issue(context.Background(), Call{Spec: tokenSpec(ep.URL), HTTPClient: testClient(t), ProviderClock: NewProviderClock(correct)})
		if got := asError(t, err).RetryAfter; got < want-time.Second || got > want {
			t.Errorf("correct=%v: Retry-After %v, want %v", correct, got, want)
		}
	}
}

// TestSignedJWTsAreWrittenOnTheProvidersClock: a provider that checks iat and
// exp against its own clock, as GitHub does, refuses a JWT signed on a local
// clock three minutes ahead of it; the refusal's Date teaches the engine the
// offset, and the request is sent once more on the provider's clock. Later
// calls are right the first time.
func TestSignedJWTsAreWrittenOnTheProvidersClock(t *testing.T) {
	for _, skew := range []time.Duration{10 * time.Minute, -3 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			ep := skewedEndpoint(t, skew, func(providerNow time.Time, r *http.Request) (int, string) {
				claims := jwt.MapClaims{}
				raw := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				if _, err := jwt.NewParser(jwt.WithoutClaimsValidation()).ParseWithClaims(raw, claims,
					func(*jwt.Token) (any, error) { return &testRSAKey.PublicKey, nil }); err != nil {
					return 401, `{"message": "bad signature"}`
				}
				iat, _ := claims.GetIssuedAt()
				exp, _ := claims.GetExpirationTime()
				if iat == nil || exp == nil || iat.After(providerNow.Add(time.Minute)) || !exp.After(providerNow) {
					return 401, `{"message": "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"}`
				}
				return 201, `{"access_token": "ghs_token"}`
			})
			spec := tokenSpec(ep.URL)
			spec.Credentials = []v1alpha1.Credential{{Name: "app-jwt", SignedJWT: &v1alpha1.SignedJWT{
				PrivateKey: v1alpha1.JWTSecretValue{SecretKeyRef: keyRef}, Algorithm: "RS256",
				Lifetime: &v1alpha1.Duration{Duration: 5 * time.Minute},
			}}}
			spec.Request.Auth = &v1alpha1.AuthSpec{Bearer: &v1alpha1.ValueSource{Credential: "app-jwt"}}
			secrets := map[v1alpha1.SecretKeySelector]string{keyRef: pkcs8(t, testRSAKey)}

			clk := NewProviderClock(true)
			call := Call{Spec: spec, HTTPClient: testClient(t), Secrets: secrets, ProviderClock: clk}
			if _, err := testEngine().Issue(context.Background(), call); err != nil {
				t.Fatalf("first call: %v", err)
			}
			if n := len(ep.seen()); n != 2 {
				t.Errorf("first call sent %d requests, want 2 (refused, then resent on the provider's clock)", n)
			}
			if _, err := testEngine().Issue(context.Background(), call); err != nil {
				t.Fatalf("second call: %v", err)
			}
			if n := len(ep.seen()); n != 3 {
				t.Errorf("%d requests after the second call, want 3: the offset is known now", n)
			}

			call.ProviderClock = NewProviderClock(false)
			for range 2 {
				if _, err := testEngine().Issue(context.Background(), call); asError(t, err).Class != ClassUnauthorized {
					t.Errorf("without correction: %v, want the JWT refused", err)
				}
			}
			if n := len(ep.seen()); n != 5 {
				t.Errorf("%d requests, want 5: without correction nothing is resent", n)
			}
		})
	}
}
