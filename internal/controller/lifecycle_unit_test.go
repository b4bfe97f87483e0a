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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenmint/tokenmint/api/v1alpha1"
)

func TestHeldComesBeforeEveryOtherCheck(t *testing.T) {
	now := time.Now()
	// Not issued, and its issuer is unusable: without a hold it would be
	// blocked, and with a usable issuer it would be issued.
	base := func() *inputs {
		return &inputs{at: &tokensv1alpha1.AccessToken{}, problem: &problem{reason: "IssuerNotFound", message: "gone"}}
	}
	if d := decide(base(), now); d.action != actionBlocked {
		t.Fatalf("without a hold: %v, want %v", d.action, actionBlocked)
	}
	in := base()
	in.problem = nil
	if d := decide(in, now); d.action != actionIssue {
		t.Fatalf("without a hold and a usable issuer: %v, want %v", d.action, actionIssue)
	}

	in = base()
	in.at.Spec.Suspend = true
	if d := decide(in, now); d.action != actionHold || d.reason != tokensv1alpha1.ReasonSuspended {
		t.Errorf("suspended: %v %s, want %v %s", d.action, d.reason, actionHold, tokensv1alpha1.ReasonSuspended)
	}
	in = base()
	in.readOnly = true
	in.at.Spec.Suspend = true
	if d := decide(in, now); d.action != actionHold || d.reason != tokensv1alpha1.ReasonReadOnly {
		t.Errorf("read-only: %v %s, want %v %s", d.action, d.reason, actionHold, tokensv1alpha1.ReasonReadOnly)
	}

	// An expired token of a suspended AccessToken is held too.
	in = &inputs{at: &tokensv1alpha1.AccessToken{}}
	in.at.Spec.Suspend = true
	in.at.Status.IssuedAt = &metav1.Time{Time: now.Add(-2 * time.Hour)}
	in.at.Status.ExpiresAt = &metav1.Time{Time: now.Add(-time.Hour)}
	if d := decide(in, now); d.action != actionHold {
		t.Errorf("suspended and expired: %v, want %v", d.action, actionHold)
	}
}

func TestWantsFinalizer(t *testing.T) {
	revoking := &tokensv1alpha1.IssuerSpec{Revoke: &tokensv1alpha1.RequestSpec{}}
	for _, c := range []struct {
		name      string
		spec      *tokensv1alpha1.IssuerSpec
		secret    tokensv1alpha1.SecretDeletionPolicy
		revoke    tokensv1alpha1.RevocationPolicy
		finalizer bool
	}{
		{"defaults, issuer revokes", revoking, "", "", true},
		{"defaults, issuer cannot revoke", &tokensv1alpha1.IssuerSpec{}, "", "", false},
		{"defaults, issuer unknown", nil, "", "", false},
		{"RevokeOnDelete", revoking, tokensv1alpha1.SecretDeletionPolicyDelete, tokensv1alpha1.RevocationPolicyRevokeOnDelete, true},
		{"None", revoking, "", tokensv1alpha1.RevocationPolicyNone, false},
		{"Retain, issuer cannot revoke", &tokensv1alpha1.IssuerSpec{}, tokensv1alpha1.SecretDeletionPolicyRetain, "", true},
		{"Retain and None", revoking, tokensv1alpha1.SecretDeletionPolicyRetain, tokensv1alpha1.RevocationPolicyNone, true},
	} {
		at := &tokensv1alpha1.AccessToken{}
		at.Spec.SecretDeletionPolicy, at.Spec.RevocationPolicy = c.secret, c.revoke
		if got := wantsFinalizer(at, &inputs{at: at, spec: c.spec}); got != c.finalizer {
			t.Errorf("%s: wantsFinalizer = %v, want %v", c.name, got, c.finalizer)
		}
	}
}
