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

package fakes

import (
	"net/http"
	"time"
)

// AWSWebIdentityECR fakes AWS STS and Amazon ECR together, as a keyless ECR
// pull Secret uses them: STS AssumeRoleWithWebIdentity (AWSSTS) issues
// temporary credentials, and ECR's GetAuthorizationToken (ECR) accepts only
// those: a request signed with the access key id, the secret access key and
// the session token of one session STS issued, before the session's
// Expiration. One origin serves both, as the Google workload identity fake
// does: a call with an X-Amz-Target header is ECR's, any other the STS Query
// API's. The embedded ECR's Base counts and lists ECR's calls and tokens (and
// takes the faults and the clock); STS counts its own (STS.AssumeRoleCalls,
// STS.Issued, STS.FailNext) and answers on the same clock.
type AWSWebIdentityECR struct {
	ECR
	// STS is the security token service; set its Roles, Verify and
	// TokenClock before serving.
	STS *AWSSTS
}

// NewAWSWebIdentityECR returns the two fakes, STS letting roles be assumed.
func NewAWSWebIdentityECR(roles ...string) *AWSWebIdentityECR {
	f := &AWSWebIdentityECR{STS: &AWSSTS{Roles: roles}}
	f.STS.Clock = baseClock{&f.ECR.Base}
	f.ECR.Lookup = func(accessKeyID string) (AWSKey, bool) {
		now := f.ECR.now()
		for _, session := range f.STS.Issued() {
			if session.Request["accessKeyId"] == accessKeyID && now.Before(session.ExpiresAt) {
				return AWSKey{SecretAccessKey: session.Secrets[0], SessionToken: session.Value}, true
			}
		}
		return AWSKey{}, false
	}
	return f
}

func (f *AWSWebIdentityECR) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Amz-Target") != "" {
		f.ECR.ServeHTTP(w, r)
		return
	}
	f.STS.ServeHTTP(w, r)
}

// Close ends calls blocked by faults of both fakes.
func (f *AWSWebIdentityECR) Close() {
	f.ECR.Close()
	f.STS.Close()
}

// baseClock is a Base's own time (its Clock and skew), for a fake that
// answers on another's clock.
type baseClock struct{ b *Base }

func (c baseClock) Now() time.Time                  { return c.b.now() }
func (c baseClock) Since(t time.Time) time.Duration { return c.b.now().Sub(t) }
