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
	"errors"
	"time"

	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tokenmint/tokenmint/internal/issuer"
	"github.com/tokenmint/tokenmint/internal/secret"
)

// The audit trail is one info line per token minted and per revocation
// attempted, at the manager's default log level, under the logger name
// "audit": enough to answer which token was live for an AccessToken at a given
// time, what replaced it and whether it was revoked. Tokens appear only as
// their fingerprints (the HMAC status shows), never as values.

// Revocation triggers.
const (
	revokeSuperseded = "Superseded"
	revokeDeletion   = "AccessTokenDeleted"
)

// auditMint records a token obtained for in.at: trigger is the decision's
// reason (NotIssued, RenewalDue, InputsChanged ...), replaced the fingerprint
// of the token it replaces (empty for a first token).
func auditMint(ctx context.Context, in *inputs, trigger string, tok *issuer.Token, fingerprint, replaced string) {
	grant := "request"
	switch {
	case tok.Extended:
		// The same token with a later expiry: nothing was replaced.
		grant, replaced = "extend", ""
	case tok.Refreshed:
		grant = "refresh"
	}
	kv := []any{"event", "Minted", "accessToken", in.at.Namespace + "/" + in.at.Name, "uid", string(in.at.UID),
		"issuer", in.issuerKey, "trigger", trigger, "grant", grant,
		"fingerprint", fingerprint, "issuedAt", tok.IssuedAt.UTC().Format(time.RFC3339)}
	if tok.ExpiresAt != nil {
		kv = append(kv, "expiresAt", tok.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if replaced != "" {
		kv = append(kv, "replaced", replaced)
	}
	logf.FromContext(ctx).WithName("audit").Info("token minted", kv...)
}

// auditRevoke records an attempt to revoke the token of fingerprint for in.at,
// and its outcome: err's class when it failed (never its message, which may
// quote the provider).
func auditRevoke(ctx context.Context, in *inputs, trigger, fingerprint string, err error) {
	outcome := "Revoked"
	if err != nil {
		outcome = "Failed"
		var ie *issuer.Error
		if errors.As(err, &ie) {
			outcome = "Failed: " + ie.Class.String()
		}
	}
	logf.FromContext(ctx).WithName("audit").Info("token revocation", "event", "Revocation",
		"accessToken", in.at.Namespace+"/"+in.at.Name, "uid", string(in.at.UID), "issuer", in.issuerKey,
		"trigger", trigger, "fingerprint", fingerprint, "outcome", outcome)
}

// revokeAudited revokes s and writes the audit line.
// It goes through the issuer that minted s (see revokerFor): when that issuer
// cannot be used, nothing is sent and the error is a *revokerError.
func (r *AccessTokenReconciler) revokeAudited(ctx context.Context, in *inputs, s secret.Superseded, trigger string) error {
	via, err := r.revokerFor(ctx, in, s)
	if err != nil {
		if ie := (*issuer.Error)(nil); errors.As(err, &ie) {
			err = &revokerError{err}
		}
		via = &inputs{at: in.at, issuerKey: s.Issuer}
	} else {
		err = r.revoke(ctx, via, s)
	}
	auditRevoke(ctx, via, trigger, r.Fingerprinter.Fingerprint([]byte(s.Token)), err)
	return err
}

// revokerError is why a token could not be sent for revocation to the issuer
// that minted it: that issuer is gone, was created again or cannot revoke.
type revokerError struct{ err error }

func (e *revokerError) Error() string { return e.err.Error() }
func (e *revokerError) Unwrap() error { return e.err }
